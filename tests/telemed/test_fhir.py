"""FHIR ServiceRequest, Task and DiagnosticReport read and search under /fhir/r4."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.telemed.conftest import PID, REQUESTER

Auth = Callable[..., dict[str, str]]


def test_request_task_and_report_as_fhir(client: TestClient, auth: Auth, connected: str) -> None:
    doc = auth("doctor", institution=REQUESTER)
    hub = auth("doctor", institution="H001")
    rid = client.post(
        "/api/v1/telemed/requests",
        json={
            "centre_code": "ecg",
            "service_type": "resting",
            "patient_id_number": PID,
            "patient_name": "孙八",
            "priority": "urgent",
        },
        headers=doc,
    ).json()["id"]
    sr = client.get(f"/fhir/r4/ServiceRequest/{rid}", headers=doc)
    assert sr.status_code == 200 and sr.headers["content-type"].startswith("application/fhir+json")
    body = sr.json()
    assert body["status"] == "active" and body["intent"] == "order" and body["priority"] == "urgent"
    assert (
        body["requester"]["reference"] == f"Organization/{REQUESTER}"
        and body["performer"][0]["reference"] == "Organization/H001"
    )
    assert (
        body["subject"]["identifier"]["value"] == PID
        and body["subject"]["identifier"]["system"] == "urn:oid:2.16.156.10011.1.3"
    )
    assert client.get(f"/fhir/r4/Task/{rid}", headers=hub).json()["status"] == "requested"
    client.post(f"/api/v1/telemed/requests/{rid}/transition", json={"status": "accepted"}, headers=hub)
    client.post(f"/api/v1/telemed/requests/{rid}/transition", json={"status": "in_progress"}, headers=hub)
    t = client.get(f"/fhir/r4/Task/{rid}", headers=hub).json()
    assert (
        t["status"] == "in-progress"
        and t["focus"]["reference"] == f"ServiceRequest/{rid}"
        and "start" in t["executionPeriod"]
    )
    assert (
        client.get(
            "/fhir/r4/DiagnosticReport", params={"based-on": f"ServiceRequest/{rid}"}, headers=doc
        ).json()["total"]
        == 0
    )
    client.post(
        f"/api/v1/telemed/requests/{rid}/report",
        json={"findings": "窦性心动过速", "conclusion": "窦性心动过速，心率 110 次/分"},
        headers=hub,
    )
    found = client.get(
        "/fhir/r4/DiagnosticReport", params={"based-on": f"ServiceRequest/{rid}"}, headers=doc
    ).json()
    assert found["total"] == 1
    rep = found["entry"][0]["resource"]
    assert (
        rep["status"] == "final"
        and rep["conclusion"].startswith("窦性心动过速")
        and rep["basedOn"][0]["reference"] == f"ServiceRequest/{rid}"
    )
    assert client.get(f"/fhir/r4/DiagnosticReport/{rep['id']}", headers=doc).json()["id"] == rep["id"]
    assert client.get(f"/fhir/r4/ServiceRequest/{rid}", headers=doc).json()["status"] == "completed"
    # search: the clinician sees their institution's; the manager sees it masked
    done = client.get("/fhir/r4/Task", params={"status": "completed", "category": "ecg"}, headers=doc).json()
    assert any(e["resource"]["id"] == str(rid) for e in done["entry"])
    masked = client.get(
        "/fhir/r4/ServiceRequest",
        params={"patient.identifier": PID, "category": "ecg"},
        headers=auth("manager"),
    ).json()
    hit = next(e["resource"] for e in masked["entry"] if e["resource"]["id"] == str(rid))
    assert hit["subject"]["identifier"]["value"] == "320102********1238" and "reasonCode" not in hit
    assert (
        client.get(
            "/fhir/r4/ServiceRequest",
            params={"requester": f"Organization/{REQUESTER}"},
            headers=auth("doctor", institution="H004"),
        ).json()["total"]
        == 0
    )


def test_fhir_errors_are_operation_outcomes(client: TestClient, auth: Auth) -> None:
    r = client.get("/fhir/r4/ServiceRequest/999999999", headers=auth("manager"))
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    r = client.get("/fhir/r4/Task/abc", headers=auth("manager"))
    assert r.status_code == 422 and r.json()["issue"][0]["details"]["coding"][0]["code"] == "bad-reference"
    r = client.get("/fhir/r4/Task", params={"status": "flying"}, headers=auth("manager"))
    assert r.status_code == 422
