"""The cheap paths of a sold-out answer stay honest: the ID-number fast path accepts exactly what
validate_id accepts, and on PostgreSQL a slot remembered as full is forgotten as soon as a place comes
back in any process (NOTIFY from migration 0014's trigger), not after a TTL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime

import psycopg
import pytest
from hypothesis import given, settings as hsettings, strategies as st
from sqlalchemy import select, text

from rhip.booking import common, entry, pgbatch, soldout
from rhip.booking.models import Slot
from rhip.db.engine import Database, make_engine
from rhip.errors import Conflict
from rhip.registry.idnumber import make_id, validate_id
from rhip.security.roles import Role
from rhip.security.service import Principal
from tests.booking.conftest import SECONDARY, new_person, schedule

AGENT = Principal(subject="memory-agent", role=Role.agent)


@hsettings(max_examples=400, deadline=None)
@given(
    area=st.sampled_from(["320102", "320106", "340202", "999999", "110105"]),
    born=st.dates(min_value=date(1880, 1, 1), max_value=date(2040, 12, 31)),
    seq=st.integers(0, 999),
    edit=st.sampled_from(["none", "lower", "check", "space", "digit", "15", "fullwidth"]),
)
def test_id_fast_path_accepts_what_validate_id_accepts(area: str, born: date, seq: int, edit: str) -> None:
    number = make_id(area, born, seq)
    if edit == "lower":
        number = number.lower()
    elif edit == "check":
        number = number[:17] + ("0" if number[17] != "0" else "1")
    elif edit == "space":
        number = f" {number}"
    elif edit == "digit":
        number = number[:3] + str((int(number[3]) + 1) % 10) + number[4:]
    elif edit == "15":
        number = number[:6] + number[8:17]
    elif edit == "fullwidth":
        number = number.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    full = validate_id(number)
    fast = common._plain_id(number)
    assert fast is None or (full.ok and fast == full.normalized)
    if len(number) == 18 and number.isascii() and full.ok:
        assert fast == full.normalized  # the common case takes the fast path
    try:
        got: str | None = common.person_id(number)
    except Exception:
        got = None
    assert got == (full.normalized if full.ok else None)


@pytest.fixture()
def pg(bdb: Database, backend: str) -> Database:
    """The PostgreSQL database."""
    if backend != "postgres":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    return bdb


async def _book(db: Database, slot_id: int) -> str:
    try:
        _answer, _created = await entry.book(
            db, slot_id=slot_id, person=new_person(), actor=AGENT, idempotency_key=uuid.uuid4().hex
        )
    except Conflict as exc:
        return exc.code
    return "booked"


async def _until(cond: object, seconds: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if cond():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.01)
    return False


def _first_slot(db: Database, capacity: int) -> tuple[int, int]:
    """A new schedule's first slot and its public places."""
    with db.session() as s:
        sched = schedule(s, day=date(2025, 3, 6), hospital_code=SECONDARY, capacity=capacity)
        with s.begin():
            slot = s.scalars(select(Slot).where(Slot.schedule_id == sched.id)).first()
            assert slot is not None
            return slot.id, slot.cap_public


def test_a_place_returned_elsewhere_is_forgotten_at_once(pg: Database, frozen: datetime) -> None:
    slot_id, places = _first_slot(pg, capacity=1)
    other_process = make_engine(pg.url)  # another worker's connection: this process hears only NOTIFY

    def full_in_memory() -> bool:
        return soldout.full_in_memory(id(pg.engine), slot_id, "public", None)

    async def scenario() -> list[str]:
        try:
            batcher = pgbatch._batcher(pg.url)
            assert await _until(lambda: batcher._live)
            codes = [await _book(pg, slot_id) for _ in range(places + 1)]
            assert full_in_memory()  # remembered: the next answer costs no database
            calls = batcher._seen
            codes.append(await _book(pg, slot_id))
            # a place comes back in another process (as a cancellation there would give it back)
            with other_process.begin() as conn:
                conn.execute(
                    text("UPDATE booking_slots SET booked_public = booked_public - 1 WHERE id = :id"),
                    {"id": slot_id},
                )
            assert await _until(lambda: not full_in_memory(), 2.0)
            assert batcher._seen > calls
            codes.append(await _book(pg, slot_id))  # the place is booked, not refused from memory
            # a booking alone (booked_x + 1) does not notify: the slot is remembered full again
            codes.append(await _book(pg, slot_id))
            assert full_in_memory()
            return codes
        finally:
            await pgbatch.close_all()
            other_process.dispose()

    codes = asyncio.run(scenario())
    assert codes == ["booked"] * places + ["slot-full", "slot-full", "booked", "slot-full"]


def test_nothing_is_remembered_while_the_listener_is_down(pg: Database, frozen: datetime) -> None:
    slot_id, _places = _first_slot(pg, capacity=1)

    async def scenario() -> bool:
        try:
            batcher = pgbatch._batcher(pg.url)
            assert batcher._listener is not None
            batcher._listener.cancel()  # as if its connection were lost
            await asyncio.sleep(0)
            assert await _until(lambda: not batcher._live)
            for _ in range(4):
                await _book(pg, slot_id)
            return soldout.full_in_memory(id(pg.engine), slot_id, "public", None)
        finally:
            await pgbatch.close_all()

    assert asyncio.run(scenario()) is False


# every change of a slot's row that can let a refused booking through, and the booking itself
CHANGES = [
    ("booked_public = booked_public + 1, updated_at = now()", False),  # a booking
    ("updated_at = now()", False),
    ("booked_public = booked_public - 1", True),  # a place returned
    ("booked_family = booked_family - 0", False),  # the column set, nothing returned
    ("cap_public = cap_public + 1", True),  # a reflow
    ("status = 'stopped'", True),  # a clinic stop
    ("public_release_at = public_release_at - interval '1 day'", True),
    ("family_release_at = family_release_at", True),  # set, even unchanged: a needless notice is safe
    ("starts_at = starts_at + interval '1 hour'", True),
]


def test_the_triggers_notify_every_return_and_no_booking(pg: Database, frozen: datetime) -> None:
    slot_id, _places = _first_slot(pg, capacity=3)
    with pg.engine.begin() as conn:
        conn.execute(text("UPDATE booking_slots SET booked_public = 1 WHERE id = :id"), {"id": slot_id})
    conninfo = pg.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    heard: list[tuple[str, bool]] = []
    with psycopg.connect(conninfo, autocommit=True) as listener, psycopg.connect(conninfo) as writer:
        listener.execute(f"LISTEN {pgbatch.PLACES_CHANNEL}")
        for change, _notifies in CHANGES:
            with writer.transaction():
                writer.execute(f"UPDATE booking_slots SET {change} WHERE id = %s", (slot_id,))  # type: ignore[arg-type]
            got = [n.payload for n in listener.notifies(timeout=0.3, stop_after=1)]
            heard.append((change, got == [str(slot_id)]))
            assert got in ([], [str(slot_id)])
    assert heard == [(change, notifies) for change, notifies in CHANGES]


def test_the_memory_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(soldout, "_SOLD_OUT", {})
    monkeypatch.setattr(soldout, "SOLD_OUT_MAX", 50)
    for slot_id in range(120):  # expired at once: pruned when the memory is full
        soldout.remember_full(-1, slot_id, "public", ["k"], ttl=0.0)
    assert len(soldout._SOLD_OUT) <= 50
    for slot_id in range(1000, 1120):  # all live: cleared when pruning is not enough
        soldout.remember_full(-1, slot_id, "public", ["k"], ttl=60.0)
    assert 0 < len(soldout._SOLD_OUT) <= 50
    assert soldout.full_in_memory(-1, 1119, "public", None)  # the newest is remembered
    assert not soldout.full_in_memory(-1, 1119, "public", "k")  # a retry of its booking is not refused
    soldout.remember_full(-1, 7, "public", [], ttl=0.0)
    assert not soldout.full_in_memory(-1, 7, "public", None) and (-1, 7, "public") not in soldout._SOLD_OUT


def test_a_remembered_full_slot_is_refused_without_the_body_model(client, auth) -> None:  # type: ignore[no-untyped-def]
    """The booking route answers a slot this process remembers full from the raw body (no model), after
    the request's own checks: a bad person number is still 422, a resident booking for another 403; a
    retry of one of the slot's bookings, a body the model would coerce and a missing token get their own
    answers."""
    db = client.app.state.db
    slot = 900_000_000 + uuid.uuid4().int % 99_000_000  # never in the database: only memory can answer
    soldout.remember_full(id(db.engine), slot, "public", ["memory-agent:retry-1"], ttl=60.0)
    url = "/api/v1/booking/appointments"
    agent = auth("agent", subject="memory-agent")
    try:
        r = client.post(
            url, json={"slot_id": slot, "person_id": new_person(), "person_name": "张三"}, headers=agent
        )
        assert r.status_code == 409 and r.json()["code"] == "slot-full", r.text
        bad = client.post(url, json={"slot_id": slot, "person_id": "not-a-number"}, headers=agent)
        assert bad.status_code == 422 and bad.json()["code"] == "bad-id-number"
        me = new_person()
        other = client.post(
            url, json={"slot_id": slot, "person_id": new_person()}, headers=auth("resident", subject=me)
        )
        assert other.status_code == 403 and other.json()["code"] == "not-self"
        mine = client.post(url, json={"slot_id": slot}, headers=auth("resident", subject=me))
        assert mine.status_code == 409 and mine.json()["code"] == "slot-full"
        nobody = client.post(url, json={"slot_id": slot}, headers=agent)
        assert nobody.status_code == 422 and nobody.json()["code"] == "person-required"
        typed = client.post(
            url, json={"slot_id": slot, "person_id": new_person(), "person_name": 5}, headers=agent
        )
        assert typed.status_code == 422  # the model's own answer, as before
        coerced = client.post(url, json={"slot_id": str(slot), "person_id": new_person()}, headers=agent)
        assert coerced.status_code == 409 and coerced.json()["code"] == "slot-full"  # the full path's memory
        retry = client.post(
            url,
            json={"slot_id": slot, "person_id": new_person()},
            headers={**agent, "Idempotency-Key": "retry-1"},
        )
        assert retry.status_code == 404 and retry.json()["code"] == "no-slot", retry.text  # to the database
        assert client.post(url, json={"slot_id": slot, "person_id": new_person()}).status_code == 401
        manager = client.post(url, json={"slot_id": slot, "person_id": new_person()}, headers=auth("manager"))
        assert manager.status_code == 403
    finally:
        soldout.forget_full(slot)
