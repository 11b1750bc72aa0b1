"""The one-pool booking write: `book` and everything on its hot path.

The place is taken by ONE conditional UPDATE (`booked_x = booked_x + 1 WHERE booked_x < cap_x`), the
database checks `booked_x <= cap_x` too, a person's bookings serialise on their row in
booking_person_locks so limits hold under any concurrency, and an idempotency key is unique and
inserted with ON CONFLICT DO NOTHING. On PostgreSQL the statements are built once (see docs/booking.md
for the round trips); a slot found full is answered from memory for soldout.SOLD_OUT_TTL seconds
(booking/soldout.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session, make_transient_to_detached

from rhip.booking import rules as R
from rhip.booking.common import (
    CHANNEL_KEY_PREFIX,
    RESIDENT_CHANNELS,
    TERMINAL_CHANNEL,
    TRANCHES,
    channel_group,
    get_rules,
    person_id,
)
from rhip.booking.models import COUNTING, Appointment, PersonLock, Signing, Slot
from rhip.booking.refusals import check_limits, refuse, refuse_slot
from rhip.booking.soldout import full_in_memory, remember_full
from rhip.clock import now
from rhip.db.engine import dialect_insert
from rhip.errors import Conflict, Forbidden, Invalid
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
    if actor.role is Role.uploader and actor.via == "terminal":  # a hospital's self-service terminal
        return TERMINAL_CHANNEL
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


def actor_institution(actor: Principal) -> str | None:
    """The institution recorded on a booking: the booking doctor's or family doctor's, else none."""
    return actor.institution_code if actor.role in (Role.doctor, Role.family_doctor) else None


def _lock_person(session: Session, pid: str) -> datetime | None:
    """Take the person's row lock (upsert); returns the end of a suspension recorded on it."""
    stmt = dialect_insert(session, PersonLock).values(person_id=pid, bumps=1)
    stmt = stmt.on_conflict_do_update(index_elements=["person_id"], set_={"bumps": PersonLock.bumps + 1})
    return session.execute(stmt.returning(PersonLock.suspended_until)).scalar()


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


_SLOT_KEYS = select(Appointment.idempotency_key).where(
    Appointment.slot_id == bindparam("slot_id"), Appointment.idempotency_key.is_not(None)
)


class Prepared(NamedTuple):
    """A booking request after its own checks: tranche, person, channel and the caller-scoped key."""

    tranche: str
    pid: str
    channel: str
    key: str | None


def _prepare(
    actor: Principal, person: str, tranche: str | None, channel: str | None, idempotency_key: str | None
) -> Prepared:
    """The checks on the request itself (no database): tranche, person, channel and the scoped key."""
    tranche = tranche or default_tranche(actor)
    if tranche not in TRANCHES:
        raise Invalid(f"号源类别应为 {'/'.join(TRANCHES)}", code="bad-tranche")
    pid = person_id(person)
    if actor.role is Role.resident and pid != actor.subject.strip().upper():
        raise Forbidden("居民只能为本人预约（实名制）", code="not-self")
    chan = channel_for(actor, channel)
    key = f"{actor.subject}:{idempotency_key}" if idempotency_key else None
    return Prepared(tranche, pid, chan, key)


def refuse_from_memory(
    engine: Any,
    *,
    slot_id: int,
    person: str,
    actor: Principal,
    tranche: str | None = None,
    channel: str | None = None,
    idempotency_key: str | None = None,
) -> Prepared:
    """The request's own checks, then slot-full at once when this process knows the slot is full.

    No database and no thread; returns the checked request for the booking itself.
    """
    req = _prepare(actor, person, tranche, channel, idempotency_key)
    if full_in_memory(id(engine), slot_id, req.tranche, req.key):
        refuse("slot-full", req.tranche)
    return req


def _remember_full(session: Session, db: int, slot_id: int, tranche: str) -> None:
    remember_full(
        db, slot_id, tranche, session.connection().execute(_SLOT_KEYS, {"slot_id": slot_id}).scalars()
    )


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
    alone: bool = False,
) -> Booked:
    """Book one place for a person (real name), or raise the rule that refuses it (409/403/422).

    A retried call with the same idempotency key returns the first booking and books nothing. `alone`:
    the entry point's transaction holds nothing but this booking, so on PostgreSQL the one call may
    run in autocommit as its own transaction (one round trip, no BEGIN and COMMIT).
    """
    tranche, pid, chan, key = _prepare(actor, person, tranche, channel, idempotency_key)
    t = now()
    db = id(session.get_bind())
    if full_in_memory(db, slot_id, tranche, key):  # sold out a moment ago: answered from memory
        refuse("slot-full", tranche)
    if session.get_bind().dialect.name == "postgresql":
        return _book_pg(
            session,
            db=db,
            slot_id=slot_id,
            pid=pid,
            tranche=tranche,
            key=key,
            t=t,
            actor=actor,
            person_name=person_name,
            channel=chan,
            referral_id=referral_id,
            alone=alone,
        )
    # SQLite (a single writer): the same steps as rhip_book, statement by statement
    slot = session.get(Slot, slot_id, populate_existing=True)
    if slot is None:
        refuse("no-slot", tranche)
    try:
        _refuse_slot_cached(session, db, slot, tranche, t, actor)
    except Conflict:
        if key is not None:  # a retry of a booking that took the last place finds that booking
            existing = session.scalar(select(Appointment).where(Appointment.idempotency_key == key))
            if existing is not None:
                return _same_request(existing, pid, slot_id)
        raise
    rules = get_rules(session, hospital_code=slot.hospital_code)

    # from here on this person's bookings are serialised; the lock row also carries the suspension
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
        refuse("suspended", tranche, at=suspended_until)
    check_limits(rows, pid, slot, rules)

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
        "actor_institution": actor_institution(actor),
        "created_at": t,
        "updated_at": t,
    }
    # the one conditional write that takes the place: it cannot oversell under any concurrency
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
        refuse_slot(slot, tranche, t, actor)
        refuse("slot-full", tranche)  # pragma: no cover - refused above

    ins = dialect_insert(session, Appointment).values(**values)
    if key is not None:
        ins = ins.on_conflict_do_nothing(index_elements=["idempotency_key"])
    appt = session.scalar(ins.returning(Appointment), execution_options={"populate_existing": True})
    if appt is None:
        # the same key won a race from another person's request; give the place back
        session.execute(update(Slot).where(Slot.id == slot_id).values({booked_col.key: booked_col - 1}))
        refuse("idempotency-key-reused", tranche)
    return Booked(appt, True)


# PostgreSQL: the whole booking is ONE call of the function rhip_book (migration 0012_booking_book_fn),
# which runs the steps of the Python path below in the database: one round trip, and in autocommit
# when it opens the transaction (no BEGIN and COMMIT round trips; the call is its own transaction).
BOOK_SQL = (
    "SELECT * FROM rhip_book(%(slot_id)s, %(pid)s, %(tranche)s, %(key)s, %(now)s, %(role)s, %(inst)s, "
    "%(subject)s, %(person_name)s, %(channel)s, %(referral_id)s, %(actor_institution)s, "
    "%(limit_dept)s, %(limit_day)s, %(limit_week)s, %(prepay)s)"
)
_DEFAULTS = R.Rules()


class Out(NamedTuple):
    """One answer of rhip_book: a code ('booked', 'replay' or a refusal) and the booking's columns."""

    code: str
    at: datetime | None
    n: int | None
    id: int | None
    schedule_id: int | None
    hospital_code: str | None
    department_code: str | None
    service_date: date | None
    starts_at: datetime | None
    ends_at: datetime | None
    status: str | None
    hold_expires_at: datetime | None


def _book_pg(
    session: Session,
    *,
    db: int,
    slot_id: int,
    pid: str,
    tranche: str,
    key: str | None,
    t: datetime,
    actor: Principal,
    person_name: str | None,
    channel: str,
    referral_id: int | None,
    alone: bool,
) -> Booked:
    """PostgreSQL: one call of rhip_book; its answer becomes the appointment or the refusal."""
    params = {
        "slot_id": slot_id,
        "pid": pid,
        "tranche": tranche,
        "key": key,
        "now": t,
        "role": actor.role.value,
        "inst": actor.institution_code,
        "subject": actor.subject,
        "person_name": person_name,
        "channel": channel,
        "referral_id": referral_id,
        "actor_institution": actor_institution(actor),
        # the platform's defaults; the function applies the '*' and hospital rows of booking_rules
        "limit_dept": _DEFAULTS.limit_dept_day,
        "limit_day": _DEFAULTS.limit_day,
        "limit_week": _DEFAULTS.limit_week,
        "prepay": _DEFAULTS.prepay_minutes,
    }
    # straight to the driver's cursor: a prepared statement after five calls, no result metadata to build
    with _connection(session, alone).connection.cursor() as cur:
        cur.execute(BOOK_SQL, params)
        row = Out(*cur.fetchone())
    code = row.code
    if code == "replay":
        existing = session.get(Appointment, row.id)
        assert existing is not None
        return Booked(existing, False)
    if code != "booked":
        if code == "slot-full":
            _remember_full(session, db, slot_id, tranche)
        refuse(code, tranche, at=row.at, n=row.n)
    appt = Appointment(
        id=row.id,
        slot_id=slot_id,
        schedule_id=row.schedule_id,
        hospital_code=row.hospital_code,
        department_code=row.department_code,
        service_date=row.service_date,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        person_id=pid,
        person_name=person_name,
        channel=channel,
        tranche=tranche,
        status=row.status,
        idempotency_key=key,
        referral_id=referral_id,
        hold_expires_at=row.hold_expires_at,
        paid_at=None,
        checked_in_at=None,
        created_by=actor.subject,
        created_role=actor.role.value,
        actor_institution=params["actor_institution"],
        created_at=t,
        cancelled_by=None,
        cancelled_at=None,
        cancel_reason=None,
        updated_at=t,
    )
    # the row exists: the object joins the session as persistent (no SELECT), as if it had been loaded
    make_transient_to_detached(appt)
    return Booked(session.merge(appt, load=False), True)


def _connection(session: Session, alone: bool) -> Any:
    """The session's connection; in autocommit when the booking is alone and opens the transaction."""
    # (autocommit under a transaction that goes on to write more would commit those writes one by one)
    trans = session.get_transaction()
    if alone and trans is not None and getattr(trans, "_connections", None) == {}:
        return session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    return session.connection()


def _same_request(existing: Appointment, pid: str, slot_id: int) -> Booked:
    if existing.person_id != pid or existing.slot_id != slot_id:
        refuse("idempotency-key-reused", "public")
    return Booked(existing, False)


def _refuse_slot_cached(
    session: Session, db: int, slot: Slot, tranche: str, t: datetime, actor: Principal
) -> None:
    try:
        refuse_slot(slot, tranche, t, actor)
    except Conflict as exc:
        if exc.code == "slot-full":
            _remember_full(session, db, slot.id, tranche)
        raise


def _check_signed(session: Session, pid: str, actor: Principal) -> None:
    row = session.get(Signing, pid)
    if row is None or row.institution_code != actor.institution_code:
        refuse("not-signed", "family")
