"""Never oversell: thousands of concurrent bookings at one slot on real connections, then the invariants."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from rhip.booking import service as svc, soldout
from rhip.booking.models import Appointment, Slot
from rhip.config import Settings
from rhip.db.engine import Database
from rhip.errors import RhipError
from tests.booking.conftest import SECONDARY, new_person, resident, schedule

pytestmark = pytest.mark.slow

DAY = date(2025, 3, 7)


def _attempt(db: Database, slot_id: int, pid: str, key: str | None) -> str:
    try:
        with db.session() as s, s.begin():
            done = svc.book(s, slot_id=slot_id, person=pid, actor=resident(pid), idempotency_key=key)
        return "created" if done.created else "replayed"
    except RhipError as exc:
        return exc.code


def test_flash_crowd_one_slot(
    bdb: Database, settings: Settings, backend: str, frozen: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every request goes to the database: no sold-out answers from memory
    monkeypatch.setattr(soldout, "SOLD_OUT_TTL", 0.0)
    people, workers = (1500, 30) if backend == "postgres" else (200, 8)
    with bdb.session() as s:
        hot = schedule(s, day=DAY, hospital_code=SECONDARY, capacity=40, slot_minutes=60)
        others = [
            schedule(s, day=DAY, hospital_code=SECONDARY, department_code=d) for d in ("03.01", "03.02")
        ]
        with s.begin():
            hot_slot = svc.get_slots(s, schedule_id=hot.id)[0].id
            same_dept = [x.id for x in svc.get_slots(s, schedule_id=hot.id)[1:]]
            other_dept = [x.id for o in others for x in svc.get_slots(s, schedule_id=o.id)[:3]]
    run = uuid.uuid4().hex[:6]
    tasks: list[tuple[int, str, str | None]] = []
    for i in range(people):
        pid = new_person()
        key = f"{run}-{i}"
        tasks += [(hot_slot, pid, key), (hot_slot, pid, key)]  # a retry with the same key
    greedy = [new_person() for _ in range(people // 10)]
    for pid in greedy:  # each tries everything at once: 1 per department-day, 2 per day
        tasks += [(sid, pid, None) for sid in [hot_slot, *same_dept[:2], *other_dept]]
    random.Random(7).shuffle(tasks)
    engine_db = Database(settings.resolved_database_url)  # its own pool: 30 real connections
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(lambda t: _attempt(engine_db, *t), tasks))
    finally:
        engine_db.dispose()

    counted = Counter(outcomes)
    unexpected = set(counted) - {
        "created",
        "replayed",
        "slot-full",
        "limit-department",
        "limit-daily",
        "limit-weekly",
    }
    assert not unexpected, counted
    with bdb.session() as s, s.begin():
        slot = s.get(Slot, hot_slot)
        assert slot is not None
        held = s.scalar(
            select(func.count()).where(Appointment.slot_id == hot_slot, Appointment.status == "booked")
        )
        assert slot.booked_public == held == slot.cap_public == 40, counted
        keys = s.execute(
            select(Appointment.idempotency_key, func.count())
            .where(Appointment.idempotency_key.like(f"%:{run}-%"))
            .group_by(Appointment.idempotency_key)
        ).all()
        assert all(n == 1 for _k, n in keys)
        rows = s.execute(
            select(Appointment.person_id, Appointment.department_code).where(
                Appointment.service_date == DAY, Appointment.hospital_code == SECONDARY
            )
        ).all()
        per_dept = Counter(rows)
        per_day = Counter(p for p, _d in rows)
        assert max(per_dept.values()) == 1 and max(per_day.values()) <= 2
        total = s.scalar(
            select(func.count()).where(
                Appointment.service_date == DAY, Appointment.hospital_code == SECONDARY
            )
        )
        assert counted["created"] == total
        for sid in [*same_dept, *other_dept]:
            other = s.get(Slot, sid)
            assert other is not None and other.booked_public <= other.cap_public
    # every person got at most one answer of 'created' for their key; retries replayed or were refused
    assert counted["created"] <= 40 + len(greedy) * 2
