"""Booking services: the one-pool booking write, cancellation, check-in, waitlist, signings.

Every function takes a Session and keyword arguments and never commits: the entry point owns the
transaction. The booking write never oversells: the place is taken by ONE conditional UPDATE
(`booked_x = booked_x + 1 WHERE booked_x < cap_x`), the database checks `booked_x <= cap_x` too,
and a person's bookings serialise on their row in booking_person_locks so limits hold under any
concurrency; an idempotency key is unique and inserted with ON CONFLICT DO NOTHING.

This module is booking's public API for other domains (DESIGN: a domain calls another through its
`service.py`): the hotline and self-service book through it. It re-exports the booking write of
booker.py (and entry.py's async entry), the rule and schedule functions of common.py and schedules.py.
Booking's own modules import those modules directly, not through here. Time-driven jobs and appeals live
in jobs.py, referrals and overview lists in referrals.py, accounts in accounts.py, notifications in
notify.py.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rhip.booking import rules as R
from rhip.booking.booker import (
    Booked as Booked,
    book as book,
    channel_for as channel_for,
    default_tranche as default_tranche,
    refuse_from_memory as refuse_from_memory,
)
from rhip.booking.common import (
    CHANNEL_KEY_PREFIX as CHANNEL_KEY_PREFIX,
    RESIDENT_CHANNELS as RESIDENT_CHANNELS,
    STATUS_LABELS as STATUS_LABELS,
    TERMINAL_CHANNEL as TERMINAL_CHANNEL,
    TRANCHE_LABELS as TRANCHE_LABELS,
    TRANCHES as TRANCHES,
    channel_group as channel_group,
    department_name as department_name,
    get_rule_overrides as get_rule_overrides,
    get_rules as get_rules,
    hospital as hospital,
    local_date as local_date,
    person_id as person_id,
    set_rules as set_rules,
)
from rhip.booking.models import (
    Appointment,
    PersonLock,
    Signing,
    Slot,
    SlotReturn,
    Suspension,
    WaitlistEntry,
)
from rhip.booking.schedules import (
    ScheduleSpec as ScheduleSpec,
    availability as availability,
    check_staff as check_staff,
    create_schedule as create_schedule,
    create_schedules as create_schedules,
    find_slots as find_slots,
    get_all_schedules as get_all_schedules,
    get_all_schedules_by_ids as get_all_schedules_by_ids,
    get_schedule as get_schedule,
    get_slot as get_slot,
    get_slots as get_slots,
    stop_schedule as stop_schedule,
)
from rhip.booking.soldout import (
    SOLD_OUT_TTL as SOLD_OUT_TTL,
    forget_slot,
    sold_out_in_memory as sold_out_in_memory,
)
from rhip.clock import now
from rhip.db.engine import dialect_insert
from rhip.errors import Conflict, Forbidden, Invalid, NotFound
from rhip.security.roles import Role
from rhip.security.service import Principal

# ------------------------------------------------------------------ suspensions


def _sync_suspension(session: Session, person: str, at: datetime) -> None:
    """Copy the end of the person's suspension in force (or none) onto their lock row."""
    sus = active_suspension(session, person=person, at=at)
    until = sus.ends_at if sus else None
    stmt = dialect_insert(session, PersonLock).values(person_id=person, bumps=0, suspended_until=until)
    session.execute(stmt.on_conflict_do_update(index_elements=["person_id"], set_={"suspended_until": until}))


def active_suspension(session: Session, *, person: str, at: datetime | None = None) -> Suspension | None:
    """The suspension in force for a person at a time, if any."""
    t = at or now()
    return session.scalar(
        select(Suspension)
        .where(
            Suspension.person_id == person,
            Suspension.starts_at <= t,
            Suspension.ends_at > t,
            Suspension.lifted_at.is_(None),
        )
        .order_by(Suspension.ends_at.desc())
        .limit(1)
    )


def get_appointment(session: Session, *, appointment_id: int) -> Appointment:
    """One appointment, or NotFound."""
    appt = session.get(Appointment, appointment_id)
    if appt is None:
        raise NotFound(f"预约不存在：{appointment_id}", code="no-appointment")
    return appt


def check_access(actor: Principal, appt: Appointment) -> None:
    """Who may see or act on an appointment: its resident, its channel, its hospital, agents, managers."""
    role = actor.role
    if role in (Role.manager, Role.admin, Role.agent):
        return
    if role is Role.resident and appt.person_id == actor.subject.strip().upper():
        return
    if role is Role.doctor and actor.institution_code == appt.hospital_code:
        return
    if role is Role.family_doctor and appt.created_by == actor.subject:
        return
    if role is Role.uploader and actor.institution_code == f"{CHANNEL_KEY_PREFIX}{appt.channel}":
        return
    if role is Role.uploader and actor.via == "terminal" and actor.institution_code == appt.hospital_code:
        return  # the hospital's own self-service terminal (取号)
    raise Forbidden("无权查看或操作此预约", code="not-yours")


def get_all_appointments(
    session: Session,
    *,
    actor: Principal,
    person: str | None = None,
    hospital_code: str | None = None,
    schedule_id: int | None = None,
    service_date: date | None = None,
    status: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[Appointment]:
    """Appointments the caller may see, newest service time first, filtered."""
    q = select(Appointment)
    role = actor.role
    if role is Role.resident:
        q = q.where(Appointment.person_id == actor.subject.strip().upper())
    elif role is Role.doctor:
        q = q.where(Appointment.hospital_code == (actor.institution_code or ""))
    elif role is Role.family_doctor:
        q = q.where(Appointment.created_by == actor.subject)
    elif role is Role.uploader:
        code = (actor.institution_code or "")[len(CHANNEL_KEY_PREFIX) :]
        q = q.where(Appointment.channel == code)
    elif role is Role.agent and not person:
        raise Invalid("热线坐席查询预约需提供就诊人身份证号码", code="person-required")
    if person:
        q = q.where(Appointment.person_id == person_id(person))
    if hospital_code:
        q = q.where(Appointment.hospital_code == hospital_code)
    if schedule_id:
        q = q.where(Appointment.schedule_id == schedule_id)
    if service_date:
        q = q.where(Appointment.service_date == service_date)
    if status:
        q = q.where(Appointment.status == status)
    q = q.order_by(Appointment.starts_at.desc(), Appointment.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(q))


def _set_status(
    session: Session, appt: Appointment, *, from_: tuple[str, ...], to: str, **values: Any
) -> bool:
    """Move an appointment between statuses with one conditional UPDATE (race-free); True if it moved."""
    res = session.execute(
        update(Appointment)
        .where(Appointment.id == appt.id, Appointment.status.in_(from_))
        .values(status=to, updated_at=now(), **values)
        .execution_options(synchronize_session=False)
    )
    session.refresh(appt)
    return bool(res.rowcount == 1)  # type: ignore[attr-defined]


def cancel(
    session: Session, *, appointment_id: int, actor: Principal, reason: str | None = None
) -> Appointment:
    """Cancel a booking: residents and channels until the cut-off, the hospital side at any time."""
    appt = get_appointment(session, appointment_id=appointment_id)
    check_access(actor, appt)
    if appt.status not in ("held", "booked"):
        raise Conflict(
            f"预约当前状态为“{STATUS_LABELS.get(appt.status, appt.status)}”，不能取消", code="not-cancellable"
        )
    rules = get_rules(session, hospital_code=appt.hospital_code)
    t = now()
    hospital_side = actor.role in (Role.doctor, Role.manager, Role.admin)
    if not hospital_side and t > rules.cancel_deadline(appt.service_date):
        deadline = rules.cancel_deadline(appt.service_date)
        raise Conflict(f"已过取消截止时间（{deadline:%m-%d %H:%M}），不能取消", code="cutoff-passed")
    if not _set_status(
        session,
        appt,
        from_=("held", "booked"),
        to="cancelled",
        cancelled_at=t,
        cancelled_by=actor.subject,
        cancel_reason=reason,
    ):
        raise Conflict("预约已被取消或已变更", code="not-cancellable")
    _give_back(session, appt, rules=rules, at=t)
    return appt


def _give_back(session: Session, appt: Appointment, *, rules: R.Rules, at: datetime) -> None:
    """A cancelled place goes to the waitlist first, else back to the pool now or after a random delay."""
    waiting = appt.tranche == "public" and session.scalar(
        select(WaitlistEntry.id)
        .where(WaitlistEntry.schedule_id == appt.schedule_id, WaitlistEntry.status == "waiting")
        .limit(1)
    )
    if not waiting and rules.return_delay_seconds > 0 and appt.tranche == "public":
        delay = random.randint(1, rules.return_delay_seconds)
        session.add(
            SlotReturn(slot_id=appt.slot_id, tranche=appt.tranche, return_at=at + timedelta(seconds=delay))
        )
        session.flush()
        return
    release_place(session, slot_id=appt.slot_id, tranche=appt.tranche)


def release_place(session: Session, *, slot_id: int, tranche: str) -> Appointment | None:
    """Return one place of a tranche to its slot, then fill it from the schedule's waitlist in order."""
    slot = get_slot(session, slot_id=slot_id)
    if (tranche == "family" and slot.reflowed) or (tranche == "clinic" and slot.clinic_reflowed):
        # after its reflow an unused family-doctor or in-clinic place belongs to the public pool
        booked, cap = getattr(Slot, f"booked_{tranche}"), getattr(Slot, f"cap_{tranche}")
        values = {booked.key: booked - 1, cap.key: cap - 1, "cap_public": Slot.cap_public + 1}
        cond = booked > 0
        tranche = "public"
    else:
        col = {"public": Slot.booked_public, "family": Slot.booked_family, "clinic": Slot.booked_clinic}[
            tranche
        ]
        values = {col.key: col - 1}
        cond = col > 0
    session.execute(
        update(Slot)
        .where(Slot.id == slot_id, cond)
        .values(updated_at=now(), **values)
        .execution_options(synchronize_session=False)
    )
    session.refresh(slot)
    forget_slot(session, slot_id)
    if tranche == "public":
        return _fill_from_waitlist(session, slot)
    return None


# ------------------------------------------------------------------ prepayment, check-in


def pay(session: Session, *, appointment_id: int, actor: Principal) -> Appointment:
    """Confirm a held booking by its (prepaid) payment before the hold expires."""
    appt = get_appointment(session, appointment_id=appointment_id)
    check_access(actor, appt)
    t = now()
    if appt.status == "booked" and appt.paid_at is not None:
        return appt
    if appt.status != "held":
        raise Conflict("该预约不需要支付或已失效", code="not-held")
    if appt.hold_expires_at is not None and appt.hold_expires_at <= t:
        raise Conflict("支付时限已过，号源已释放", code="hold-expired")
    if not _set_status(session, appt, from_=("held",), to="booked", paid_at=t):
        raise Conflict("该预约已失效", code="not-held")
    return appt


def check_in(session: Session, *, appointment_id: int, actor: Principal) -> Appointment:
    """取号/签到: on the service day until the slot's end plus the grace period."""
    appt = get_appointment(session, appointment_id=appointment_id)
    check_access(actor, appt)
    if appt.status == "checked_in":
        return appt
    if appt.status != "booked":
        raise Conflict(
            f"预约当前状态为“{STATUS_LABELS.get(appt.status, appt.status)}”，不能签到", code="not-checkable"
        )
    rules = get_rules(session, hospital_code=appt.hospital_code)
    t = now()
    if local_date(t) < appt.service_date:
        raise Conflict("请在就诊当天签到", code="checkin-too-early")
    if t > appt.ends_at + timedelta(minutes=rules.checkin_grace_minutes):
        raise Conflict("已超过签到时间", code="checkin-too-late")
    if not _set_status(session, appt, from_=("booked",), to="checked_in", checked_in_at=t):
        raise Conflict("预约状态已变更", code="not-checkable")
    return appt


# ------------------------------------------------------------------ waitlist


def join_waitlist(
    session: Session,
    *,
    schedule_id: int,
    person: str,
    actor: Principal,
    person_name: str | None = None,
    channel: str | None = None,
) -> WaitlistEntry:
    """Queue (候补) for a schedule whose public places are gone."""
    sched = get_schedule(session, schedule_id=schedule_id)
    pid = person_id(person)
    if actor.role is Role.resident and pid != actor.subject.strip().upper():
        raise Forbidden("居民只能为本人候补", code="not-self")
    chan = channel_for(actor, channel)
    if sched.status != "open" or sched.ends_at <= now():
        raise Conflict("该排班已停诊或已结束", code="schedule-closed")
    dup = session.scalar(
        select(WaitlistEntry.id).where(
            WaitlistEntry.schedule_id == schedule_id,
            WaitlistEntry.person_id == pid,
            WaitlistEntry.status == "waiting",
        )
    )
    if dup is not None:
        raise Conflict("已在候补队列中", code="already-waiting")
    entry = WaitlistEntry(
        schedule_id=schedule_id,
        person_id=pid,
        person_name=person_name,
        channel=chan,
        status="waiting",
        created_by=actor.subject,
        created_at=now(),
    )
    session.add(entry)
    session.flush()
    return entry


def leave_waitlist(session: Session, *, entry_id: int, actor: Principal) -> WaitlistEntry:
    """Leave the queue."""
    entry = session.get(WaitlistEntry, entry_id)
    if entry is None:
        raise NotFound(f"候补记录不存在：{entry_id}", code="no-waitlist")
    if actor.role is Role.resident and entry.person_id != actor.subject.strip().upper():
        raise Forbidden("只能取消本人的候补", code="not-yours")
    if entry.status != "waiting":
        raise Conflict("候补已结束", code="waitlist-closed")
    entry.status, entry.updated_at = "cancelled", now()
    session.flush()
    return entry


def get_waitlist(
    session: Session, *, schedule_id: int | None = None, person: str | None = None
) -> list[WaitlistEntry]:
    """Waitlist entries in queue order."""
    q = select(WaitlistEntry)
    if schedule_id is not None:
        q = q.where(WaitlistEntry.schedule_id == schedule_id)
    if person is not None:
        q = q.where(WaitlistEntry.person_id == person)
    return list(session.scalars(q.order_by(WaitlistEntry.id)))


def _fill_from_waitlist(session: Session, slot: Slot) -> Appointment | None:
    entries = list(
        session.scalars(
            select(WaitlistEntry)
            .where(WaitlistEntry.schedule_id == slot.schedule_id, WaitlistEntry.status == "waiting")
            .order_by(WaitlistEntry.id)
            .limit(20)
        )
    )
    for entry in entries:
        # the waitlisted person books through the same rules, as their own channel
        proxy = Principal(subject=entry.created_by, role=Role.agent, via="waitlist")
        try:
            done = book(
                session,
                slot_id=slot.id,
                person=entry.person_id,
                person_name=entry.person_name,
                actor=proxy,
                channel="phone_12320",
                tranche="public",
            )
        except Conflict as exc:
            if exc.code in ("slot-full", "slot-stopped", "slot-past", "not-released"):
                return None
            entry.status, entry.note, entry.updated_at = "skipped", exc.detail, now()
            continue
        # keep the channel the person queued through for the statistics
        done.appointment.channel = entry.channel
        entry.status, entry.appointment_id, entry.updated_at = "filled", done.appointment.id, now()
        session.flush()
        return done.appointment
    return None


# ------------------------------------------------------------------ signings and referrals


def sign(session: Session, *, person: str, actor: Principal) -> Signing:
    """A family doctor signs a resident (家庭医生签约) for their institution."""
    if actor.role is not Role.family_doctor or not actor.institution_code:
        raise Forbidden("只有所属机构明确的家庭医生可以签约", code="family-only")
    pid = person_id(person)
    row = session.get(Signing, pid) or Signing(person_id=pid)
    row.institution_code, row.doctor, row.signed_at = actor.institution_code, actor.subject, now()
    session.add(row)
    session.flush()
    return row
