"""On PostgreSQL every booking entry point that is its own transaction books through the batcher
(pgbatch → rhip_book_many): the FHIR Appointment create, the resident's page, the demo's bookings. Real
PostgreSQL, no mocks: a spy only counts what is sent. The FHIR answers stay what they were: 201 booked,
a replay answers 200 with the first booking, 409 OperationOutcomes name the refusing rule."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from rhip.booking import pgbatch, soldout
from rhip.booking.models import Appointment, Slot
from rhip.db.engine import Database
from tests.booking.conftest import new_person
from tests.booking.test_api import publish

Auth = Any
FHIR = {"Content-Type": "application/fhir+json"}
# a day of its own: test_concurrency counts every booking of 7 March at H029
DAY = "2025-03-05"


@pytest.fixture()
def sent(backend: str, monkeypatch: pytest.MonkeyPatch, batch_sizes: list[int]) -> list[int] | None:
    """The size of every batch the batcher sends (every request to the database); None on SQLite."""
    monkeypatch.setattr(soldout, "SOLD_OUT_TTL", 0.0)
    return batch_sizes if backend == "postgres" else None  # SQLite books one by one, the same answers


def _appointment(slot_id: int, pid: str, name: str | None = None) -> dict[str, Any]:
    actor: dict[str, Any] = {"reference": f"Patient/{pid}"}
    if name:
        actor["display"] = name
    return {
        "resourceType": "Appointment",
        "status": "proposed",
        "slot": [{"reference": f"Slot/{slot_id}"}],
        "participant": [{"actor": actor, "status": "needs-action"}],
    }


def _rule(r: httpx.Response) -> tuple[int, str, str]:
    issue = r.json()["issue"][0]
    return r.status_code, issue["code"], issue["details"]["coding"][0]["code"]


def test_fhir_create_goes_through_the_batcher_with_its_answers(
    client: TestClient, auth: Auth, frozen: datetime, sent: list[int] | None
) -> None:
    sched = publish(client, auth, day=DAY, hospital_code="H029", capacity=3)
    first, second, *_ = [s["id"] for s in sched["slots"]]
    pid = new_person()
    me = {**auth("resident", subject=pid), **FHIR}

    r = client.post("/fhir/r4/Appointment", content=json.dumps(_appointment(first, pid, "钱敏")), headers=me)
    assert r.status_code == 201, r.text
    res = r.json()
    assert res["resourceType"] == "Appointment" and res["status"] == "booked"
    assert r.headers["location"] == f"/fhir/r4/Appointment/{res['id']}"
    assert res["slot"] == [{"reference": f"Slot/{first}"}]
    assert res["participant"][0]["actor"]["display"] == "钱敏" and res["start"].endswith("+08:00")
    assert sent in ([1], None)  # PostgreSQL: one call of rhip_book_many, nothing else
    # the same as read back afterwards (the resource is built from the row the function answered)
    again = client.get(f"/fhir/r4/Appointment/{res['id']}", headers=auth("resident", subject=pid)).json()
    assert {k: v for k, v in again.items() if k != "meta"} == {k: v for k, v in res.items() if k != "meta"}

    # a retry with the same key answers the first booking (200) and books nothing
    key = {**me, "If-None-Exist": f"k-{uuid.uuid4().hex}"}
    other = new_person()
    agent = {**auth("agent"), **FHIR, "Idempotency-Key": key["If-None-Exist"]}
    made = client.post("/fhir/r4/Appointment", content=json.dumps(_appointment(second, other)), headers=agent)
    replay = client.post(
        "/fhir/r4/Appointment", content=json.dumps(_appointment(second, other)), headers=agent
    )
    assert (made.status_code, replay.status_code) == (201, 200)
    assert replay.json()["id"] == made.json()["id"]
    # the same key for someone else: refused, naming the rule
    reused = client.post("/fhir/r4/Appointment", content=json.dumps(_appointment(second, pid)), headers=agent)
    assert _rule(reused) == (409, "conflict", "idempotency-key-reused")

    # the limits: a second booking in the same department and day
    assert _rule(
        client.post("/fhir/r4/Appointment", content=json.dumps(_appointment(second, pid)), headers=me)
    ) == (409, "business-rule", "limit-department")
    # a slot not yet released
    later = publish(client, auth, day="2025-03-20", hospital_code="H029")
    assert _rule(
        client.post(
            "/fhir/r4/Appointment", content=json.dumps(_appointment(later["slots"][0]["id"], pid)), headers=me
        )
    ) == (409, "business-rule", "not-released")
    # real name: a resident books for themselves only (403, before any call)
    calls = len(sent or [])
    assert _rule(
        client.post("/fhir/r4/Appointment", content=json.dumps(_appointment(second, other)), headers=me)
    ) == (403, "forbidden", "not-self")
    long_key = {**agent, "Idempotency-Key": "k" * 121}
    assert _rule(
        client.post("/fhir/r4/Appointment", content=json.dumps(_appointment(second, other)), headers=long_key)
    ) == (422, "invalid", "bad-idempotency-key")
    assert len(sent or []) == calls
    # sold out: once the slot's places are gone, each further booking is refused with slot-full
    answers = [
        client.post(
            "/fhir/r4/Appointment",
            content=json.dumps(_appointment(second, new_person())),
            headers={**agent, "Idempotency-Key": uuid.uuid4().hex},
        )
        for _ in range(5)
    ]
    codes = [a.status_code for a in answers]
    assert codes == sorted(codes, key=lambda c: c != 201) and codes[-1] == 409, codes
    assert {_rule(a) for a in answers if a.status_code == 409} == {(409, "conflict", "slot-full")}


def test_concurrent_fhir_creates_go_together_and_never_oversell(
    app_: Any, db: Database, client: TestClient, auth: Auth, frozen: datetime, sent: list[int] | None
) -> None:
    if sent is None:
        pytest.skip("the batcher is PostgreSQL's (SQLite's concurrency: test_concurrency.py)")
    sched = publish(client, auth, day=DAY, hospital_code="H029", capacity=3)
    slot_id = sched["slots"][0]["id"]
    with db.session() as s, s.begin():
        slot = s.get(Slot, slot_id)
        assert slot is not None
        places = slot.cap_public
    agent = {**auth("agent"), **FHIR}
    people = [new_person() for _ in range(40)]

    async def crowd() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app_)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://rhip") as c:
                return list(
                    await asyncio.gather(
                        *(
                            c.post(
                                "/fhir/r4/Appointment",
                                content=json.dumps(_appointment(slot_id, pid)),
                                headers={**agent, "Idempotency-Key": f"crowd-{pid}"},
                            )
                            for pid in people
                        )
                    )
                )
        finally:
            await pgbatch.close_all()

    answers = asyncio.run(crowd())
    assert max(sent) > 1, sent  # they went together
    codes = Counter(r.status_code if r.status_code != 409 else _rule(r)[2] for r in answers)
    assert codes == {201: places, "slot-full": len(people) - places}, codes
    with db.session() as s, s.begin():
        slot = s.get(Slot, slot_id)
        assert slot is not None
        held = s.scalar(select(func.count()).where(Appointment.slot_id == slot_id))
        assert slot.booked_public == held == places


def test_booking_page_goes_through_the_batcher(
    client: TestClient, auth: Auth, frozen: datetime, sent: list[int] | None
) -> None:
    sched = publish(client, auth, day=DAY, hospital_code="H029", capacity=1)
    pid = new_person()
    me = auth("resident", subject=pid)
    form = {"slot_id": sched["slots"][0]["id"], "back": "/booking/h/H029/d/03.04"}
    r = client.post("/booking/book", data=form, headers=me, follow_redirects=False)
    assert r.status_code == 303 and "/booking/me" in r.headers["location"], r.headers
    assert sent in ([1], None)
    mine = client.get("/api/v1/booking/appointments", headers=me).json()
    assert [a["slot_id"] for a in mine] == [form["slot_id"]]
    # refused: the message comes back to the page it came from
    again = client.post("/booking/book", data=form, headers=me, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/booking/h/H029/d/03.04?msg=")
    assert sent in ([1, 1], None)
