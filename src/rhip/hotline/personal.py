"""Personal data in the hotline: the ID number a caller gives (checked, GB 11643) and how it is shown — in
full to the centre, the read audited; masked for everyone else."""

from __future__ import annotations

from sqlalchemy.orm import Session

from rhip.errors import Invalid
from rhip.hotline.models import WorkOrder
from rhip.registry import idnumber
from rhip.security.roles import Role
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


FULL_VIEW = (Role.agent, Role.manager, Role.admin)  # the centre sees the whole ID number


def mask_id_number(number: str) -> str:
    """An ID number as institution staff and auditors see it: region and last four digits."""
    return number[:6] + "********" + number[-4:]


def read_personal(session: Session, *, order: WorkOrder, actor: Principal) -> str | None:
    """The order's ID number as the reader may see it — in full for the centre, masked for everyone else —
    and every read of an order about an identified person audited (who, which order, full or masked)."""
    if not order.id_number and not order.person_id:
        return None
    full = actor.role in FULL_VIEW
    audit(
        session,
        actor=actor.subject,
        role=actor.role.value,
        action="hotline.read_order",
        target=order.number,
        detail={"id_number": "full" if full else "masked"},
    )
    if not order.id_number:
        return None
    return order.id_number if full else mask_id_number(order.id_number)
