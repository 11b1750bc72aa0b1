"""The registry of terminals: registration, status (在用/故障/已撤机), keys issued by their institution's
staff, and today's slots a terminal offers. Callers own the transaction."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.booking import service as booking
from rhip.clock import SHANGHAI, now
from rhip.db.engine import dialect_insert
from rhip.errors import Conflict, Forbidden, Invalid
from rhip.registry import data as reg_data
from rhip.security.roles import Role
from rhip.security.service import Principal, audit
from rhip.selfservice.keys import forget, get_terminal, new_key
from rhip.selfservice.models import Terminal

STATUSES = {"active": "在用", "fault": "故障", "removed": "已撤机"}


def _institution(code: str) -> reg_data.InstitutionRecord:
    inst = reg_data.get(code)
    if inst is None:
        raise Invalid(f"机构代码不存在：{code}", code="no-institution")
    return inst


def create_terminal(
    session: Session,
    *,
    institution_code: str,
    code: str | None = None,
    location: str = "",
    model: str = "",
    installed_on: date | None = None,
) -> Terminal:
    """Register a terminal at an institution (its district from the registry); the code must be new."""
    inst = _institution(institution_code)
    if code is None:
        n = session.scalar(select(Terminal.id).order_by(Terminal.id.desc()).limit(1)) or 0
        code = f"T{institution_code}-{n + 1:05d}"
    if session.scalar(select(Terminal.id).where(Terminal.code == code)) is not None:
        raise Conflict(f"终端编号已存在：{code}", code="terminal-exists")
    term = Terminal(
        code=code,
        institution_code=inst.code,
        district_code=inst.district_code,
        location=location,
        model=model,
        status="active",
        installed_on=installed_on or now().date(),
        created_at=now(),
    )
    session.add(term)
    session.flush()
    return term


def create_terminals(session: Session, *, specs: list[dict[str, Any]]) -> int:
    """Register many terminals at once (institution_code, code, location, model, installed_on, status);
    codes already registered are skipped. Returns how many were new."""
    t = now()
    rows = []
    for spec in specs:
        inst = _institution(spec["institution_code"])
        if spec.get("status", "active") not in STATUSES:
            raise Invalid(f"终端状态应为 {'、'.join(STATUSES)}", code="bad-status")
        rows.append(
            {
                "code": spec["code"],
                "institution_code": inst.code,
                "district_code": inst.district_code,
                "location": spec.get("location", ""),
                "model": spec.get("model", ""),
                "status": spec.get("status", "active"),
                "installed_on": spec["installed_on"],
                "removed_on": None,
                "key_prefix": None,
                "key_hash": None,
                "key_issued_at": None,
                "created_at": t,
            }
        )
    if not rows:
        return 0
    table = Terminal.__table__
    stmt = (
        dialect_insert(session, table).on_conflict_do_nothing(index_elements=["code"]).returning(table.c.id)
    )
    return len(session.connection().execute(stmt.returning(table.c.id), rows).all())


def get_terminals(session: Session, *, institution_code: str | None = None) -> list[Terminal]:
    """Terminals, of one institution or all, by code."""
    q = select(Terminal).order_by(Terminal.institution_code, Terminal.code)
    if institution_code:
        q = q.where(Terminal.institution_code == institution_code)
    return list(session.scalars(q))


def set_status(
    session: Session, *, code: str, status: str, actor: Principal, on: date | None = None
) -> Terminal:
    """Mark a terminal active, faulty or removed (撤机 records the removal date)."""
    if status not in STATUSES:
        raise Invalid(f"终端状态应为 {'、'.join(STATUSES)}", code="bad-status")
    term = get_terminal(session, code=code)
    check_staff(actor, term.institution_code)
    term.status = status
    term.removed_on = (on or now().date()) if status == "removed" else None
    forget(prefix=term.key_prefix, code=code)
    _audit(session, actor, "terminal.status", term, {"status": status})
    return term


def _audit(
    session: Session, actor: Principal, action: str, term: Terminal, detail: dict[str, Any] | None
) -> None:
    audit(
        session,
        actor=actor.subject,
        role=actor.role.value,
        action=action,
        target=term.code,
        institution_code=term.institution_code,
        detail=detail,
    )


def check_staff(actor: Principal, institution_code: str) -> None:
    """Managers and admins act on every terminal; an institution's own staff and keys on its own only."""
    if actor.role in (Role.manager, Role.admin):
        return
    if actor.institution_code != institution_code:
        raise Forbidden("只能管理本机构的自助终端", code="other-institution")


def issue_key(session: Session, *, code: str, actor: Principal) -> str:
    """A new key for a terminal (the old one stops working); the plain key is returned once, never stored."""
    term = get_terminal(session, code=code)
    check_staff(actor, term.institution_code)
    key = new_key(term)
    _audit(session, actor, "terminal.key", term, None)
    return key


def today_slots(session: Session, *, hospital_code: str, limit: int = 40) -> list[dict[str, Any]]:
    """Today's slots at a hospital with public places left (Beijing time), for a terminal's 当日挂号."""
    t = now()
    local = t.astimezone(SHANGHAI)
    end = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    out = []
    for slot in booking.find_slots(
        session, hospital_code=hospital_code, start_from=t, start_to=end, free_only=True, limit=limit
    ):
        a = booking.availability(slot, at=t)
        if a.bookable <= 0:
            continue
        out.append(
            {
                "id": slot.id,
                "department": booking.department_name(slot.department_code),
                "start": slot.starts_at.astimezone(SHANGHAI).strftime("%H:%M"),
                "end": slot.ends_at.astimezone(SHANGHAI).strftime("%H:%M"),
                "left": a.bookable,
            }
        )
    return out
