"""Bookings sent together on PostgreSQL (pgbatch → rhip_book_many): capacity, limits, idempotency and lock
order hold for concurrent batches on a real database; a failed batch is retried booking by booking; the
route's answers are the model's JSON and its lean path leaves malformed requests to FastAPI."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from rhip import clock
from rhip.booking import booker, pgbatch, soldout
from rhip.booking.models import Appointment, Slot
from rhip.booking.schemas import AppointmentRead, appointment_fields
from rhip.db.engine import Database
from rhip.errors import RhipError
from rhip.security.roles import Role
from rhip.security.service import Principal
from tests.booking.conftest import SECONDARY, new_person, schedule

DAY = date(2025, 3, 6)
AGENT = Principal(subject="batch-agent", role=Role.agent)
API = "/api/v1/booking"


def test_route_json_is_the_models_json() -> None:
    t = datetime(2025, 3, 3, 1, 2, 3, 456789, tzinfo=UTC)
    for status, hold, checked in (("booked", None, None), ("held", t, None), ("checked_in", None, t)):
        a = Appointment(
            id=7,
            slot_id=3,
            schedule_id=2,
            hospital_code="H029",
            department_code="03.04",
            service_date=DAY,
            starts_at=datetime(2025, 3, 6, 0, 30, tzinfo=UTC),
            ends_at=datetime(2025, 3, 6, 1, 0, tzinfo=UTC),
            person_id="11010519491231002X",
            person_name="张三" if hold else None,
            channel="phone_12320",
            tranche="public",
            status=status,
            hold_expires_at=hold,
            checked_in_at=checked,
            cancel_reason=None,
            referral_id=None,
            created_at=t,
        )
        assert orjson.dumps(appointment_fields(a)) == AppointmentRead.of(a).model_dump_json().encode()


def test_lean_route_leaves_malformed_requests_to_fastapi(client: TestClient, auth: Any) -> None:
    agent = auth("agent")
    bad_json = client.post(
        f"{API}/appointments", content=b'{"slot_id": ', headers={**agent, "Content-Type": "application/json"}
    )
    assert bad_json.status_code == 422 and bad_json.json()["errors"][0]["type"] == "json_invalid"
    not_json = client.post(
        f"{API}/appointments", content=b'{"slot_id": 1}', headers={**agent, "Content-Type": "text/plain"}
    )
    assert not_json.status_code == 422 and not_json.json()["code"] == "request-invalid"
    missing = client.post(f"{API}/appointments", json={"person_id": new_person()}, headers=agent)
    assert missing.status_code == 422 and missing.json()["errors"][0]["loc"] == ["body", "slot_id"]
    long_key = client.post(
        f"{API}/appointments", json={"slot_id": 1}, headers={**agent, "Idempotency-Key": "k" * 121}
    )
    assert long_key.status_code == 422 and long_key.json()["errors"][0]["loc"] == [
        "header",
        "idempotency-key",
    ]
    assert client.post(f"{API}/appointments", json={"slot_id": 1}).status_code == 401


@pytest.fixture()
def pg(bdb: Database, backend: str, monkeypatch: pytest.MonkeyPatch) -> Database:
    """The PostgreSQL database, every request to the database (no sold-out answers from memory)."""
    if backend != "postgres":
        pytest.skip("rhip_book_many is PostgreSQL's")
    monkeypatch.setattr(soldout, "SOLD_OUT_TTL", 0.0)
    return bdb


def _slots(db: Database, *, capacity: int, n: int, dept: str = "03.04") -> list[int]:
    with db.session() as s:
        sched = schedule(s, day=DAY, hospital_code=SECONDARY, capacity=capacity, department_code=dept)
        with s.begin():
            return [
                x.id for x in s.scalars(select(Slot).where(Slot.schedule_id == sched.id).order_by(Slot.id))
            ][:n]


async def _book(
    db: Database, slot_id: int, pid: str, key: str | None, name: str | None = None
) -> tuple[str, int | None]:
    req = booker.refuse_from_memory(db.engine, slot_id=slot_id, person=pid, actor=AGENT, idempotency_key=key)
    try:
        answer, created = await pgbatch.book(
            db.url, id(db.engine), req, slot_id=slot_id, actor=AGENT, person_name=name
        )
    except RhipError as exc:
        return exc.code, None
    except psycopg.Error:
        return "error", None
    return ("created" if created else "replayed"), answer.id


async def _gather(calls: list[Any]) -> list[tuple[str, int | None]]:
    try:
        return list(await asyncio.gather(*calls))
    finally:
        await pgbatch.close_all()


def test_batches_keep_capacity_limits_and_idempotency(
    pg: Database, frozen: datetime, batch_sizes: list[int]
) -> None:
    hot, *same_dept = _slots(pg, capacity=10, n=4)
    other_dept = _slots(pg, capacity=10, n=3, dept="03.02")
    run = uuid.uuid4().hex[:6]
    calls: list[tuple[int, str, str | None]] = []
    for i in range(120):  # each sends the same request twice: in the same batch or the next
        pid = new_person()
        calls += [(hot, pid, f"{run}-{i}"), (hot, pid, f"{run}-{i}")]
    greedy = [new_person() for _ in range(15)]
    for pid in greedy:  # 1 per department-day, 2 per day, all tried at once
        calls += [(sid, pid, None) for sid in [*same_dept, *other_dept]]
    outcomes = asyncio.run(_gather([_book(pg, *c) for c in calls]))

    assert max(batch_sizes) > 1, batch_sizes  # they went together
    counted = Counter(code for code, _id in outcomes)
    assert set(counted) <= {"created", "replayed", "slot-full", "limit-department", "limit-daily"}, counted
    by_key: dict[str, set[int | None]] = {}
    for (_slot, _pid, key), (code, appt) in zip(calls, outcomes, strict=True):
        if key and code in ("created", "replayed"):
            by_key.setdefault(key, set()).add(appt)
    assert all(len(ids) == 1 for ids in by_key.values())  # a replay answers the first booking
    with pg.session() as s, s.begin():
        slot = s.get(Slot, hot)
        assert slot is not None
        held = s.scalar(select(func.count()).where(Appointment.slot_id == hot))
        assert slot.booked_public == held == slot.cap_public == 10
        rows = s.execute(
            select(Appointment.person_id, Appointment.department_code).where(
                Appointment.person_id.in_(greedy), Appointment.service_date == DAY
            )
        ).all()
        assert max(Counter(rows).values()) == 1 and max(Counter(p for p, _d in rows).values()) == 2
        assert len({p for p, _d in rows}) == len(greedy)
        keys = s.scalar(select(func.count()).where(Appointment.idempotency_key.like(f"%:{run}-%")))
        assert keys == 10
    assert counted["created"] == 10 + 2 * len(greedy)


def test_concurrent_batches_take_locks_in_one_order(
    pg: Database, frozen: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    slots = _slots(pg, capacity=50, n=8)
    alone: list[Any] = []

    async def no_retry(*args: Any) -> None:  # a deadlock would fail a batch and send each alone
        alone.append(args)

    monkeypatch.setattr(pgbatch, "_send_alone", no_retry)
    # every batch books every slot, half of them in the reverse order: unsorted, they would deadlock
    calls = [
        _book(pg, sid, new_person(), None)
        for round_ in range(6)
        for sid in (slots if round_ % 2 else slots[::-1])
    ]
    monkeypatch.setattr(pgbatch, "MAX_BATCH", len(slots))
    outcomes = asyncio.run(_gather(calls))
    assert Counter(code for code, _id in outcomes) == {"created": len(calls)} and not alone


def test_a_failed_batch_books_each_alone(pg: Database, frozen: datetime, batch_sizes: list[int]) -> None:
    slots = _slots(pg, capacity=5, n=3)
    names = ["李四", "王" * 65, "赵六"]  # the second is too long for the column: the batch fails
    outcomes = asyncio.run(
        _gather([_book(pg, sid, new_person(), None, name) for sid, name in zip(slots, names, strict=True)])
    )
    assert [code for code, _id in outcomes] == ["created", "error", "created"]
    assert batch_sizes == [3, 1, 1, 1]
    with pg.session() as s, s.begin():
        assert [s.get(Slot, sid).booked_public for sid in slots] == [1, 0, 1]  # type: ignore[union-attr]


def test_answers_are_read_by_primary_key_whatever_the_plan(pg: Database, frozen: datetime) -> None:
    # a generic plan (as a booking worker's long-lived connection keeps one) made with this small test
    # table's statistics: the answers' appointments must still be one index lookup each, never a scan of
    # booking_appointments (which grows with every booking: 7 ms a batch at 40k rows, measured)
    slot_id = _slots(pg, capacity=2, n=1)[0]
    plans: list[str] = []
    conninfo = pg.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        conn.add_notice_handler(lambda d: plans.append(d.message_primary or ""))
        for setting in (
            "plan_cache_mode = force_generic_plan",
            "auto_explain.log_min_duration = 0",
            "auto_explain.log_nested_statements = on",
            "client_min_messages = log",
        ):
            conn.execute(f"SET {setting}")  # type: ignore[arg-type]
        conn.execute("LOAD 'auto_explain'")
        now = clock.now()  # the frozen clock: the slot is still ahead
        people = [new_person(), new_person()]
        rows = conn.execute(
            pgbatch.MANY_SQL,
            [
                [slot_id, 0],  # the second is refused: no such slot
                people,
                ["public"] * 2,
                [f"plan-{uuid.uuid4().hex}", None],
                [now] * 2,
                ["agent"] * 2,
                [None] * 2,
                ["plan-test"] * 2,
                [None] * 2,
                ["phone_12320"] * 2,
                [None] * 2,
                [None] * 2,
                *pgbatch._LIMITS,
            ],
        ).fetchall()
        conn.rollback()  # nothing stays
    assert [r[0] for r in rows] == ["booked", "no-slot"] and rows[0][4] is not None and rows[1][4] is None
    final = [p for p in plans if "WITH ORDINALITY AS x(code" in p]
    assert len(final) == 1, plans
    assert "Seq Scan on booking_appointments" not in final[0] and "Hash" not in final[0], final[0]
    assert "Index Scan using pk_booking_appointments" in final[0], final[0]
