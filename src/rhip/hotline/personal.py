"""Personal data in the hotline: the ID number a caller gives (checked, GB 11643) and how it is shown —
masked for everyone but its holder (rhip.security.masking); free text (titles, contents, replies, notes) has
embedded ID and mobile numbers masked where shown. Reads are audited by the routes (`audit_read`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from rhip.errors import Invalid
from rhip.hotline.models import WorkOrder
from rhip.registry import idnumber
from rhip.security import masking
from rhip.security.service import Principal, audit


def check_id_number(value: str | None) -> str | None:
    """A normalised 18-character ID number, None when not given, or Invalid."""
    if not value or not value.strip():
        return None
    checked = idnumber.validate_id(value)
    if not checked.ok or not checked.normalized:
        reason = "；".join(m for _r, m in checked.errors) or "号码无效"
        raise Invalid(f"身份证号码无效：{reason}", code="bad-id-number")
    return checked.normalized


def audit_by(
    session: Session, actor: Principal, action: str, *, target: str | None = None, detail: dict[str, Any]
) -> None:
    """One audit event for what a principal did in the hotline (in the caller's transaction)."""
    audit(session, actor=actor.subject, role=actor.role.value, action=action, target=target, detail=detail)


def read_personal(order: WorkOrder, *, actor: Principal) -> str | None:
    """The order's ID number as the reader may see it: masked (`320102********123X`) for everyone but the
    person it belongs to (the platform's rule, rhip.security.masking). The route audits the read."""
    return masking.id_for(actor, order.id_number)
