"""A valid outpatient encounter as FHIR R4 resources, and Bundles of them: sample data shared by the
tests and the FHIR intake benchmark (one builder, so both send what a hospital system sends)."""

from __future__ import annotations

from typing import Any

from rhip.config import Settings
from rhip.fhir.elements import ID_NUMBER_SYSTEM as ID_SYSTEM, extension_url

ICD10 = "http://hl7.org/fhir/sid/icd-10"
CANONICAL = str(Settings.model_fields["fhir_base_url"].default)  # the default canonical base
FEE_TOTAL = extension_url(CANONICAL, "fee-total")


def patient(pid: str) -> dict[str, Any]:
    """A Patient with a valid GB 11643 identifier."""
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": ID_SYSTEM, "value": "11010519491231002X"}],
        "name": [{"text": "张三"}],
        "gender": "male",
        "birthDate": "1949-12-31",
    }


def encounter(vid: str, pid: str, at: str) -> dict[str, Any]:
    """A finished outpatient Encounter of a patient, with its total fee."""
    return {
        "resourceType": "Encounter",
        "id": vid,
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": f"Patient/{pid}"},
        "serviceType": {"coding": [{"code": "01"}]},
        "participant": [{"individual": {"reference": "Practitioner/D001"}}],
        "period": {"start": at},
        "extension": [{"url": FEE_TOTAL, "valueDecimal": 35.5}],
    }


def condition(
    cid: str, pid: str, vid: str, at: str, *, code: str = "I10", text: str = "高血压"
) -> dict[str, Any]:
    """A Condition (diagnosis) of an encounter, coded in ICD-10."""
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": f"Patient/{pid}"},
        "encounter": {"reference": f"Encounter/{vid}"},
        "code": {"coding": [{"system": ICD10, "code": code}], "text": text},
        "recordedDate": at,
    }


def bundle(kind: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A transaction or batch Bundle that PUTs each resource at its own id."""
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources
        ],
    }
