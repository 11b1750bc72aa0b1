"""Schedules and slots: publishing, finding free places, availability, clinic stops (停诊)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rhip.booking import calendar as cal, notify, rules as R
from rhip.booking.common import calendar_overrides, department_name, get_rules, hospital, is_working_day
from rhip.booking.models import (
    HOLDING,
    Appointment,
    Schedule,
    Slot,
    WaitlistEntry,
)
from rhip.clock import SHANGHAI, now
from rhip.errors import Conflict, Forbidden, Invalid, NotFound
from rhip.security.roles import Role
from rhip.security.service import Principal, audit

# ------------------------------------------------------------------ schedules


@dataclass(frozen=True)
class ScheduleSpec:
    """What a hospital publishes for one session."""

    hospital_code: str
    department_code: str
    doctor_name: str
    doctor_title: str
    service_date: date
    session: str
    slot_minutes: int
    capacity_per_slot: int
    start: time | None = None
    end: time | None = None
    service_type: str = "普通门诊"


def create_schedule(
    session: Session, *, spec: ScheduleSpec, actor: Principal, allow_holiday: bool = False
) -> Schedule:
    """Publish one session's schedule and split it into slots with per-tranche capacities."""
    inst = hospital(spec.hospital_code)
    dept = department_name(spec.department_code)
    if spec.session not in R.SESSIONS:
        raise Invalid(f"时段应为 am/pm/night（上午/下午/夜间）：{spec.session}", code="bad-session")
    if not 5 <= spec.slot_minutes <= 60:
        raise Invalid("分时段长度应在 5–60 分钟之间", code="bad-slot-length")
    if not 1 <= spec.capacity_per_slot <= 500:
        raise Invalid("每个时段号源数应在 1–500 之间", code="bad-capacity")
    if not allow_holiday and not is_working_day(session, day=spec.service_date):
        raise Conflict(
            f"{spec.service_date.isoformat()} 是法定节假日或休息日；节假日门诊请明确标注",
            code="holiday",
        )
    default_start, default_end, _label = R.SESSIONS[spec.session]
    start = datetime.combine(spec.service_date, spec.start or default_start, SHANGHAI)
    end = datetime.combine(spec.service_date, spec.end or default_end, SHANGHAI)
    minutes = int((end - start).total_seconds() // 60)
    n = minutes // spec.slot_minutes
    if n < 1:
        raise Invalid("时段太短，放不下一个号", code="bad-session-time")
    if end <= now():
        raise Conflict("不能发布已经结束的排班", code="schedule-past")
    exists = session.scalar(
        select(Schedule.id).where(
            Schedule.hospital_code == inst.code,
            Schedule.department_code == spec.department_code,
            Schedule.doctor_name == spec.doctor_name,
            Schedule.service_date == spec.service_date,
            Schedule.session == spec.session,
        )
    )
    if exists is not None:
        raise Conflict("该医生此时段的排班已存在", code="schedule-exists", schedule_id=exists)
    rules = get_rules(session, hospital_code=inst.code)
    public_release = rules.public_release(spec.service_date)
    family_release = rules.family_release(spec.service_date)
    family_pct = rules.family_share(tertiary=inst.tertiary)
    sched = Schedule(
        hospital_code=inst.code,
        department_code=spec.department_code,
        department_name=dept,
        doctor_name=spec.doctor_name,
        doctor_title=spec.doctor_title,
        service_type=spec.service_type,
        service_date=spec.service_date,
        session=spec.session,
        starts_at=start,
        ends_at=start + timedelta(minutes=n * spec.slot_minutes),
        slot_minutes=spec.slot_minutes,
        capacity_per_slot=spec.capacity_per_slot,
        public_release_at=public_release,
        family_release_at=family_release,
        status="open",
        created_by=actor.subject,
        created_at=now(),
    )
    session.add(sched)
    session.flush()
    caps = R.split_capacity(
        spec.capacity_per_slot, n, family_pct=family_pct, clinic_pct=rules.clinic_share_pct
    )
    t = now()
    # published after its public release: no family window left, so no priority places either
    late = public_release <= t
    clinic_reflow = rules.clinic_reflow(start)
    for i, (pub, fam, cli) in enumerate(caps):
        s = start + timedelta(minutes=i * spec.slot_minutes)
        if late:
            pub, fam = pub + fam, 0
        session.add(
            Slot(
                schedule_id=sched.id,
                hospital_code=inst.code,
                department_code=spec.department_code,
                service_date=spec.service_date,
                starts_at=s,
                ends_at=s + timedelta(minutes=spec.slot_minutes),
                status="open",
                capacity=spec.capacity_per_slot,
                cap_public=pub,
                cap_family=fam,
                cap_clinic=cli,
                booked_public=0,
                booked_family=0,
                booked_clinic=0,
                public_release_at=public_release,
                family_release_at=family_release,
                reflowed=late,
                clinic_reflow_at=clinic_reflow,
                clinic_reflowed=False,
                updated_at=t,
            )
        )
    session.flush()
    return sched


def create_schedules(
    session: Session,
    *,
    template: ScheduleSpec,
    start: date,
    end: date,
    sessions: tuple[str, ...] = ("am", "pm"),
    actor: Principal,
) -> list[Schedule]:
    """Publish a doctor's sessions on every working day from start to end (existing ones are kept)."""
    overrides = calendar_overrides(session)
    out = []
    for day in cal.working_days(start, end, overrides):
        for sess in sessions:
            spec = ScheduleSpec(**{**template.__dict__, "service_date": day, "session": sess})
            try:
                out.append(create_schedule(session, spec=spec, actor=actor))
            except Conflict as exc:
                if exc.code != "schedule-exists":
                    raise
    return out


def get_schedule(session: Session, *, schedule_id: int) -> Schedule:
    """One schedule, or NotFound."""
    sched = session.get(Schedule, schedule_id)
    if sched is None:
        raise NotFound(f"排班不存在：{schedule_id}", code="no-schedule")
    return sched


def get_all_schedules(
    session: Session,
    *,
    hospital_code: str | None = None,
    department_code: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    service_type: str | None = None,
    status: str | None = None,
    limit: int = 500,
    offset: int = 0,
) -> list[Schedule]:
    """Schedules matching the filters, by day, session and doctor."""
    q = select(Schedule)
    if hospital_code:
        q = q.where(Schedule.hospital_code == hospital_code)
    if department_code:
        q = q.where(Schedule.department_code == department_code)
    if date_from:
        q = q.where(Schedule.service_date >= date_from)
    if date_to:
        q = q.where(Schedule.service_date <= date_to)
    if service_type:
        q = q.where(Schedule.service_type == service_type)
    if status:
        q = q.where(Schedule.status == status)
    q = q.order_by(Schedule.service_date, Schedule.starts_at, Schedule.doctor_name, Schedule.id)
    return list(session.scalars(q.limit(limit).offset(offset)))


def get_all_schedules_by_ids(session: Session, *, ids: set[int]) -> list[Schedule]:
    """The schedules with these ids."""
    if not ids:
        return []
    return list(session.scalars(select(Schedule).where(Schedule.id.in_(sorted(ids)))))


def get_slot(session: Session, *, slot_id: int) -> Slot:
    """One slot, or NotFound."""
    slot = session.get(Slot, slot_id)
    if slot is None:
        raise NotFound(f"号源时段不存在：{slot_id}", code="no-slot")
    return slot


def get_slots(session: Session, *, schedule_id: int) -> list[Slot]:
    """A schedule's slots in time order."""
    return list(session.scalars(select(Slot).where(Slot.schedule_id == schedule_id).order_by(Slot.starts_at)))


def find_slots(
    session: Session,
    *,
    schedule_ids: list[int] | None = None,
    hospital_code: str | None = None,
    department_code: str | None = None,
    start_from: datetime | None = None,
    start_to: datetime | None = None,
    free_only: bool = False,
    service_type: str | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[Slot]:
    """Slots matching the filters (for searches and the published feed)."""
    q = select(Slot)
    if schedule_ids is not None:
        q = q.where(Slot.schedule_id.in_(schedule_ids))
    if hospital_code:
        q = q.where(Slot.hospital_code == hospital_code)
    if department_code:
        q = q.where(Slot.department_code == department_code)
    if start_from:
        q = q.where(Slot.starts_at >= start_from)
    if start_to:
        q = q.where(Slot.starts_at < start_to)
    if service_type:
        q = q.join(Schedule, Schedule.id == Slot.schedule_id).where(Schedule.service_type == service_type)
    if free_only:
        q = q.where(
            Slot.status == "open", Slot.booked_public < Slot.cap_public, Slot.public_release_at <= now()
        )
    return list(session.scalars(q.order_by(Slot.starts_at, Slot.id).limit(limit).offset(offset)))


@dataclass(frozen=True)
class Availability:
    """What a caller may book in one slot."""

    slot: Slot
    public_left: int
    family_left: int
    clinic_left: int
    public_open: bool
    family_open: bool

    @property
    def bookable(self) -> int:
        """Places the public can book now."""
        return self.public_left if self.public_open else 0


def availability(slot: Slot, *, at: datetime | None = None) -> Availability:
    """Remaining places per tranche and whether each tranche is open at `at`."""
    t = at or now()
    open_ = slot.status == "open" and slot.starts_at > t
    return Availability(
        slot=slot,
        public_left=max(slot.cap_public - slot.booked_public, 0),
        family_left=max(slot.cap_family - slot.booked_family, 0),
        clinic_left=max(slot.cap_clinic - slot.booked_clinic, 0),
        public_open=open_ and slot.public_release_at <= t,
        family_open=open_ and slot.family_release_at <= t and not slot.reflowed,
    )


def stop_schedule(session: Session, *, schedule_id: int, reason: str, actor: Principal) -> list[Appointment]:
    """停诊: close the schedule, cancel its bookings as hospital-side stops (never counted against
    patients), drop its waitlist, and return the affected appointments (to notify)."""
    sched = get_schedule(session, schedule_id=schedule_id)
    check_staff(actor, sched.hospital_code)
    if sched.status == "stopped":
        raise Conflict("该排班已停诊", code="already-stopped")
    t = now()
    sched.status, sched.stop_reason, sched.stopped_at = "stopped", reason, t
    session.execute(
        update(Slot).where(Slot.schedule_id == schedule_id).values(status="stopped", updated_at=t)
    )
    affected = list(
        session.scalars(
            select(Appointment).where(Appointment.schedule_id == schedule_id, Appointment.status.in_(HOLDING))
        )
    )
    for a in affected:
        a.status, a.cancelled_at, a.cancelled_by = "stopped", t, actor.subject
        a.cancel_reason = f"停诊：{reason}"
        a.updated_at = t
        audit(
            session,
            actor=actor.subject,
            role=actor.role.value,
            action="booking.notify",
            target=f"appointment/{a.id}",
            institution_code=sched.hospital_code,
            detail={"person": a.person_id[-4:], "channel": notify.channel_for(a.channel)},
        )
    session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.schedule_id == schedule_id, WaitlistEntry.status == "waiting")
        .values(status="cancelled", note="停诊", updated_at=t)
    )
    audit(
        session,
        actor=actor.subject,
        role=actor.role.value,
        action="booking.stop",
        target=f"schedule/{schedule_id}",
        institution_code=sched.hospital_code,
        detail={"reason": reason, "appointments": len(affected)},
    )
    notify.notify_stop(session, appointments=affected, department_name=sched.department_name, reason=reason)
    return affected


def check_staff(actor: Principal, hospital_code: str) -> None:
    """Hospital staff act on their own hospital only; managers and admins on every one."""
    if actor.role in (Role.manager, Role.admin):
        return
    if actor.role is Role.doctor and actor.institution_code == hospital_code:
        return
    raise Forbidden("只能管理本院的排班与预约", code="other-hospital")
