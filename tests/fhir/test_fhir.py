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
from tests.intake.conftest import unique


def bundle(kind: str = "transaction") -> tuple[dict[str, Any], dict[str, str]]:
    pid, vid, cid, cid2 = unique("FP"), unique("FV"), unique("FC"), unique("FC")
    at = (local_now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+08:00")
    entries = [
        {
            "resourceType": "Patient",
            "id": pid,
            "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": "11010519491231002X"}],
            "name": [{"text": "张三"}],
            "gender": "male",
            "birthDate": "1949-12-31",
        },
        {
            "resourceType": "Encounter",
            "id": vid,
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": f"Patient/{pid}"},
            "serviceType": {"coding": [{"code": "01"}]},
            "participant": [{"individual": {"reference": "Practitioner/D001"}}],
            "period": {"start": at},
            "extension": [
                {"url": "http://rhip.example/fhir/StructureDefinition/fee-total", "valueDecimal": 35.5}
            ],
        },
        {
            "resourceType": "Condition",
            "id": cid,
            "subject": {"reference": f"Patient/{pid}"},
            "encounter": {"reference": f"Encounter/{vid}"},
            "code": {
                "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}],
                "text": "高血压",
            },
            "recordedDate": at,
        },
        {
            "resourceType": "Condition",
            "id": cid2,
            "subject": {"reference": f"Patient/{pid}"},
            "encounter": {"reference": f"Encounter/{vid}"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "ZZ"}], "text": "?"},
            "recordedDate": at,
        },
    ]
    b = {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in entries
        ],
    }
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


def test_transaction_bundle(client, auth, inst) -> None:  # type: ignore[no-untyped-def]
    b, _ids = bundle()
    r = client.post("/fhir/r4", headers=auth("uploader", institution=inst), json=b)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in out["entry"]]
    assert statuses[:3] == ["201 Created"] * 3
    assert statuses[3].startswith("422")
    oo = out["entry"][3]["response"]["outcome"]
    assert oo["resourceType"] == "OperationOutcome" and "[code]" in oo["issue"][0]["diagnostics"]
    receipt = client.get(
        f"/api/v1/intake/batches/{out['identifier']['value']}", headers=auth("manager")
    ).json()
    assert receipt["channel"] == "fhir" and receipt["totals"]["accepted"] == 3


def test_not_fhir(client, auth, inst) -> None:  # type: ignore[no-untyped-def]
    h = auth("uploader", institution=inst)
    r = client.post("/fhir/r4", headers=h, json={"hello": "world"})
    assert r.status_code == 400 and r.json()["code"] == "not-a-bundle"
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
