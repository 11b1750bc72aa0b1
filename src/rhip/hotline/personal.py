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


def read_personal(session: Session, *, order: WorkOrder, actor: Principal) -> str | None:
    """The order's ID number for the centre (the read is audited); institution staff get it masked."""
    if not order.id_number:
        return None
    if actor.role in (Role.agent, Role.manager, Role.admin):
        audit(
            session,
            actor=actor.subject,
            role=actor.role.value,
            action="hotline.read_id_number",
            target=order.number,
        )
        return order.id_number
    return order.id_number[:6] + "********" + order.id_number[-4:]
