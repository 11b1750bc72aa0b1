"""The demo's terminal registrations, booked as the real API books them.

A successful 当日挂号 at a terminal takes a slot through `booking.service.book` on the channel 自助机
(`self_service`, via `transactions.post`, idempotency key `ss:<terminal>:<txn_no>`), like a terminal's
POST /api/v1/selfservice/transactions with `slot_id`. The demo replays a past month, so each registration
is posted with the clock frozen at its own time: the hospital's session of that day (an ordinary clinic,
DOCTOR in DEPARTMENT, published when first needed, with the clock before the month, in the same transaction)
is taken at its first slot starting LEAD or more after the registration. A slot that refuses (full) passes
to the next; a registration no slot of the day can take is recorded as reported (as a hospital's HIS
reports it), and counted. Every booking and its transaction commit together (one savepoint each).

The demo books DEMO_BOOKED registrations spread evenly over the month's hospitals and days, and records the
others as the hospitals' systems report them (no slot): publishing a session and booking cost ~40 ms each
on the shared 2-core machine under load (~4 ms quiet), so booking all 3,975 of 2018-03 at s = 0.01 took
211 s (load 17) against 6 s for the whole step without booking; 200 add ~13 s there.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from rhip import clock
from rhip.booking import service as booking
from rhip.clock import SHANGHAI
from rhip.db.engine import Database
from rhip.errors import Conflict, RhipError
from rhip.registry import data as reg_data
from rhip.registry.idnumber import make_id
from rhip.security.roles import Role
from rhip.security.service import Principal
from rhip.selfservice import stats, synth, transactions as T
from rhip.selfservice.keys import TerminalRef

DEPARTMENT = "03"  # 内科
DOCTOR = "普通门诊（自助机号源）"
SESSIONS = ("am", "pm", "night")
SLOT_MINUTES = 30
LEAD = timedelta(minutes=10)
DEMO_BOOKED = 200
STAFF = Principal(subject="demo", role=Role.manager)


@dataclass
class Booked:
    """What booking the month's registrations did."""

    booked: int = 0
    replayed: int = 0
    reported: int = 0  # no slot of the day could take it: recorded without one
    schedules: int = 0
    refusals: Counter[str] = field(default_factory=Counter)


def registrations(plan: synth.Plan) -> list[synth.PlannedTxn]:
    """The plan's successful registrations (those a terminal books); failed ones are only recorded."""
    return [x for x in plan.txns if x.kind == "register" and x.outcome == "ok"]


def _person(i: int) -> str:
    """A synthetic resident's ID number, one per registration (area 320106 鼓楼区)."""
    birth = date(1940, 1, 1) + timedelta(days=(i * 7919) % 25_000)
    return make_id("320106", birth, (i // 25_000) % 1000)


def _capacity(session: Session, hospital: str, demand: int) -> int:
    """Places per slot so that `demand` registrations fit in one slot's public share (the hospital's
    family and in-clinic shares taken off), with one to spare."""
    rules = booking.get_rules(session, hospital_code=hospital)
    inst = reg_data.get(hospital)
    public = 100 - rules.family_share(tertiary=bool(inst and inst.tertiary)) - rules.clinic_share_pct
    return math.ceil((demand + 1) * 100 / max(public, 10)) + 1


class _Slots:
    """The demo sessions' slots per (hospital, day, session), published when first asked for."""

    def __init__(self, month: str, demand: Counter[tuple[str, date]]) -> None:
        self.demand, self.made = demand, 0
        self.publish_at = datetime.combine(stats.first_day(month), datetime.min.time(), SHANGHAI) - timedelta(
            days=21
        )
        self._slots: dict[tuple[str, date, str], list[tuple[int, datetime]]] = {}

    def get(self, s: Session, hospital: str, day: date, sess: str) -> list[tuple[int, datetime]]:
        key = (hospital, day, sess)
        if key not in self._slots:
            self._slots[key] = self._publish(s, hospital, day, sess)
        return self._slots[key]

    def _publish(self, s: Session, hospital: str, day: date, sess: str) -> list[tuple[int, datetime]]:
        # in the bookings' transaction (a savepoint): one commit for the lot, not one per session
        with clock.frozen(self.publish_at), s.begin_nested():
            spec = booking.ScheduleSpec(
                hospital_code=hospital,
                department_code=DEPARTMENT,
                doctor_name=DOCTOR,
                doctor_title="医师",
                service_date=day,
                session=sess,
                slot_minutes=SLOT_MINUTES,
                capacity_per_slot=_capacity(s, hospital, self.demand[(hospital, day)]),
            )
            try:
                sched_id = booking.create_schedule(s, spec=spec, actor=STAFF, allow_holiday=True).id
                self.made += 1
            except Conflict as exc:  # published by an earlier run
                if exc.code != "schedule-exists":
                    raise
                sched_id = int(exc.extra["schedule_id"])
            return [(x.id, x.starts_at) for x in booking.get_slots(s, schedule_id=sched_id)]


def book_registrations(
    db: Database, plan: synth.Plan, terminals: dict[str, TerminalRef], *, limit: int | None = None
) -> tuple[Booked, set[tuple[str, str]]]:
    """Post the plan's successful registrations (`limit` of them evenly spread, all when None) with a slot,
    through the booking service; returns what happened and the (terminal, txn number) pairs posted (the
    caller records the rest as before)."""
    regs = registrations(plan)
    if limit is not None and limit < len(regs):  # spread over the month's hospitals and days
        regs = regs[:: math.ceil(len(regs) / limit)][:limit] if limit > 0 else []
    demand: Counter[tuple[str, date]] = Counter(
        (terminals[x.terminal].institution_code, x.at.astimezone(SHANGHAI).date()) for x in regs
    )
    slots = _Slots(plan.month, demand)
    out = Booked()
    posted: set[tuple[str, str]] = set()
    with db.session() as s, s.begin():
        for i, x in enumerate(regs):
            term = terminals[x.terminal]
            day = x.at.astimezone(SHANGHAI).date()
            txn = T.TxnIn(txn_no=x.txn_no, kind="register", occurred_at=x.at, amount_fen=x.amount_fen,
                          duration_ms=x.duration_ms, id_number=_person(i))  # fmt: skip
            if _book_one(s, slots, term, day, txn, out):
                posted.add((x.terminal, x.txn_no))
    out.schedules = slots.made
    return out, posted


def _book_one(s: Session, slots: _Slots, term: TerminalRef, day: date, txn: T.TxnIn, out: Booked) -> bool:
    """One registration on the first slot of the day that takes it; False when none does."""
    for sess in SESSIONS:
        for slot_id, starts in slots.get(s, term.institution_code, day, sess):
            if starts < txn.occurred_at + LEAD:
                continue
            txn.slot_id = slot_id
            try:
                with clock.frozen(txn.occurred_at), s.begin_nested():
                    posted = T.post(s, terminal=term, txn=txn)
            except RhipError as exc:
                out.refusals[exc.code] += 1
                if exc.code == "slot-full":
                    continue
                break
            out.booked += posted.created
            out.replayed += not posted.created
            return True
    out.reported += 1
    return False
