"""FHIR read and search of the shared record: $everything and searches by patient under consent, the
resident's vital signs as Observation (bad ones answered with an OperationOutcome), Consent, AuditEvent."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ForbiddenError

from tests.records.conftest import City

H = Callable[..., dict[str, str]]


def _types(bundle: dict) -> set[str]:
    return {e["resource"]["resourceType"] for e in bundle.get("entry", [])}


def test_everything_and_searches_under_consent(client: TestClient, city: City, as_: H) -> None:
    doc = as_("doctor", city.org_c, "dr-fhir")
    refused = client.get(f"/fhir/r4/Patient/{city.person}/$everything", headers=doc)
    assert refused.status_code == 403 and refused.json()["resourceType"] == "OperationOutcome"
    for t in ("Encounter", "Condition", "Observation", "MedicationRequest"):
        r = client.get(f"/fhir/r4/{t}", params={"patient": city.person}, headers=doc)
        assert r.status_code == 403 and r.json()["issue"][0]["code"] == "forbidden", t
    me = as_("resident", None, city.id_number)
    client.post("/api/v1/records/me/consents", json={"institution_code": city.org_c}, headers=me)
    ev = client.get(f"/fhir/r4/Patient/{city.person}/$everything", headers=doc)
    assert ev.status_code == 200 and ev.headers["content-type"].startswith("application/fhir+json")
    Bundle.model_validate(ev.json())  # a valid R4 Bundle with valid resources
    assert {"Encounter", "DiagnosticReport", "Observation"} <= _types(ev.json())
    reports = [
        e["resource"] for e in ev.json()["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"
    ]
    lab = next(r for r in reports if r["category"][0]["coding"][0]["code"] == "LAB")
    assert len(lab["result"]) == 2
    obs = client.get(
        "/fhir/r4/Observation", params={"patient": city.person, "category": "laboratory"}, headers=doc
    ).json()
    assert obs["total"] == 2 and {o["resource"]["valueString"] for o in obs["entry"]} == {"172", "31.0"}
    page = client.get(
        "/fhir/r4/Observation", params={"patient": city.person, "_count": 1}, headers=doc
    ).json()
    assert len(page["entry"]) == 1 and any(link["relation"] == "next" for link in page["link"])
    assert (
        client.get(
            "/fhir/r4/Encounter", params={"patient": city.person, "_count": "abc"}, headers=doc
        ).status_code
        == 422
    )
    assert (
        client.get(
            "/fhir/r4/Encounter", params={"patient": city.person, "date": "ge9999-01-01"}, headers=doc
        ).status_code
        == 422
    )
    assert client.get("/fhir/r4/Encounter", headers=doc).status_code == 422


def test_fhirpy_client_reads_the_record(live: str, client: TestClient, city: City, as_: H) -> None:
    """fhirpy, as a FHIR client app would, against the app served by uvicorn."""
    fc = SyncFHIRClient(
        f"{live}/fhir/r4", authorization=as_("resident", None, city.id_number)["Authorization"]
    )
    conditions = fc.resources("Condition").search(patient=city.person).fetch()
    assert conditions == []  # the fixture uploads no diagnosis records
    labs = fc.resources("Observation").search(patient=city.person, category="laboratory").fetch()
    assert {o["code"]["text"] for o in labs} == {"血红蛋白", "白细胞"}
    encounters = fc.resources("Encounter").search(patient=city.person, date="ge2000-01-01").fetch_all()
    assert len(encounters) >= 3  # two visits and a follow-up
    outsider = SyncFHIRClient(
        f"{live}/fhir/r4", authorization=as_("doctor", city.org_c, "dr-x")["Authorization"]
    )
    with pytest.raises(ForbiddenError):
        outsider.resources("Condition").search(patient=f"Patient/{city.other}x").fetch()


def test_resident_posts_vital_signs(client: TestClient, city: City, as_: H) -> None:
    me = as_("resident", None, city.id_number)
    ok = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "valueQuantity": {"value": 68.2, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
        "effectiveDateTime": "2026-01-05T08:00:00+08:00",
    }
    r = client.post("/fhir/r4/Observation", json=ok, headers=me)
    assert r.status_code == 201 and r.json()["valueQuantity"]["value"] == 68.2
    bad_unit = {**ok, "valueQuantity": {"value": 68.2, "code": "lb"}}
    assert (
        client.post("/fhir/r4/Observation", json=bad_unit, headers=me).json()["resourceType"]
        == "OperationOutcome"
    )
    impossible = {**ok, "valueQuantity": {"value": 9000, "code": "kg"}}
    r = client.post("/fhir/r4/Observation", json=impossible, headers=me)
    assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"
    assert (
        client.post(
            "/fhir/r4/Observation", json={**ok, "code": {"coding": [{"code": "0000-0"}]}}, headers=me
        ).status_code
        == 422
    )
    assert client.post("/fhir/r4/Observation", content=b"{not json", headers=me).status_code == 400
    assert client.post("/fhir/r4/Observation", json=ok, headers=as_("doctor", city.org_a)).status_code == 403


def test_consent_and_audit_event(client: TestClient, city: City, as_: H) -> None:
    me = as_("resident", None, city.id_number)
    client.post("/api/v1/records/me/consents", json={"institution_code": city.org_b, "days": 2}, headers=me)
    c = client.get("/fhir/r4/Consent", headers=me).json()
    assert c["entry"] and all(
        e["resource"]["patient"]["reference"] == f"Patient/{city.person}" for e in c["entry"]
    )
    Bundle.model_validate(c)
    a = client.get("/fhir/r4/AuditEvent", params={"patient": city.person}, headers=as_("auditor")).json()
    assert a["entry"] and all(
        e["resource"]["entity"][0]["what"]["reference"] == f"Patient/{city.person}" for e in a["entry"]
    )
    Bundle.model_validate(a)
    assert client.get("/fhir/r4/AuditEvent", headers=me).status_code == 403
