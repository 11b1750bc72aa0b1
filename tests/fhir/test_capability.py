"""The CapabilityStatement is complete (every FHIR route declared), the profiles are served and valid."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.structuredefinition import StructureDefinition

from rhip.fhir import capability, profiles
from rhip.fhir.elements import PROFILES
from rhip.fhir.mapping import SUPPORTED, map_bundle


def test_every_fhir_route_is_declared(app_, settings) -> None:  # type: ignore[no-untyped-def]
    routes = capability.fhir_routes(app_)
    assert len(routes) >= 15  # booking's and the facade's
    assert capability.undeclared(app_, canonical=settings.resolved_fhir_canonical) == []


def test_an_undeclared_route_is_found() -> None:
    """The walk fails on a route nobody declared (a domain adding Consent without FHIR_REST)."""
    app = FastAPI()
    router = APIRouter()

    @router.get("/Consent/{cid}")
    def read_consent(cid: str) -> dict[str, Any]:
        return {}

    @router.post("/Person/$match")
    def match() -> dict[str, Any]:
        return {}

    app.include_router(router, prefix="/fhir/r4")
    missing = capability.undeclared(app)
    assert any("GET /fhir/r4/Consent/{cid}" in m and "read" in m for m in missing)
    assert any("POST /fhir/r4/Person/$match" in m and "match" in m for m in missing)
    # declared in its own module's FHIR_REST (here: this test module), it passes
    globals()["FHIR_REST"] = {
        "resource": [
            {"type": "Consent", "interaction": [{"code": "read"}]},
            {"type": "Person", "operation": [{"name": "match", "definition": "x"}]},
        ]
    }
    try:
        assert capability.undeclared(app) == []
    finally:
        del globals()["FHIR_REST"]


def test_capability_statement_is_complete(client, settings) -> None:  # type: ignore[no-untyped-def]
    cs = client.get("/fhir/r4/metadata").json()
    CapabilityStatement.model_validate(cs)
    rest = cs["rest"][0]
    by_type = {r["type"]: r for r in rest["resource"]}
    assert set(SUPPORTED) | {"Schedule", "Slot", "Appointment", "StructureDefinition"} <= set(by_type)
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch"}
    assert "bulk-publish" in {o["name"] for o in rest["operation"]}
    assert {p["name"] for p in by_type["Slot"]["searchParam"]} >= {"schedule", "start", "status", "_count"}
    assert {i["code"] for i in by_type["Appointment"]["interaction"]} >= {"create", "read", "patch"}
    assert by_type["Patient"]["conditionalCreate"] and by_type["Patient"]["conditionalUpdate"]
    assert {o["name"] for o in by_type["Encounter"]["operation"]} == {"validate"}
    assert cs["implementation"]["url"] == settings.fhir_base_url
    # every supportedProfile resolves on this server
    for r in rest["resource"]:
        for url in r.get("supportedProfile", []):
            assert url.startswith(settings.resolved_fhir_canonical + "/StructureDefinition/")
            sd = client.get("/fhir/r4/StructureDefinition/" + url.rsplit("/", 1)[-1]).json()
            assert sd["url"] == url and sd["type"] == r["type"]


def test_capability_statement_ignores_the_host_header(client, settings) -> None:  # type: ignore[no-untyped-def]
    cs = client.get("/fhir/r4/metadata", headers={"Host": "evil.example"}).json()
    assert "evil" not in str(cs)


def test_profiles_are_valid_and_state_the_catalogue(client, settings) -> None:  # type: ignore[no-untyped-def]
    found = client.get("/fhir/r4/StructureDefinition").json()
    ids = {e["resource"]["id"] for e in found["entry"]}
    assert ids == set(profiles.ids())
    for sd_id in ids:
        sd = client.get(f"/fhir/r4/StructureDefinition/{sd_id}").json()
        StructureDefinition.model_validate(sd)
        assert sd["url"] == f"{settings.resolved_fhir_canonical}/StructureDefinition/{sd_id}"
    enc = client.get("/fhir/r4/StructureDefinition/rhip-encounter-outpatient").json()
    els = {e["id"]: e for e in enc["differential"]["element"]}
    assert els["Encounter.serviceType"]["min"] == 1
    assert els["Encounter.serviceType"]["binding"]["valueSet"].endswith("/ValueSet/department")
    assert els["Encounter.serviceType"]["mapping"] == [
        {"identity": "rhip-catalogue", "map": "outpatient_visit.dept_code"}
    ]
    fee = els["Encounter.extension:fee-total"]
    assert fee["min"] == 1 and fee["type"][0]["profile"] == [
        f"{settings.resolved_fhir_canonical}/StructureDefinition/fee-total"
    ]
    ext = client.get("/fhir/r4/StructureDefinition/fee-total").json()
    assert ext["type"] == "Extension" and any(
        e.get("fixedUri", "").endswith("/fee-total") for e in ext["differential"]["element"]
    )
    r = client.get("/fhir/r4/StructureDefinition/nope")
    assert r.status_code == 404
    one = client.get("/fhir/r4/StructureDefinition", params={"url": ext["url"]}).json()
    assert one["total"] == 1


def test_every_mapped_field_is_declared() -> None:
    """Each field the mapping writes has an element in the profiles (so refusals can name it)."""
    declared = {(p.table, e.field) for p in PROFILES for e in p.elements}
    common = {"org_code", "collected_at", "change_flag"}
    resources = [
        {"resourceType": "Patient", "id": "p"},
        {"resourceType": "Encounter", "id": "v", "class": {"code": "AMB"}},
        {"resourceType": "Encounter", "id": "a", "class": {"code": "IMP"}},
        {"resourceType": "Condition", "id": "c"},
        {"resourceType": "Observation", "id": "o"},
        {"resourceType": "DiagnosticReport", "id": "l", "category": [{"coding": [{"code": "LAB"}]}]},
        {"resourceType": "DiagnosticReport", "id": "e"},
        {"resourceType": "ImagingStudy", "id": "i"},
        {"resourceType": "MedicationRequest", "id": "m"},
        {"resourceType": "Procedure", "id": "s"},
    ]
    b = {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": r} for r in resources]}
    mapped = map_bundle(b, institution_code="H001", collected_at="2025-03-01 00:00:00")
    for table, rows in mapped.rows.items():
        for field in rows[0]:
            if field not in common:
                assert (table, field) in declared, (table, field)


def test_docs_state_every_element() -> None:
    """docs/fhir.md holds the element tables generated from the declarations (regenerate when they change)."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "fhir.md").read_text(encoding="utf-8")
    assert profiles.markdown() in doc
