"""Booking services: schedules, the one-pool booking write, cancellation, jobs, waitlist, referrals.

Every function takes a Session and keyword arguments and never commits: the entry point owns the
transaction. The booking write never oversells: the place is taken by ONE conditional UPDATE
(`booked_x = booked_x + 1 WHERE booked_x < cap_x`), the database checks `booked_x <= cap_x` too,
and a person's bookings serialise on their row in booking_person_locks so limits hold under any
concurrency; an idempotency key is unique and inserted with ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

import random
import time as _time
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from rhip.booking import calendar as cal
from rhip.booking import rules as R
from rhip.booking.models import (
    COUNTING,
    HOLDING,
    Appeal,
    Appointment,
    CalendarOverride,
    PersonLock,
    Referral,
    Rule,
    Schedule,
    Signing,
    Slot,
    SlotReturn,
    Suspension,
    WaitlistEntry,
)
from rhip.clock import SHANGHAI, now
from rhip.errors import Conflict, Forbidden, Invalid, NotFound
from rhip.registry import codes as reg_codes
from rhip.registry import data as reg_data
from rhip.security.roles import Role
from rhip.security.service import Principal, audit

TRANCHES = ("public", "family", "clinic")
TRANCHE_LABELS = {"public": "公众号源", "family": "家庭医生优先号源", "clinic": "诊间号源"}
STATUS_LABELS = {
    "held": "待支付",
    "booked": "已预约",
    "cancelled": "已取消",
    "checked_in": "已签到",
    "no_show": "爽约",
    "stopped": "停诊取消",
    "expired": "超时未支付",
    "excused": "爽约已申诉撤销",
}
CHANNEL_KEY_PREFIX = "ch:"  # third-party platforms hold kernel API keys bound to "ch:<channel code>"
RESIDENT_CHANNELS = ("web_12320", "wechat_12320", "jkn_app", "quick_12320")


# ------------------------------------------------------------------ helpers


def _dialect_insert(session: Session, table: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def local_date(at: datetime) -> date:
    """The Asia/Shanghai calendar date of an instant."""
    return at.astimezone(SHANGHAI).date()


def person_id(number: str) -> str:
    """A validated, normalised 18-digit resident ID number (GB 11643), or Invalid in Chinese."""
    result = reg_codes.validate_id(number or "")
    if not result.ok or not result.normalized:
        reason = "；".join(m for _r, m in result.errors) or "号码无效"
        raise Invalid(f"身份证号码无效：{reason}", code="bad-id-number")
    return result.normalized


def hospital(code: str) -> reg_data.InstitutionRecord:
    """The registry's institution for a code, or NotFound."""
    record = reg_data.get(code)
    if record is None:
        raise NotFound(f"机构不存在：{code}", code="no-institution")
    return record


def department_name(code: str) -> str:
    """The 诊疗科目 name of a department code, or NotFound."""
    for d in reg_data.departments():
        if d.code == code:
            return d.name
    raise NotFound(f"科室代码不存在：{code}", code="no-department")


def channel_group(code: str) -> str:
    """The statistics group (online_12320, quick, phone, in_clinic, third_party, ...) of a channel."""
    for c in reg_data.channels():
        if c.code == code:
            return c.group
    raise Invalid(f"未知预约途径：{code}", code="bad-channel")


# ------------------------------------------------------------------ rules

_RULES_CACHE: dict[tuple[str, str], tuple[float, R.Rules]] = {}
RULES_TTL = 5.0


def _rule_values(row: Rule | None) -> dict[str, Any]:
    if row is None:
        return {}
    return {name: getattr(row, name) for name in R.RULE_FIELDS}


def get_rules(session: Session, *, hospital_code: str) -> R.Rules:
    """The effective rules of a hospital: code defaults ← platform row '*' ← the hospital's row."""
    key = (str(session.get_bind().engine.url), hospital_code)
    hit = _RULES_CACHE.get(key)
    if hit and hit[0] > _time.monotonic():
        return hit[1]
    rows = {
        r.hospital_code: r
        for r in session.scalars(select(Rule).where(Rule.hospital_code.in_([R.PLATFORM, hospital_code])))
    }
    rules = R.merge(
        R.merge(R.Rules(), _rule_values(rows.get(R.PLATFORM))), _rule_values(rows.get(hospital_code))
    )
    _RULES_CACHE[key] = (_time.monotonic() + RULES_TTL, rules)
    return rules


def get_rule_overrides(session: Session, *, hospital_code: str) -> dict[str, Any]:
    """The values a hospital (or '*') sets itself; missing keys fall back to the defaults."""
    row = session.get(Rule, hospital_code)
    return {k: v for k, v in _rule_values(row).items() if v is not None}


def set_rules(session: Session, *, hospital_code: str, values: dict[str, Any], actor: Principal) -> R.Rules:
    """Set a hospital's (or the platform's, '*') rule overrides; None clears one."""
    if hospital_code != R.PLATFORM:
        hospital(hospital_code)
    unknown = set(values) - set(R.RULE_FIELDS)
    if unknown:
        raise Invalid(f"未知规则项：{', '.join(sorted(unknown))}", code="bad-rule")
    row = session.get(Rule, hospital_code) or Rule(hospital_code=hospital_code)
    for k, v in values.items():
        setattr(row, k, v)
    row.updated_by = actor.subject
    row.updated_at = now()
    R.check(R.merge(R.Rules(), _rule_values(row)))
    session.add(row)
    session.flush()
    _RULES_CACHE.clear()
    audit(
        session,
        actor=actor.subject,
        role=actor.role.value,
        action="booking.rules",
        target=hospital_code,
        detail={k: v for k, v in values.items()},
    )
    return get_rules(session, hospital_code=hospital_code)


# ------------------------------------------------------------------ calendar


def calendar_overrides(session: Session) -> dict[date, str]:
    """Local changes to the built-in holiday calendar."""
    return {r.day: r.kind for r in session.scalars(select(CalendarOverride))}


def set_calendar_day(session: Session, *, day: date, kind: str, name: str) -> CalendarOverride:
    """Make a day a holiday or a working day locally (kind 'holiday' or 'workday')."""
    if kind not in ("holiday", "workday"):
        raise Invalid("kind 应为 holiday 或 workday", code="bad-calendar")
    row = session.get(CalendarOverride, day) or CalendarOverride(day=day)
    row.kind, row.name = kind, name
    session.add(row)
    session.flush()
    return row


def is_working_day(session: Session, *, day: date) -> bool:
    """Whether clinics run on a day: weekdays, minus holidays, plus 调休 working days."""
    return cal.is_working_day(day, calendar_overrides(session))


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
            detail={
                "person": a.person_id[-4:],
                "message": f"您预约的{sched.department_name}已停诊：{reason}",
            },
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
    session.flush()
    return affected


def check_staff(actor: Principal, hospital_code: str) -> None:
    """Hospital staff act on their own hospital only; managers and admins on every one."""
    if actor.role in (Role.manager, Role.admin):
        return
    if actor.role is Role.doctor and actor.institution_code == hospital_code:
        return
    raise Forbidden("只能管理本院的排班与预约", code="other-hospital")


# ------------------------------------------------------------------ booking


@dataclass(frozen=True)
class Booked:
    """The outcome of a booking: the appointment and whether this call created it."""

    appointment: Appointment
    created: bool


def channel_for(actor: Principal, requested: str | None) -> str:
    """The channel a caller books through: residents choose among the platform's own, others are fixed."""
    if actor.role is Role.resident:
        chosen = requested or "web_12320"
        if chosen not in RESIDENT_CHANNELS:
            raise Invalid(f"居民只能通过平台自有途径预约：{', '.join(RESIDENT_CHANNELS)}", code="bad-channel")
        return chosen
    if actor.role is Role.agent:
        chosen = requested or "phone_12320"
        if chosen not in ("phone_12320", "quick_12320"):
            raise Invalid("热线坐席只能使用电话预约或快速预约", code="bad-channel")
        return chosen
    if actor.role is Role.doctor:
        return "in_clinic"
    if actor.role is Role.family_doctor:
        return "community_12320"
    if actor.role is Role.uploader and (actor.institution_code or "").startswith(CHANNEL_KEY_PREFIX):
        code = (actor.institution_code or "")[len(CHANNEL_KEY_PREFIX) :]
        if channel_group(code) != "third_party":
            raise Forbidden("该 API 密钥不属于第三方预约平台", code="not-a-channel")
        return code
    raise Forbidden(f"角色“{actor.role.label}”不能预约挂号", code="cannot-book")


def default_tranche(actor: Principal) -> str:
    """The tranche a caller books from unless told otherwise."""
    if actor.role is Role.doctor:
        return "clinic"
    if actor.role is Role.family_doctor:
        return "family"
    return "public"


def _refuse_slot(slot: Slot, tranche: str, t: datetime, actor: Principal) -> None:
    """Raise the rule that refuses this slot to this tranche now (reads only)."""
    if slot.status != "open":
        raise Conflict("该时段已停诊", code="slot-stopped")
    if slot.starts_at <= t:
        raise Conflict("该时段已开始或已结束，不能再预约", code="slot-past")
    if tranche == "public" and slot.public_release_at > t:
        at = slot.public_release_at.astimezone(SHANGHAI)
        raise Conflict(f"号源尚未开放，将于 {at:%Y-%m-%d %H:%M} 放号", code="not-released")
    if tranche == "family":
        if actor.role is not Role.family_doctor:
            raise Forbidden("家庭医生优先号源只对签约家庭医生开放", code="family-only")
        if slot.family_release_at > t:
            at = slot.family_release_at.astimezone(SHANGHAI)
            raise Conflict(f"家庭医生优先号源将于 {at:%Y-%m-%d %H:%M} 开放", code="not-released")
    if tranche == "clinic":
        if actor.role is not Role.doctor:
            raise Forbidden("诊间号源只供本院医生诊间预约", code="clinic-only")
        if actor.institution_code != slot.hospital_code:
            raise Forbidden("只能在本院诊间预约本院号源", code="other-hospital")
    booked = {"public": slot.booked_public, "family": slot.booked_family, "clinic": slot.booked_clinic}
    cap = {"public": slot.cap_public, "family": slot.cap_family, "clinic": slot.cap_clinic}
    if booked[tranche] >= cap[tranche]:
        raise Conflict(f"该时段{TRANCHE_LABELS[tranche]}已约满", code="slot-full")


def _lock_person(session: Session, pid: str) -> datetime | None:
    """Take the person's row lock (upsert); returns the end of a suspension recorded on it."""
    stmt = _dialect_insert(session, PersonLock).values(person_id=pid, bumps=1)
    stmt = stmt.on_conflict_do_update(index_elements=["person_id"], set_={"bumps": PersonLock.bumps + 1})
    return session.execute(stmt.returning(PersonLock.suspended_until)).scalar()


def _sync_suspension(session: Session, person: str, at: datetime) -> None:
    """Copy the end of the person's suspension in force (or none) onto their lock row."""
    sus = active_suspension(session, person=person, at=at)
    until = sus.ends_at if sus else None
    stmt = _dialect_insert(session, PersonLock).values(person_id=person, bumps=0, suspended_until=until)
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


_PERSON_ROWS: dict[bool, Any] = {}


def _person_rows_stmt(keyed: bool) -> Any:
    stmt = _PERSON_ROWS.get(keyed)
    if stmt is None:
        window = and_(
            Appointment.person_id == bindparam("pid"),
            Appointment.status.in_(COUNTING),
            Appointment.service_date >= bindparam("lo", type_=Appointment.__table__.c.service_date.type),
            Appointment.service_date <= bindparam("hi", type_=Appointment.__table__.c.service_date.type),
        )
        cond = or_(window, Appointment.idempotency_key == bindparam("key")) if keyed else window
        stmt = select(
            Appointment.id,
            Appointment.service_date,
            Appointment.hospital_code,
            Appointment.department_code,
            Appointment.status,
            Appointment.idempotency_key,
            Appointment.person_id,
        ).where(cond)
        _PERSON_ROWS[keyed] = stmt
    return stmt


def _person_rows(session: Session, pid: str, day: date, key: str | None) -> list[Any]:
    """The person's bookings that count around a day (and the one with this idempotency key): one query."""
    params = {"pid": pid, "lo": day - timedelta(days=6), "hi": day + timedelta(days=6), "key": key}
    return list(session.execute(_person_rows_stmt(key is not None), params).all())


def _check_limits(all_rows: list[Any], pid: str, slot: Slot, rules: R.Rules) -> None:
    day = slot.service_date
    rows = [
        (r.service_date, r.hospital_code, r.department_code)
        for r in all_rows
        if r.status in COUNTING and r.person_id == pid and abs((r.service_date - day).days) <= 6
    ]
    same_dept = sum(
        1 for d, h, dep in rows if d == day and h == slot.hospital_code and dep == slot.department_code
    )
    if same_dept >= rules.limit_dept_day:
        raise Conflict(
            f"同一就诊人同一天在同一医院同一科室最多预约 {rules.limit_dept_day} 个号", code="limit-department"
        )
    if sum(1 for d, _h, _dep in rows if d == day) >= rules.limit_day:
        raise Conflict(f"同一就诊人同一天最多预约 {rules.limit_day} 个号", code="limit-daily")
    for start in (day - timedelta(days=k) for k in range(7)):
        end = start + timedelta(days=6)
        if sum(1 for d, _h, _dep in rows if start <= d <= end) >= rules.limit_week:
            raise Conflict(f"同一就诊人任意 7 天内最多预约 {rules.limit_week} 个号", code="limit-weekly")


_SOLD_OUT: dict[tuple[int, str], float] = {}
SOLD_OUT_TTL = 0.5  # seconds a sold-out answer is served from memory (a cancellation shows up after this)


def book(
    session: Session,
    *,
    slot_id: int,
    person: str,
    actor: Principal,
    person_name: str | None = None,
    channel: str | None = None,
    tranche: str | None = None,
    idempotency_key: str | None = None,
    referral_id: int | None = None,
) -> Booked:
    """Book one place for a person (real name), or raise the rule that refuses it (409/403/422).

    A retried call with the same idempotency key returns the first booking and books nothing.
    """
    tranche = tranche or default_tranche(actor)
    if tranche not in TRANCHES:
        raise Invalid(f"号源类别应为 {'/'.join(TRANCHES)}", code="bad-tranche")
    pid = person_id(person)
    if actor.role is Role.resident and pid != actor.subject.strip().upper():
        raise Forbidden("居民只能为本人预约（实名制）", code="not-self")
    chan = channel_for(actor, channel)
    key = f"{actor.subject}:{idempotency_key}" if idempotency_key else None
    t = now()
    hot = _SOLD_OUT.get((slot_id, tranche))
    if hot is not None and hot > _time.monotonic():
        # sold out a moment ago: answer from memory (a retry still finds its first booking)
        if key is not None:
            existing = session.scalar(select(Appointment).where(Appointment.idempotency_key == key))
            if existing is not None and existing.person_id == pid and existing.slot_id == slot_id:
                return Booked(existing, False)
        raise Conflict(f"该时段{TRANCHE_LABELS[tranche]}已约满", code="slot-full")

    postgres = session.get_bind().dialect.name == "postgresql"
    suspended_until: datetime | None = None
    if postgres:
        # one round trip: the slot (fast refusal) and the person's lock row (see _lock_person)
        slot, suspended_until = _slot_and_lock(session, slot_id, pid)
    else:
        slot = session.get(Slot, slot_id, populate_existing=True)
    if slot is None:
        raise NotFound(f"号源时段不存在：{slot_id}", code="no-slot")
    try:
        _refuse_slot_cached(slot, tranche, t, actor)
    except Conflict:
        if key is not None:  # a retry of a booking that took the last place finds that booking
            existing = session.scalar(select(Appointment).where(Appointment.idempotency_key == key))
            if existing is not None:
                return _same_request(existing, pid, slot_id)
        raise
    rules = get_rules(session, hospital_code=slot.hospital_code)

    # from here on this person's bookings are serialised; the lock row also carries the suspension
    if not postgres:
        suspended_until = _lock_person(session, pid)
    rows = _person_rows(session, pid, slot.service_date, key)
    if key is not None:
        for row in rows:
            if row.idempotency_key == key:
                existing = session.get(Appointment, row.id)
                assert existing is not None
                return _same_request(existing, pid, slot_id)
    if tranche == "family":
        _check_signed(session, pid, actor)
    if suspended_until is not None and suspended_until > t:
        until = suspended_until.astimezone(SHANGHAI)
        raise Conflict(f"因多次爽约，预约功能暂停至 {until:%Y-%m-%d}（可申诉）", code="suspended")
    _check_limits(rows, pid, slot, rules)

    status = "held" if rules.prepay_minutes > 0 else "booked"
    values = {
        "slot_id": slot_id,
        "schedule_id": slot.schedule_id,
        "hospital_code": slot.hospital_code,
        "department_code": slot.department_code,
        "service_date": slot.service_date,
        "starts_at": slot.starts_at,
        "ends_at": slot.ends_at,
        "person_id": pid,
        "person_name": person_name,
        "channel": chan,
        "tranche": tranche,
        "status": status,
        "idempotency_key": key,
        "referral_id": referral_id,
        "hold_expires_at": t + timedelta(minutes=rules.prepay_minutes) if status == "held" else None,
        "created_by": actor.subject,
        "created_role": actor.role.value,
        "actor_institution": actor.institution_code
        if actor.role in (Role.doctor, Role.family_doctor)
        else None,
        "created_at": t,
        "updated_at": t,
    }
    # the one conditional write that takes the place: it cannot oversell under any concurrency
    if postgres:  # UPDATE … RETURNING feeding INSERT … ON CONFLICT, one statement
        return _take_and_insert_pg(session, slot, tranche, values, t, actor)
    booked_col = {"public": Slot.booked_public, "family": Slot.booked_family, "clinic": Slot.booked_clinic}[
        tranche
    ]
    cap_col = {"public": Slot.cap_public, "family": Slot.cap_family, "clinic": Slot.cap_clinic}[tranche]
    conds = [Slot.id == slot_id, Slot.status == "open", booked_col < cap_col, Slot.starts_at > t]
    if tranche == "public":
        conds.append(Slot.public_release_at <= t)
    elif tranche == "family":
        conds.append(Slot.family_release_at <= t)
    taken = session.execute(
        update(Slot)
        .where(*conds)
        .values({booked_col.key: booked_col + 1, "updated_at": t})
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(slot)
        _refuse_slot(slot, tranche, t, actor)
        raise Conflict("号源已被抢完", code="slot-full")  # pragma: no cover - refused above

    ins = _dialect_insert(session, Appointment).values(**values)
    if key is not None:
        ins = ins.on_conflict_do_nothing(index_elements=["idempotency_key"])
    appt = session.scalar(ins.returning(Appointment), execution_options={"populate_existing": True})
    if appt is None:
        # the same key won a race from another person's request; give the place back
        session.execute(update(Slot).where(Slot.id == slot_id).values({booked_col.key: booked_col - 1}))
        raise Conflict("幂等键已用于另一笔预约", code="idempotency-key-reused")
    return Booked(appt, True)


# PostgreSQL hot path: the statements are built once with bound parameters, so a booking spends no
# time constructing SQL and hits SQLAlchemy's compiled cache at once.
_PG_STATEMENTS: dict[Any, Any] = {}
_APPT_COLUMNS = (
    "slot_id",
    "schedule_id",
    "hospital_code",
    "department_code",
    "service_date",
    "starts_at",
    "ends_at",
    "person_id",
    "person_name",
    "channel",
    "tranche",
    "status",
    "idempotency_key",
    "referral_id",
    "hold_expires_at",
    "created_by",
    "created_role",
    "actor_institution",
    "created_at",
    "updated_at",
)


def _pg_slot_and_lock_stmt() -> Any:
    stmt = _PG_STATEMENTS.get("slot_and_lock")
    if stmt is None:
        lock = (
            postgresql.insert(PersonLock)
            .values(person_id=bindparam("pid"), bumps=1)
            .on_conflict_do_update(index_elements=["person_id"], set_={"bumps": PersonLock.bumps + 1})
            .returning(PersonLock.suspended_until)
            .cte("person_lock")
        )
        stmt = (
            select(Slot, lock.c.suspended_until)
            .select_from(lock)
            .outerjoin(Slot, Slot.id == bindparam("slot_id"))
        )
        _PG_STATEMENTS["slot_and_lock"] = stmt
    return stmt


def _pg_take_stmt(tranche: str, keyed: bool) -> Any:
    stmt = _PG_STATEMENTS.get((tranche, keyed))
    if stmt is None:
        booked_col = getattr(Slot, f"booked_{tranche}")
        cap_col = getattr(Slot, f"cap_{tranche}")
        t = bindparam("t", type_=Slot.__table__.c.updated_at.type)
        conds = [
            Slot.id == bindparam("slot_id"),
            Slot.status == "open",
            booked_col < cap_col,
            Slot.starts_at > t,
        ]
        if tranche == "public":
            conds.append(Slot.public_release_at <= t)
        elif tranche == "family":
            conds.append(Slot.family_release_at <= t)
        taken = (
            update(Slot)
            .where(*conds)
            .values({booked_col.key: booked_col + 1, "updated_at": t})
            .returning(Slot.id)
            .cte("taken")
        )
        table = Appointment.__table__
        src = select(
            *[
                (taken.c.id if k == "slot_id" else bindparam(f"v_{k}", type_=table.c[k].type)).label(k)
                for k in _APPT_COLUMNS
            ]
        ).select_from(taken)
        ins = postgresql.insert(Appointment).from_select(list(_APPT_COLUMNS), src)
        if keyed:
            ins = ins.on_conflict_do_nothing(index_elements=["idempotency_key"])
        made = ins.returning(*table.c).cte("made")
        stmt = select(taken.c.id, aliased(Appointment, made)).select_from(taken).outerjoin(made, true())
        _PG_STATEMENTS[(tranche, keyed)] = stmt
    return stmt


def _slot_and_lock(session: Session, slot_id: int, pid: str) -> tuple[Slot | None, datetime | None]:
    """PostgreSQL: read the slot and take the person's lock row (upsert) in ONE statement.

    The slot is read for the fast refusal and its static columns only (the conditional UPDATE is the
    guard); the limits are read by the next statement, whose fresh snapshot sees every booking the
    person's earlier transactions committed while this one waited on the lock.
    """
    row = session.execute(
        _pg_slot_and_lock_stmt(),
        {"pid": pid, "slot_id": slot_id},
        execution_options={"populate_existing": True},
    ).one()
    return row[0], row[1]


def _take_and_insert_pg(
    session: Session, slot: Slot, tranche: str, values: dict[str, Any], t: datetime, actor: Principal
) -> Booked:
    """PostgreSQL: the conditional UPDATE and the INSERT … ON CONFLICT as ONE statement (CTEs)."""
    params = {f"v_{k}": v for k, v in values.items() if k != "slot_id"}
    params["slot_id"], params["t"] = values["slot_id"], t
    row = session.execute(
        _pg_take_stmt(tranche, values["idempotency_key"] is not None),
        params,
        execution_options={"populate_existing": True},
    ).first()
    if row is None:  # the place was not taken: say which rule refuses it
        session.refresh(slot)
        _refuse_slot(slot, tranche, t, actor)
        raise Conflict("号源已被抢完", code="slot-full")  # pragma: no cover - refused above
    if row[1] is None:
        # the same key won a race from another person's request; give the place back
        booked_col = getattr(Slot, f"booked_{tranche}")
        session.execute(update(Slot).where(Slot.id == slot.id).values({booked_col.key: booked_col - 1}))
        raise Conflict("幂等键已用于另一笔预约", code="idempotency-key-reused")
    appt: Appointment = row[1]
    return Booked(appt, True)


def _same_request(existing: Appointment, pid: str, slot_id: int) -> Booked:
    if existing.person_id != pid or existing.slot_id != slot_id:
        raise Conflict("幂等键已用于另一笔预约", code="idempotency-key-reused")
    return Booked(existing, False)


def _refuse_slot_cached(slot: Slot, tranche: str, t: datetime, actor: Principal) -> None:
    try:
        _refuse_slot(slot, tranche, t, actor)
    except Conflict as exc:
        if exc.code == "slot-full":
            _SOLD_OUT[(slot.id, tranche)] = _time.monotonic() + SOLD_OUT_TTL
        raise


def _forget_sold_out(slot_id: int) -> None:
    for tranche in TRANCHES:
        _SOLD_OUT.pop((slot_id, tranche), None)


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
    if tranche == "family" and slot.reflowed:
        # after public release an unused family place belongs to the public pool
        values = {
            "booked_family": Slot.booked_family - 1,
            "cap_family": Slot.cap_family - 1,
            "cap_public": Slot.cap_public + 1,
        }
        cond = Slot.booked_family > 0
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
    _forget_sold_out(slot_id)
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


# ------------------------------------------------------------------ jobs


def reflow_due(session: Session, *, at: datetime | None = None) -> int:
    """At public release, unused family-doctor places flow into the public pool (one statement)."""
    t = at or now()
    res = session.execute(
        update(Slot)
        .where(Slot.reflowed.is_(False), Slot.public_release_at <= t)
        .values(
            cap_public=Slot.cap_public + Slot.cap_family - Slot.booked_family,
            cap_family=Slot.booked_family,
            reflowed=True,
            updated_at=t,
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
    """Everything time-driven, for 'now' (or `at`): reflow at release, holds, returns, no-shows."""
    t = at or now()
    reflowed = reflow_due(session, at=t)
    holds = expire_holds(session, at=t)
    returns = release_returns(session, at=t)
    no_shows, suspended = mark_no_shows(session, at=t)
    return {
        "reflowed_slots": reflowed,
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


def _check_signed(session: Session, pid: str, actor: Principal) -> None:
    row = session.get(Signing, pid)
    if row is None or row.institution_code != actor.institution_code:
        raise Conflict("该居民未与本机构家庭医生签约，不能使用优先号源", code="not-signed")


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
