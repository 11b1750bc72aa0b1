"""Booking services: the one-pool booking write, cancellation, check-in, waitlist, signings.

Every function takes a Session and keyword arguments and never commits: the entry point owns the
transaction. The booking write never oversells: the place is taken by ONE conditional UPDATE
(`booked_x = booked_x + 1 WHERE booked_x < cap_x`), the database checks `booked_x <= cap_x` too,
and a person's bookings serialise on their row in booking_person_locks so limits hold under any
concurrency; an idempotency key is unique and inserted with ON CONFLICT DO NOTHING.

This module is the domain's facade: it re-exports the rule and schedule functions of common.py and
schedules.py. Time-driven jobs and appeals live in jobs.py, referrals and overview lists in referrals.py.
"""

from __future__ import annotations

import random
import time as _time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, true, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, aliased

from rhip.booking import rules as R
from rhip.booking.common import (
    CHANNEL_KEY_PREFIX as CHANNEL_KEY_PREFIX,
    RESIDENT_CHANNELS as RESIDENT_CHANNELS,
    STATUS_LABELS as STATUS_LABELS,
    TRANCHE_LABELS as TRANCHE_LABELS,
    TRANCHES as TRANCHES,
    _dialect_insert as _dialect_insert,
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
    COUNTING,
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
from rhip.clock import SHANGHAI, now
from rhip.errors import Conflict, Forbidden, Invalid, NotFound
from rhip.security.roles import Role
from rhip.security.service import Principal

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
