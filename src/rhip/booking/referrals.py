"""Two-way referral (双向转诊) and the booking overview lists."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from rhip.booking.common import hospital, person_id
from rhip.booking.models import (
    Appointment,
    Referral,
    Schedule,
    Slot,
)
from rhip.booking.schedules import get_slot
from rhip.booking.service import book
from rhip.clock import now
from rhip.errors import Conflict, Forbidden, Invalid, NotFound
from rhip.security.roles import Role
from rhip.security.service import Principal

# ------------------------------------------------------------------ signings and referrals


def refer_up(
    session: Session,
    *,
    person: str,
    slot_id: int,
    reason: str,
    actor: Principal,
    person_name: str | None = None,
    idempotency_key: str | None = None,
) -> Referral:
    """上转: a family doctor refers a signed resident to a specialist, booking from the priority tranche."""
    if actor.role is not Role.family_doctor or not actor.institution_code:
        raise Forbidden("只有家庭医生可以发起上转", code="family-only")
    slot = get_slot(session, slot_id=slot_id)
    pid = person_id(person)
    ref = Referral(
        direction="up",
        person_id=pid,
        person_name=person_name,
        from_institution=actor.institution_code,
        to_institution=slot.hospital_code,
        department_code=slot.department_code,
        reason=reason,
        status="booked",
        created_by=actor.subject,
        created_at=now(),
        updated_at=now(),
    )
    session.add(ref)
    session.flush()
    done = book(
        session,
        slot_id=slot_id,
        person=pid,
        person_name=person_name,
        actor=actor,
        tranche="family",
        idempotency_key=idempotency_key,
        referral_id=ref.id,
    )
    ref.appointment_id = done.appointment.id
    session.flush()
    return ref


def refer_down(
    session: Session,
    *,
    person: str,
    to_institution: str,
    reason: str,
    actor: Principal,
    person_name: str | None = None,
    parent_id: int | None = None,
) -> Referral:
    """下转: a specialist refers a patient back to a community centre for rehabilitation or follow-up."""
    if actor.role is not Role.doctor or not actor.institution_code:
        raise Forbidden("只有医院医生可以发起下转", code="doctor-only")
    target = hospital(to_institution)
    pid = person_id(person)
    ref = Referral(
        direction="down",
        person_id=pid,
        person_name=person_name,
        from_institution=actor.institution_code,
        to_institution=target.code,
        reason=reason,
        status="created",
        parent_id=parent_id,
        created_by=actor.subject,
        created_at=now(),
        updated_at=now(),
    )
    session.add(ref)
    session.flush()
    return ref


REFERRAL_STATUS = {
    "created": "已发起",
    "booked": "已预约",
    "accepted": "已接收",
    "completed": "已完成",
    "cancelled": "已撤销",
}


def update_referral(
    session: Session, *, referral_id: int, status: str, actor: Principal, note: str | None = None
) -> Referral:
    """The receiving end accepts or completes a referral; the sending end may cancel it."""
    ref = session.get(Referral, referral_id)
    if ref is None:
        raise NotFound(f"转诊单不存在：{referral_id}", code="no-referral")
    inst = actor.institution_code
    if status in ("accepted", "completed"):
        if inst != ref.to_institution and actor.role not in (Role.manager, Role.admin):
            raise Forbidden("只有接收机构可以接收或完成转诊", code="not-receiver")
    elif status == "cancelled":
        if inst != ref.from_institution and actor.role not in (Role.manager, Role.admin):
            raise Forbidden("只有发起机构可以撤销转诊", code="not-sender")
    else:
        raise Invalid(f"转诊状态只能改为 accepted、completed 或 cancelled：{status}", code="bad-status")
    allowed = {
        "accepted": ("created", "booked"),
        "completed": ("accepted", "booked"),
        "cancelled": ("created", "booked"),
    }
    if ref.status not in allowed[status]:
        raise Conflict(
            f"转诊单当前为“{REFERRAL_STATUS[ref.status]}”，不能改为“{REFERRAL_STATUS[status]}”",
            code="bad-transition",
        )
    ref.status, ref.note, ref.updated_at = status, note, now()
    session.flush()
    return ref


def get_all_referrals(session: Session, *, actor: Principal, person: str | None = None) -> list[Referral]:
    """Referrals both ends see: sent from or received by the caller's institution (all for managers)."""
    q = select(Referral)
    if actor.role not in (Role.manager, Role.admin):
        inst = actor.institution_code or ""
        q = q.where(or_(Referral.from_institution == inst, Referral.to_institution == inst))
    if person:
        q = q.where(Referral.person_id == person_id(person))
    return list(session.scalars(q.order_by(Referral.id.desc()).limit(500)))


# ------------------------------------------------------------------ overview


def hospitals_with_schedules(session: Session, *, date_from: date, date_to: date) -> list[tuple[str, int]]:
    """Hospitals that publish schedules in a window, with their number of open slots' free places."""
    rows = session.execute(
        select(Slot.hospital_code, func.sum(Slot.cap_public - Slot.booked_public))
        .where(Slot.service_date >= date_from, Slot.service_date <= date_to, Slot.status == "open")
        .group_by(Slot.hospital_code)
    ).all()
    return [(h, int(n or 0)) for h, n in rows]


def departments_of(
    session: Session, *, hospital_code: str, date_from: date, date_to: date
) -> list[tuple[str, str, int]]:
    """A hospital's departments with schedules in a window: (code, name, public places left)."""
    rows = session.execute(
        select(
            Schedule.department_code,
            Schedule.department_name,
            func.sum(Slot.cap_public - Slot.booked_public),
        )
        .join(Slot, Slot.schedule_id == Schedule.id)
        .where(
            Schedule.hospital_code == hospital_code,
            Schedule.service_date >= date_from,
            Schedule.service_date <= date_to,
            Schedule.status == "open",
        )
        .group_by(Schedule.department_code, Schedule.department_name)
        .order_by(Schedule.department_code)
    ).all()
    return [(c, n, int(left or 0)) for c, n, left in rows]


def slot_totals(session: Session, *, schedule_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Per schedule: (public places left, public capacity) — one query for a page of schedules."""
    if not schedule_ids:
        return {}
    rows = session.execute(
        select(Slot.schedule_id, func.sum(Slot.cap_public - Slot.booked_public), func.sum(Slot.cap_public))
        .where(Slot.schedule_id.in_(schedule_ids))
        .group_by(Slot.schedule_id)
    ).all()
    return {sid: (int(left or 0), int(cap or 0)) for sid, left, cap in rows}


def counts(session: Session) -> dict[str, int]:
    """Row counts for summaries."""
    return {
        "schedules": int(session.scalar(select(func.count()).select_from(Schedule)) or 0),
        "slots": int(session.scalar(select(func.count()).select_from(Slot)) or 0),
        "appointments": int(session.scalar(select(func.count()).select_from(Appointment)) or 0),
    }
