"""Time-driven booking jobs (reflow, holds, delayed returns, no-shows, suspension ladder) and appeals."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from rhip.booking import notify, rules as R
from rhip.booking.common import get_rules
from rhip.booking.models import (
    Appeal,
    Appointment,
    Slot,
    SlotReturn,
    Suspension,
)
from rhip.booking.service import (
    _set_status,
    _sync_suspension,
    active_suspension,
    check_access,
    get_appointment,
    release_place,
)
from rhip.clock import now
from rhip.errors import Conflict, NotFound
from rhip.security.roles import Role
from rhip.security.service import Principal, audit

# ------------------------------------------------------------------ jobs


def reflow_due(session: Session, *, at: datetime | None = None) -> int:
    """At public release, unused family-doctor places flow into the public pool (one statement)."""
    t = at or now()
    return _reflow(session, Slot.reflowed, Slot.public_release_at, "family", t)


def reflow_clinic_due(session: Session, *, at: datetime | None = None) -> int:
    """Before the session (rule clinic_reflow_hours), unused in-clinic places join the public pool."""
    t = at or now()
    return _reflow(session, Slot.clinic_reflowed, Slot.clinic_reflow_at, "clinic", t)


def _reflow(session: Session, done: Any, due: Any, tranche: str, t: datetime) -> int:
    """One statement: a tranche's unused places of every due slot join the public pool, once."""
    cap, booked = getattr(Slot, f"cap_{tranche}"), getattr(Slot, f"booked_{tranche}")
    res = session.execute(
        update(Slot)
        .where(done.is_(False), due <= t)
        .values(
            {Slot.cap_public: Slot.cap_public + cap - booked, cap: booked, done: True, Slot.updated_at: t}
        )
        .execution_options(synchronize_session=False)
    )
    return int(res.rowcount or 0)  # type: ignore[attr-defined]


def expire_holds(session: Session, *, at: datetime | None = None) -> int:
    """Unpaid holds past their time give their places back."""
    t = at or now()
    due = list(
        session.scalars(
            select(Appointment).where(Appointment.status == "held", Appointment.hold_expires_at <= t)
        )
    )
    n = 0
    for appt in due:
        if _set_status(session, appt, from_=("held",), to="expired", cancel_reason="超时未支付"):
            release_place(session, slot_id=appt.slot_id, tranche=appt.tranche)
            n += 1
    return n


def release_returns(session: Session, *, at: datetime | None = None) -> int:
    """Delayed (anti-scalping) returns whose time has come go back to the pool."""
    t = at or now()
    due = list(
        session.scalars(select(SlotReturn).where(SlotReturn.done.is_(False), SlotReturn.return_at <= t))
    )
    for r in due:
        res = session.execute(
            update(SlotReturn).where(SlotReturn.id == r.id, SlotReturn.done.is_(False)).values(done=True)
        )
        if res.rowcount == 1:  # type: ignore[attr-defined]
            release_place(session, slot_id=r.slot_id, tranche=r.tranche)
    return len(due)


def mark_no_shows(session: Session, *, at: datetime | None = None) -> tuple[int, int]:
    """Booked places not checked in by the slot's end plus grace become no-shows; returns
    (no-shows, new suspensions). Hospital-side stops are never no-shows."""
    t = at or now()
    due = list(
        session.scalars(
            select(Appointment).where(Appointment.status == "booked", Appointment.ends_at <= t).limit(10_000)
        )
    )
    people: set[str] = set()
    n = 0
    for appt in due:
        grace = get_rules(session, hospital_code=appt.hospital_code).checkin_grace_minutes
        if appt.ends_at + timedelta(minutes=grace) > t:
            continue
        if _set_status(session, appt, from_=("booked",), to="no_show"):
            n += 1
            people.add(appt.person_id)
    suspended = sum(1 for p in sorted(people) if apply_ladder(session, person=p, at=t) is not None)
    return n, suspended


def apply_ladder(session: Session, *, person: str, at: datetime | None = None) -> Suspension | None:
    """Suspend a person when their no-shows reach the ladder's next step (count within window)."""
    t = at or now()
    if active_suspension(session, person=person, at=t) is not None:
        return None
    ladder = get_rules(session, hospital_code=R.PLATFORM).noshow_ladder or R.DEFAULT_LADDER
    past = list(
        session.scalars(
            select(Suspension)
            .where(Suspension.person_id == person, Suspension.lifted_at.is_(None))
            .order_by(Suspension.starts_at)
        )
    )
    recent = [s for s in past if s.starts_at > t - timedelta(days=365)]
    step = ladder[min(len(recent), len(ladder) - 1)]
    since = max([t - timedelta(days=step["window_days"])] + [s.starts_at for s in past])
    count = session.scalar(
        select(func.count())
        .select_from(Appointment)
        .where(Appointment.person_id == person, Appointment.status == "no_show", Appointment.ends_at > since)
    )
    if (count or 0) < step["count"]:
        return None
    sus = Suspension(
        person_id=person,
        starts_at=t,
        ends_at=t + timedelta(days=step["suspend_days"]),
        noshows=int(count or 0),
        reason=f"{step['window_days']} 天内爽约 {count} 次，暂停预约 {step['suspend_days']} 天",
    )
    session.add(sus)
    session.flush()
    _sync_suspension(session, person, t)
    return sus


def run_jobs(session: Session, *, at: datetime | None = None) -> dict[str, int]:
    """Everything time-driven, for 'now' (or `at`): reflows, holds, returns, no-shows, notifications."""
    t = at or now()
    reflowed = reflow_due(session, at=t)
    clinic_reflowed = reflow_clinic_due(session, at=t)
    holds = expire_holds(session, at=t)
    returns = release_returns(session, at=t)
    no_shows, suspended = mark_no_shows(session, at=t)
    delivered = notify.deliver(session, at=t)
    return {
        "reflowed_slots": reflowed,
        "clinic_reflowed_slots": clinic_reflowed,
        "notifications_sent": delivered["sent"],
        "notifications_failed": delivered["failed"],
        "expired_holds": holds,
        "returned_places": returns,
        "no_shows": no_shows,
        "suspensions": suspended,
    }


# ------------------------------------------------------------------ appeals


def appeal(session: Session, *, appointment_id: int, reason: str, actor: Principal) -> Appeal:
    """A resident appeals a recorded no-show."""
    appt = get_appointment(session, appointment_id=appointment_id)
    check_access(actor, appt)
    if appt.status != "no_show":
        raise Conflict("只有爽约记录可以申诉", code="not-a-no-show")
    if session.scalar(select(Appeal.id).where(Appeal.appointment_id == appointment_id)) is not None:
        raise Conflict("该爽约记录已申诉过", code="appeal-exists")
    row = Appeal(
        appointment_id=appointment_id,
        person_id=appt.person_id,
        reason=reason,
        status="pending",
        created_at=now(),
    )
    session.add(row)
    session.flush()
    return row


def get_all_appeals(session: Session, *, actor: Principal, status: str | None = None) -> list[Appeal]:
    """Appeals the caller may see: a resident's own, or all for managers."""
    q = select(Appeal)
    if actor.role is Role.resident:
        q = q.where(Appeal.person_id == actor.subject.strip().upper())
    if status:
        q = q.where(Appeal.status == status)
    return list(session.scalars(q.order_by(Appeal.id.desc()).limit(500)))


def decide_appeal(
    session: Session, *, appeal_id: int, accept: bool, note: str | None, actor: Principal
) -> Appeal:
    """A manager accepts (the no-show is struck out, a suspension it caused is lifted) or rejects."""
    row = session.get(Appeal, appeal_id)
    if row is None:
        raise NotFound(f"申诉不存在：{appeal_id}", code="no-appeal")
    if row.status != "pending":
        raise Conflict("该申诉已处理", code="appeal-decided")
    t = now()
    row.status = "accepted" if accept else "rejected"
    row.decided_by, row.decided_at, row.decision_note = actor.subject, t, note
    if accept:
        appt = get_appointment(session, appointment_id=row.appointment_id)
        _set_status(session, appt, from_=("no_show",), to="excused")
        sus = active_suspension(session, person=row.person_id, at=t)
        if sus is not None:
            sus.lifted_at, sus.lifted_by = t, actor.subject
            session.flush()
            # the remaining no-shows may still justify it
            apply_ladder(session, person=row.person_id, at=t)
            _sync_suspension(session, row.person_id, t)
    audit(
        session,
        actor=actor.subject,
        role=actor.role.value,
        action="booking.appeal",
        target=f"appeal/{appeal_id}",
        detail={"accepted": accept},
    )
    session.flush()
    return row
