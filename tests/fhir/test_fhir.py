"""The FHIR facade: transaction/batch Bundles into intake, the CapabilityStatement, a real fhirpy client."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import uvicorn

from rhip.clock import local_now
from rhip.db.engine import Database
from rhip.fhir import samples
from tests.intake.conftest import unique


def bundle(kind: str = "transaction") -> tuple[dict[str, Any], dict[str, str]]:
    pid, vid, cid, cid2 = unique("FP"), unique("FV"), unique("FC"), unique("FC")
    at = (local_now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+08:00")
    entries = [
        samples.patient(pid),
        samples.encounter(vid, pid, at),
        samples.condition(cid, pid, vid, at),
        samples.condition(cid2, pid, vid, at, code="ZZ", text="?"),  # not an ICD-10 code: rejected
    ]
    b = samples.bundle(kind, entries)
    return b, {"patient": pid, "visit": vid}


def test_metadata(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/fhir/r4/metadata")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    cs = r.json()
    assert cs["resourceType"] == "CapabilityStatement" and cs["fhirVersion"] == "4.0.1"
    types = {x["type"] for x in cs["rest"][0]["resource"]}
    assert {"Patient", "Encounter", "Condition", "Observation", "DiagnosticReport"} <= types
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    CapabilityStatement.model_validate(cs)


def _stored(settings, table: str, column: str, keys: list[str]) -> int:  # type: ignore[no-untyped-def]
    """Current lake records of a catalogue table whose key column is one of `keys`."""
    from rhip.intake import service
    from rhip.lake import Duck, Lake
    from rhip.lake.sql import Sql

    lake = Lake(settings.resolved_lake_dir)
    if not lake.exists(f"ods_{table}"):
        return 0
    db = Database.from_settings(settings)
    with db.session() as s:
        inner = service.visible_sql(s, table)
    db.dispose()
    d = Duck(lake)
    try:
        sql = Sql(
            f"SELECT count(*) FROM ({inner.text}) WHERE list_contains($keys, {column})",
            {**inner.params, "keys": keys},
        )
        return int(d.rows(sql)[0][0])
    finally:
        d.close()


def stored_rows(settings, table: str, column: str, keys: list[str], *, inst: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """An institution's current lake records whose `column` is one of `keys` (read back from the lake)."""
    from rhip.intake import service
    from rhip.lake import Duck, Lake
    from rhip.lake.sql import Sql

    lake = Lake(settings.resolved_lake_dir)
    if not lake.exists(f"ods_{table}"):
        return []
    db = Database.from_settings(settings)
    with db.session() as s:
        inner = service.visible_sql(s, table)
    db.dispose()
    d = Duck(lake)
    try:
        sql = Sql(
            f"SELECT * FROM ({inner.text}) WHERE org_code = $org AND list_contains($keys, {column})",
            {**inner.params, "keys": keys, "org": inst},
        )
        return d.query(sql).to_pylist()
    finally:
        d.close()


def test_transaction_is_all_or_nothing(client, auth, inst, settings) -> None:  # type: ignore[no-untyped-def]
    b, ids = bundle()  # its 4th entry has an ICD-10 code that does not exist
    r = client.post("/fhir/r4", headers=auth("uploader", institution=inst), json=b)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    oo = r.json()
    assert oo["resourceType"] == "OperationOutcome"
    failing = [i for i in oo["issue"] if i.get("expression")]
    assert [i["expression"] for i in failing] == [["Bundle.entry[3].resource.code.coding.code"]]
    assert "[code]" in failing[0]["diagnostics"]
    # nothing of the transaction was stored: not the three valid entries either
    assert _stored(settings, "patient_info", "patient_id", [ids["patient"]]) == 0
    assert _stored(settings, "outpatient_visit", "visit_no", [ids["visit"]]) == 0
    receipt = oo["extension"][0]["valueString"]
    got = client.get(f"/api/v1/intake/batches/{receipt}", headers=auth("manager")).json()
    assert got["status"] == "failed" and got["totals"]["accepted"] == 0
    # the valid tables' files, written while the rest was validated, were removed, not left behind
    assert not list(settings.resolved_lake_dir.rglob(f"*{receipt}*.parquet"))

    # the same transaction without the bad entry goes in whole
    b["entry"] = b["entry"][:3]
    r = client.post("/fhir/r4", headers=auth("uploader", institution=inst), json=b)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "transaction-response"
    assert [e["response"]["status"] for e in out["entry"]] == ["201 Created"] * 3
    receipt = client.get(
        f"/api/v1/intake/batches/{out['identifier']['value']}", headers=auth("manager")
    ).json()
    assert receipt["channel"] == "fhir" and receipt["totals"]["accepted"] == 3
    assert _stored(settings, "patient_info", "patient_id", [ids["patient"]]) == 1
    assert _stored(settings, "outpatient_visit", "visit_no", [ids["visit"]]) == 1


def test_transaction_with_unsupported_resource_stores_nothing(client, auth, inst, settings) -> None:  # type: ignore[no-untyped-def]
    b, ids = bundle()
    b["entry"] = [*b["entry"][:2], {"resource": {"resourceType": "Basic", "id": "x1"}}]
    r = client.post("/fhir/r4", headers=auth("uploader", institution=inst), json=b)
    assert r.status_code == 422
    failing = [i for i in r.json()["issue"] if i.get("expression")]
    assert failing[0]["expression"] == ["Bundle.entry[2].resource"] and failing[0]["code"] == "not-supported"
    assert _stored(settings, "patient_info", "patient_id", [ids["patient"]]) == 0


def test_batch_is_per_entry(client, auth, inst, settings) -> None:  # type: ignore[no-untyped-def]
    b, ids = bundle("batch")
    r = client.post("/fhir/r4", headers=auth("uploader", institution=inst), json=b)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in out["entry"]]
    assert statuses[:3] == ["201 Created"] * 3 and statuses[3].startswith("422")
    oo = out["entry"][3]["response"]["outcome"]
    assert oo["resourceType"] == "OperationOutcome" and "[code]" in oo["issue"][0]["diagnostics"]
    assert _stored(settings, "patient_info", "patient_id", [ids["patient"]]) == 1
    assert _stored(settings, "outpatient_visit", "visit_no", [ids["visit"]]) == 1


def test_not_fhir(client, auth, inst) -> None:  # type: ignore[no-untyped-def]
    h = auth("uploader", institution=inst)
    r = client.post("/fhir/r4", headers=h, json={"hello": "world"})
    # errors under /fhir/ are OperationOutcomes (what FHIR clients read), carrying the same code
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/fhir+json")
    issue = r.json()["issue"][0]
    assert issue["code"] == "invalid" and issue["details"]["coding"][0]["code"] == "not-a-bundle"
    r = client.post("/fhir/r4", json={"resourceType": "Bundle"})
    assert r.status_code == 401 and r.json()["issue"][0]["code"] == "login"
    assert client.post("/fhir/r4", headers=h, content=b"\xff\x00").status_code == 400


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def live(app_) -> Iterator[str]:  # type: ignore[no-untyped-def]
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app_, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/fhir/r4"
    server.should_exit = True
    t.join(timeout=10)


def test_fhirpy_client(live, token, inst) -> None:  # type: ignore[no-untyped-def]
    from fhirpy import SyncFHIRClient

    fc = SyncFHIRClient(live, authorization=f"Bearer {token('uploader', inst)}")
    b, _ = bundle("batch")
    got = fc.execute("", method="post", data=b)
    assert got["type"] == "batch-response"
    assert [e["response"]["status"][:3] for e in got["entry"]] == ["201", "201", "201", "422"]
    cs = fc.execute("metadata", method="get")
    assert cs["resourceType"] == "CapabilityStatement"
