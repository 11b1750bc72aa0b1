"""FHIR R4 Schedule/Slot/Appointment, driven by the fhirpy client against a live uvicorn server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome
from sqlalchemy import event

from rhip import clock
from rhip.booking import bulkpub, schedules as rota
from rhip.booking.fhir_map import location_resource, schedule_resource, slot_resource
from rhip.config import Settings
from rhip.db.engine import Database
from rhip.registry import data as reg_data
from tests.booking.conftest import TERTIARY, new_person
from tests.booking.test_api import publish

Auth = Callable[..., dict[str, str]]


def test_fhirpy_finds_books_and_cancels(live: str, client: TestClient, auth: Auth, frozen: datetime) -> None:
    sched = publish(client, auth, day="2025-03-10", capacity=1, hospital_code="H029")
    pid = new_person()
    token = auth("resident", subject=pid)["Authorization"]
    fc = SyncFHIRClient(f"{live}/fhir/r4", authorization=token)

    assert (
        fc.reference("Schedule", str(sched["id"])).to_resource()["actor"][0]["reference"] == "Location/H029"
    )
    free = fc.resources("Slot").search(schedule=f"Schedule/{sched['id']}", status="free").fetch()
    assert len(free) == 8 and all(s["status"] == "free" for s in free)
    by_time = (
        fc.resources("Slot")
        .search(
            specialty="urn:rhip:department|03.04", start=["ge2025-03-10T08:30:00+08:00", "lt2025-03-10T09:30"]
        )
        .search(**{"service-type": "普通门诊"})
        .fetch()
    )
    assert {s["start"] for s in by_time if s["schedule"]["reference"] == f"Schedule/{sched['id']}"} == {
        "2025-03-10T08:30:00+08:00",
        "2025-03-10T09:00:00+08:00",
    }
    target = free[0]
    appt = fc.resource(
        "Appointment",
        status="proposed",
        slot=[{"reference": f"Slot/{target['id']}"}],
        participant=[{"actor": {"reference": f"Patient/{pid}", "display": "赵钢"}, "status": "needs-action"}],
    )
    appt.save()
    assert appt["status"] == "booked" and appt["id"]
    assert fc.reference("Slot", target["id"]).to_resource()["status"] == "busy"

    other = new_person()
    agent = SyncFHIRClient(f"{live}/fhir/r4", authorization=auth("agent")["Authorization"])
    with pytest.raises(OperationOutcome) as exc:
        agent.resource(
            "Appointment",
            status="proposed",
            slot=[{"reference": f"Slot/{target['id']}"}],
            participant=[{"actor": {"reference": f"Patient/{other}"}, "status": "needs-action"}],
        ).save()
    assert "slot-full" in json.dumps(exc.value.resource, ensure_ascii=False)

    mine = (
        fc.resources("Appointment")
        .search(patient=f"Patient/{pid}", date="2025-03-10", status="booked")
        .fetch()
    )
    assert [a["id"] for a in mine] == [appt["id"]]
    appt["status"] = "cancelled"
    appt.save()
    assert fc.reference("Appointment", appt["id"]).to_resource()["status"] == "cancelled"
    assert fc.reference("Slot", target["id"]).to_resource()["status"] == "free"


def test_refusal_is_409_operation_outcome_and_patch_cancels(
    client: TestClient, auth: Auth, frozen: datetime
) -> None:
    sched = publish(client, auth, day="2025-03-20", hospital_code="H029")
    pid = new_person()
    me = {**auth("resident", subject=pid), "Content-Type": "application/fhir+json"}
    body = {
        "resourceType": "Appointment",
        "status": "proposed",
        "slot": [{"reference": f"Slot/{sched['slots'][0]['id']}"}],
        "participant": [{"actor": {"reference": f"Patient/{pid}"}, "status": "needs-action"}],
    }
    r = client.post("/fhir/r4/Appointment", content=json.dumps(body), headers=me)
    assert r.status_code == 409 and r.json()["resourceType"] == "OperationOutcome"
    issue = r.json()["issue"][0]
    assert issue["code"] == "business-rule" and issue["details"]["coding"][0]["code"] == "not-released"
    ready = publish(client, auth, day="2025-03-07", hospital_code="H029")
    body["slot"] = [{"reference": f"Slot/{ready['slots'][0]['id']}"}]
    r = client.post("/fhir/r4/Appointment", content=json.dumps(body), headers=me)
    assert r.status_code == 201 and r.headers["location"].startswith("/fhir/r4/Appointment/"), r.text
    patch = [{"op": "replace", "path": "/status", "value": "cancelled"}]
    r = client.patch(
        f"/fhir/r4/Appointment/{r.json()['id']}", json=patch, headers=auth("resident", subject=pid)
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    bad = client.post("/fhir/r4/Appointment", json={"resourceType": "Appointment"}, headers=me)
    assert bad.status_code == 422 and bad.json()["resourceType"] == "OperationOutcome"


def test_bulk_publish_manifest_and_ndjson(
    live: str, client: TestClient, auth: Auth, frozen: datetime, settings: Settings
) -> None:
    sched = publish(client, auth, day="2025-03-06", hospital_code="H029")
    # a correctness test, not a speed one: the live server's first request (its caches) can take longer than
    # httpx's 5-second default when CI runs two suites side by side on two cores (it timed out once so)
    web = httpx.Client(timeout=120)
    manifest = web.get(f"{live}/fhir/r4/$bulk-publish").json()
    assert [o["type"] for o in manifest["output"]] == ["Location", "Schedule", "Slot"]
    assert manifest["transactionTime"].startswith("2025-03-03T09:00:00")
    # links are built on the configured base URL (RHIP_FHIR_BASE_URL), not on the request's Host header
    base = settings.fhir_base_url
    assert all(o["url"].startswith(base + "/$bulk-publish/") for o in manifest["output"])
    here = {o["type"]: o["url"].replace(base, f"{live}/fhir/r4") for o in manifest["output"]}
    # each file is streamed a page at a time: the shared test database's slots need no long first answer
    lines = [json.loads(x) for x in web.get(here["Slot"]).text.splitlines()]
    assert {s["id"] for s in lines} >= {str(x["id"]) for x in sched["slots"]}
    assert all(s["status"] == "free" for s in lines)
    locations = web.get(here["Location"]).text
    assert "南京市胸科医院" in locations
    missing = web.get(f"{live}/fhir/r4/$bulk-publish/Patient.ndjson")
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs while the context is open."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", note)


def _whole_feed(db: Database, t: datetime) -> dict[str, list[dict[str, Any]]]:
    """The feed as it was built before it was streamed: every free slot of 14 days read at once."""
    with db.session() as s, s.begin():
        slots = rota.find_slots(
            s, start_from=t, start_to=t + timedelta(days=14), free_only=True, limit=10_000_000
        )
        scheds = {x.id: x for x in rota.get_all_schedules_by_ids(s, ids={x.schedule_id for x in slots})}
        used = sorted(scheds.values(), key=lambda x: x.id)
        return {
            "Location": [
                location_resource(c, inst)
                for c in sorted({x.hospital_code for x in used})
                if (inst := reg_data.get(c)) is not None
            ],
            "Schedule": [schedule_resource(x) for x in used],
            "Slot": [slot_resource(x, scheds[x.schedule_id], t) for x in slots],
        }


def test_bulk_publish_manifest_reads_nothing_and_files_are_read_in_pages(
    client: TestClient, auth: Auth, frozen: datetime, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest answers without reading a slot; each file is read PAGE rows at a time, by a stable key,
    and holds exactly what the whole feed held (same lines, same order)."""
    # two hospitals' sessions at the same times: pages cut between slots with the same start
    for code in ("H029", TERTIARY):
        publish(client, auth, day="2025-03-07", hospital_code=code)
    with statements(db) as seen:
        manifest = client.get("/fhir/r4/$bulk-publish")
    # nothing of booking is read (other statements, e.g. a token check's thread, are not this route's)
    assert manifest.status_code == 200 and not [x for x in seen if "booking_" in x]
    expected = _whole_feed(db, clock.now())
    assert len(expected["Slot"]) >= 16 and len(expected["Schedule"]) >= 2
    page = max(7, len(expected["Slot"]) // 50)  # many pages, whatever earlier tests left in the database
    monkeypatch.setattr(bulkpub, "PAGE", page)
    for kind in ("Location", "Schedule", "Slot"):
        with statements(db) as seen:
            r = client.get(f"/fhir/r4/$bulk-publish/{kind}.ndjson")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+ndjson")
        got = [json.loads(x) for x in r.text.splitlines()]
        assert got == expected[kind], kind
        assert r.text.endswith("\n") and "\n\n" not in r.text
        if kind == "Slot":  # one statement per page, and one more when the last page was full
            reads = [x for x in seen if "booking_slots" in x]
            assert len(reads) == len(got) // page + 1, (len(reads), len(got), page)


def test_fhir_inputs_that_used_to_500(client: TestClient, auth: Auth, frozen: datetime) -> None:
    """Issue 13's FHIR findings: each answered 4xx OperationOutcome, never 500."""
    for url in (
        "/fhir/r4/Schedule?date=9999-12-31",
        "/fhir/r4/Slot?start=9999-12-31",
        "/fhir/r4/Slot?start=lt0001-01-01",
        "/fhir/r4/Slot?start=gt9999-12-31T23:59:59",
        "/fhir/r4/Schedule?_count=abc",
        "/fhir/r4/Slot?_count=1e9",
    ):
        r = client.get(url)
        assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome", url
    sched = publish(client, auth, day="2025-03-12", hospital_code="H029")
    # _count is clamped to 1..1000: -1 is 1 (it used to return every row)
    one = client.get(f"/fhir/r4/Slot?schedule=Schedule/{sched['id']}&_count=-1").json()
    assert one["total"] == 1
    assert client.get(f"/fhir/r4/Slot?schedule=Schedule/{sched['id']}&_count=0").json()["total"] == 1
    # links come from RHIP_FHIR_BASE_URL, never from the Host header
    found = client.get(
        f"/fhir/r4/Slot?schedule=Schedule/{sched['id']}", headers={"Host": "evil.example"}
    ).text
    assert "evil" not in found and "127.0.0.1:8000/fhir/r4/Slot/" in found
    pid = new_person()
    me = {**auth("resident", subject=pid), "Content-Type": "application/fhir+json"}
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    for method, url in (
        ("POST", "/fhir/r4/Appointment"),
        ("PUT", "/fhir/r4/Appointment/1"),
        ("PATCH", "/fhir/r4/Appointment/1"),
    ):
        r = client.request(method, url, content=deep, headers=me)
        assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", (method, r.text)
    r = client.patch("/fhir/r4/Appointment/1", content=b'"cancelled"', headers=me)
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    body = {"resourceType": "Appointment", "status": "cancelled", "cancelationReason": "不去了"}
    r = client.put("/fhir/r4/Appointment/1", json=body, headers=me)
    assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"


def test_patient_identifier_is_the_national_id(client: TestClient, auth: Auth, frozen: datetime) -> None:
    """WS/T 500: 2.16.156.10011.1.3 is the ID number (…1.1 is a document serial number); a v2-0203 NNCHN
    identifier is the national ID too; the answer carries 1.3."""
    ready = publish(client, auth, day="2025-03-07", hospital_code="H029")
    pid = new_person()
    me = {**auth("resident", subject=pid), "Content-Type": "application/fhir+json"}

    def book(ident: dict[str, object], slot: int) -> httpx.Response:
        body = {
            "resourceType": "Appointment",
            "status": "proposed",
            "slot": [{"reference": f"Slot/{ready['slots'][slot]['id']}"}],
            "participant": [{"actor": {"identifier": ident}, "status": "needs-action"}],
        }
        return client.post("/fhir/r4/Appointment", json=body, headers=me)

    r = book({"system": "urn:oid:2.16.156.10011.1.1", "value": pid}, 0)
    assert r.status_code == 422 and "文档流水号" in r.text
    typed = {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}
    r = book({"type": {"coding": [typed]}, "value": pid}, 0)
    assert r.status_code == 201, r.text
    actor = r.json()["participant"][0]["actor"]
    assert actor["identifier"] == {"system": "urn:oid:2.16.156.10011.1.3", "value": pid}
