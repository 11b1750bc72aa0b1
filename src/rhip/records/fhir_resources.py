"""The shared record as FHIR R4 resources: a timeline entry as Encounter, Condition, MedicationRequest,
DiagnosticReport with its Observations, AllergyIntolerance, or a vital-sign Observation; a consent as Consent;
an access-log entry as an IHE BALP-style AuditEvent. Pure mapping (no database, no HTTP); `fhir_api` serves
them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from rhip.records.models import AccessLog, Consent, RecordEntry

ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"

# search type → timeline kinds it covers
KINDS: dict[str, tuple[str, ...]] = {
    "Encounter": ("visit", "admission", "discharge", "hypertension_followup", "diabetes_followup"),
    "Condition": ("diagnosis",),
    "Observation": ("lab", "measurement"),
    "DiagnosticReport": ("lab", "exam"),
    "MedicationRequest": ("prescription",),
    "AllergyIntolerance": ("allergy",),
}

# the catalogue's 过敏史 codes (registry code systems allergen_type, allergy_severity) in FHIR R4 terms
ALLERGY_CATEGORY = {"1": "medication", "2": "food", "3": "environment"}
ALLERGY_CRITICALITY = {"1": "low", "2": "low", "3": "high", "4": "high", "9": "unable-to-assess"}
REACTION_SEVERITY = {"1": "mild", "2": "moderate", "3": "severe", "4": "severe"}
_TERMINOLOGY = "http://terminology.hl7.org/CodeSystem"


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ref(pid: str) -> dict[str, str]:
    return {"reference": f"Patient/{pid}"}


def _org(code: str) -> dict[str, Any]:
    return {"reference": f"Organization/{code}", "display": code} if code else {"display": "本人"}


def resources(e: RecordEntry, pid: str) -> Iterator[dict[str, Any]]:
    """The FHIR resources of one timeline entry (a lab report yields the report and its Observations)."""
    rid = f"rhip-{e.id}"
    d = e.detail
    if e.kind in KINDS["Encounter"]:
        inpatient = e.kind in ("admission", "discharge")
        yield {
            "resourceType": "Encounter",
            "id": rid,
            "status": "finished" if e.kind != "admission" else "in-progress",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "IMP" if inpatient else "AMB",
            },
            "type": [{"text": e.title}],
            "subject": _ref(pid),
            "period": {"start": iso(e.occurred_at)},
            "serviceProvider": _org(e.institution_code),
        }
    elif e.kind == "diagnosis":
        yield {
            "resourceType": "Condition",
            "id": rid,
            "code": {"coding": [{"system": ICD10, "code": e.code}] if e.code else [], "text": e.title},
            "subject": _ref(pid),
            "recordedDate": iso(e.occurred_at),
            "recorder": _org(e.institution_code),
        }
    elif e.kind == "prescription":
        for i, item in enumerate(d.get("items") or [{"drug_name": e.title}]):
            yield {
                "resourceType": "MedicationRequest",
                "id": f"{rid}-{i + 1}",
                "status": "completed",
                "intent": "order",
                "medicationCodeableConcept": {"text": item.get("drug_name")},
                "subject": _ref(pid),
                "authoredOn": iso(e.occurred_at),
                "requester": _org(e.institution_code),
                "dosageInstruction": [
                    {
                        "text": " ".join(
                            str(item[k]) for k in ("dose", "dose_unit", "frequency") if item.get(k)
                        )
                    }
                ],
            }
    elif e.kind in ("lab", "exam"):
        obs = []
        for i, item in enumerate(d.get("items") or []):
            o: dict[str, Any] = {
                "resourceType": "Observation",
                "id": f"{rid}-{i + 1}",
                "status": "final",
                "category": [_category("laboratory")],
                "code": {
                    "coding": [{"system": LOINC, "code": item["loinc_code"]}]
                    if item.get("loinc_code")
                    else [],
                    "text": item.get("item_name"),
                },
                "subject": _ref(pid),
                "effectiveDateTime": iso(e.occurred_at),
                "valueString": str(item.get("result_value")),
            }
            if item.get("reference_range"):
                o["referenceRange"] = [{"text": item["reference_range"]}]
            if item.get("abnormal_flag"):
                o["interpretation"] = [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                "code": item["abnormal_flag"],
                            }
                        ]
                    }
                ]
            obs.append(o)
        yield {
            "resourceType": "DiagnosticReport",
            "id": rid,
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                            "code": "LAB" if e.kind == "lab" else "RAD",
                        }
                    ]
                }
            ],
            "code": {"text": e.title},
            "subject": _ref(pid),
            "effectiveDateTime": iso(e.occurred_at),
            "performer": [_org(e.institution_code)],
            "result": [{"reference": f"Observation/{o['id']}"} for o in obs],
            **({"conclusion": d["conclusion"]} if d.get("conclusion") else {}),
        }
        yield from obs
    elif e.kind == "allergy":
        yield allergy_intolerance(e, pid)
    elif e.kind == "measurement":
        yield {
            "resourceType": "Observation",
            "id": rid,
            "status": "final",
            "category": [_category("vital-signs")],
            "code": {"coding": [{"system": LOINC, "code": e.code}], "text": e.title},
            "subject": _ref(pid),
            "effectiveDateTime": iso(e.occurred_at),
            "valueQuantity": {
                "value": d.get("value"),
                "unit": d.get("unit"),
                "system": "http://unitsofmeasure.org",
            },
        }


def allergy_intolerance(e: RecordEntry, pid: str) -> dict[str, Any]:
    """A 过敏史 entry (WS 445: allergen type, allergen and code, reaction, severity) as AllergyIntolerance."""
    d = e.detail or {}
    severity = str(d.get("severity") or "")
    kind = ALLERGY_CATEGORY.get(str(d.get("allergen_type") or ""))
    res: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": f"rhip-{e.id}",
        "clinicalStatus": {
            "coding": [{"system": f"{_TERMINOLOGY}/allergyintolerance-clinical", "code": "active"}]
        },
        "verificationStatus": {
            "coding": [{"system": f"{_TERMINOLOGY}/allergyintolerance-verification", "code": "confirmed"}]
        },
        "type": "allergy",
        "code": {
            "coding": [{"code": e.code, "display": e.title}] if e.code else [],
            "text": e.title,
        },
        "patient": _ref(pid),
        "recordedDate": iso(e.occurred_at),
        # the recording doctor is not in the record: the institution is named (recorder takes no Organization)
        "recorder": {"display": e.institution_code or "本人"},
    }
    if kind:
        res["category"] = [kind]
    if severity in ALLERGY_CRITICALITY:
        res["criticality"] = ALLERGY_CRITICALITY[severity]
    if d.get("onset_date"):
        res["onsetDateTime"] = str(d["onset_date"])[:10]
    if d.get("reaction"):
        reaction: dict[str, Any] = {"manifestation": [{"text": str(d["reaction"])}]}
        if severity in REACTION_SEVERITY:
            reaction["severity"] = REACTION_SEVERITY[severity]
        res["reaction"] = [reaction]
    return res


def _category(code: str) -> dict[str, Any]:
    return {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": code}]
    }


def consent_resource(c: Consent, now_: datetime) -> dict[str, Any]:
    active = c.revoked_at is None and c.starts_at <= now_ < c.ends_at
    return {
        "resourceType": "Consent",
        "id": f"rhip-consent-{c.id}",
        "status": "active" if active else "inactive",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [
            {
                "coding": [{"system": "http://loinc.org", "code": "59284-0"}],
                "text": {"grant": "患者授权", "code": "一次性授权码", "emergency": "紧急调阅"}[c.kind],
            }
        ],
        "patient": _ref(c.person_id),
        "dateTime": iso(c.created_at),
        "provision": {
            "type": "permit",
            "period": {"start": iso(c.starts_at), "end": iso(c.revoked_at or c.ends_at)},
            "actor": [
                {
                    "role": {"text": "grantee"},
                    "reference": {
                        "reference": f"Organization/{c.grantee_institution}",
                        "display": c.grantee_user or c.grantee_institution,
                    },
                }
            ],
            **(
                {
                    "purpose": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "ETREAT"}
                    ]
                }
                if c.kind == "emergency"
                else {}
            ),
        },
    }


def audit_event(r: AccessLog) -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "id": f"rhip-access-{r.id}",
        "type": {
            "system": "http://dicom.nema.org/resources/ontology/DCM",
            "code": "110110",
            "display": "Patient Record",
        },
        "subtype": [
            {
                "system": "http://hl7.org/fhir/restful-interaction",
                "code": "read" if r.action != "emergency-access" else "create",
            }
        ],
        "action": "R",
        "recorded": iso(r.at),
        "outcome": "0" if r.outcome == "allowed" else "4",
        "outcomeDesc": r.basis,
        "agent": [
            {
                "who": {"identifier": {"value": r.actor}},
                "requestor": True,
                "role": [{"text": r.role}],
                **(
                    {"location": {"reference": f"Organization/{r.institution_code}"}}
                    if r.institution_code
                    else {}
                ),
            }
        ],
        "source": {"observer": {"display": "rhip 区域全民健康信息平台"}},
        "entity": [
            {
                "what": _ref(r.person_id),
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1"},
                **({"description": r.detail} if r.detail else {}),
            }
        ],
        "extension": [{"url": "urn:rhip:audit-chain-hash", "valueString": r.hash}],
    }
