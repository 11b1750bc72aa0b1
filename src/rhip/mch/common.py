"""What the MCH services share: the recording actor, today's date, the institutions that may record
and the ID-number check, and the lookups by id (masks by role: security.masking's "mch" view)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from rhip.clock import local_now
from rhip.errors import Invalid, NotFound
from rhip.mch.models import Child, Pregnancy
from rhip.registry import data as reg_data, idnumber

WRITE_KINDS = ("hospital", "mch", "community_health_centre", "district_platform")
IDENTITY_SOURCE = "mch"


@dataclass(frozen=True)
class Actor:
    """Who records: user name, role and institution (for the audit log and default institution)."""

    name: str
    role: str | None = None
    institution_code: str | None = None


def today() -> date:
    """Today in Asia/Shanghai."""
    return local_now().date()


def institution_district(code: str) -> str:
    """The district code of a Nanjing institution that may record MCH services, or Invalid."""
    inst = reg_data.get(code)
    if inst is None or inst.kind not in WRITE_KINDS or not inst.district_code:
        raise Invalid(f"机构代码 {code} 不是本市可登记妇幼保健服务的机构", code="unknown-institution")
    return inst.district_code


def check_id(id_number: str, *, birth_date: date | None, sex: str | None) -> idnumber.IdCheck:
    check = idnumber.validate_id(id_number, birth_date=birth_date, sex=sex)
    if not check.ok:
        raise Invalid("身份证号码无效：" + "；".join(m for _r, m in check.errors), code="bad-id-number")
    return check


# ---------------------------------------------------------------- pregnancy


def get_pregnancy(session: Session, *, pregnancy_id: int) -> Pregnancy:
    """One pregnancy episode, or NotFound."""
    p = session.get(Pregnancy, pregnancy_id)
    if p is None:
        raise NotFound(f"孕产期保健册 {pregnancy_id} 不存在", code="pregnancy-not-found")
    return p


def get_child(session: Session, *, child_id: int) -> Child:
    """One child's record, or NotFound."""
    c = session.get(Child, child_id)
    if c is None:
        raise NotFound(f"儿童保健档案 {child_id} 不存在", code="child-not-found")
    return c
