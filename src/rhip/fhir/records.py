"""One FHIR R4 resource → its catalogue record: a mapper per supported resource type (`MAPPERS`, in the
order the facade lists them), each given the entry with its references already resolved (`Entry`) and
answering the catalogue table, the record and the key the entry is stored under."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rhip.fhir.elements import ICD10_SYSTEMS, INPATIENT_NO_SYSTEM, LOINC
from rhip.fhir.refs import Refs, as_list, id_number, idents, obj

GENDER = {"male": "1", "female": "2", "unknown": "0", "other": "9"}
ADMISSION_CLASSES = ("IMP", "ACUTE", "NONAC")


def dt(value: Any) -> str | None:
    """FHIR dateTime/instant → 'YYYY-MM-DD HH:MM:SS' wall clock (offsets other than +08:00 kept)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("T", " ")
    for suffix in ("+08:00", "Z"):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    text = text.split(".")[0]
    if len(text) == 10:
        text += " 00:00:00"
    elif len(text) == 16:
        text += ":00"
    return text


def coding(cc: Any, systems: Iterable[str] | None = None) -> dict[str, Any]:
    """A CodeableConcept's first coding (of one of `systems` when it has one)."""
    if not isinstance(cc, dict):
        return {}
    codings = [c for c in cc.get("coding") or [] if isinstance(c, dict)]
    if systems is not None:
        wanted = tuple(systems)
        codings = [c for c in codings if c.get("system") in wanted] or codings
    return codings[0] if codings else {}


def text(cc: Any) -> str | None:
    """A CodeableConcept's text, else its first coding's display."""
    if not isinstance(cc, dict):
        return None
    return cc.get("text") or coding(cc).get("display")


def ext(res: dict[str, Any], name: str) -> Any:
    """The value of our extension `name` (any canonical base: the URL's last segment is the name)."""
    tail = "/" + name
    for e in res.get("extension") or []:
        if isinstance(e, dict) and str(e.get("url", "")).endswith(tail):
            for k, v in e.items():
                if k.startswith("value"):
                    return v.get("value") if isinstance(v, dict) and "value" in v else v
    return None


def encounter_kind(enc: dict[str, Any] | None) -> str:
    """ "admission" for an inpatient class (IMP, ACUTE, NONAC), else "visit"."""
    if not enc:
        return "visit"
    cls = obj(enc.get("class"))
    return "admission" if cls.get("code") in ADMISSION_CLASSES else "visit"


def modality(study: Any) -> str | None:
    """An ImagingStudy's modality code (the study's, else its first series')."""
    if not isinstance(study, dict):
        return None
    mods = study.get("modality") or []
    if mods and isinstance(mods[0], dict) and mods[0].get("code"):
        return str(mods[0]["code"])
    for s in study.get("series") or []:
        if isinstance(s, dict) and isinstance(s.get("modality"), dict) and s["modality"].get("code"):
            return str(s["modality"]["code"])
    return None


@dataclass
class Entry:
    """One entry to map, its references resolved: its key, patient, encounter and the record's base."""

    i: int
    res: dict[str, Any]
    refs: Refs
    base: dict[str, Any]  # org_code, collected_at, updated_at, change_flag
    report_of: dict[int, str | None]  # an Observation's entry → its DiagnosticReport's number
    rid: str | None = None
    patient: str | None = None
    enc_id: str | None = None
    enc: dict[str, Any] | None = None

    @classmethod
    def resolve(
        cls, refs: Refs, i: int, res: dict[str, Any], base: dict[str, Any], report_of: dict[int, str | None]
    ) -> Entry:
        """The entry with its subject and encounter resolved (an unresolvable one noted on `refs`)."""
        patient = refs.key(res.get("subject") or res.get("patient"), i)
        enc_ref = res.get("encounter") or res.get("context")
        enc_id = refs.key(enc_ref, i)
        enc_at = refs.entry(enc_ref)
        enc = refs.resources[enc_at] if enc_at is not None else None
        return cls(i, res, refs, base, report_of, refs.keys[i], patient, enc_id, enc)

    @property
    def link(self) -> dict[str, Any]:
        """The record's link to its encounter: an admission number or a visit number."""
        return (
            {"admission_no": self.enc_id}
            if encounter_kind(self.enc) == "admission"
            else {"visit_no": self.enc_id}
        )

    def key(self, ref: Any) -> str | None:
        """The business key another reference of this entry resolves to."""
        return self.refs.key(ref, self.i)

    def first_key(self, items: Any, field: str) -> str | None:
        """The key of the first participant's or performer's `field` reference."""
        for p in items or []:
            if isinstance(p, dict):
                return self.key(p.get(field))
        return None


Record = tuple[str, dict[str, Any], str | None]  # catalogue table, record, the key the entry is stored under


def _patient(e: Entry) -> Record:
    res = e.res
    names = res.get("name") or [{}]
    n0 = names[0] if isinstance(names, list) and names and isinstance(names[0], dict) else {}
    given = as_list(n0.get("given"))
    name = n0.get("text") or ((n0.get("family") or "") + "".join(map(str, given))) or None
    phones = (
        t.get("value") for t in res.get("telecom") or [] if isinstance(t, dict) and t.get("system") == "phone"
    )
    return (
        "patient_info",
        {
            **e.base,
            "patient_id": e.rid,
            "name": name,
            "sex": GENDER.get(str(res.get("gender"))) if res.get("gender") else None,
            "birth_date": res.get("birthDate"),
            "id_number": id_number(res),
            "phone": next(phones, None),
        },
        e.rid,
    )


def _encounter(e: Entry) -> Record:
    res = e.res
    period = obj(res.get("period"))
    stype = res.get("serviceType")
    if isinstance(stype, list):  # R5 shape (CodeableReference list): take its first concept
        stype = obj(obj(stype[0] if stype else {}).get("concept"))
    dept = coding(stype).get("code") or ext(res, "department")
    doctor = e.first_key(res.get("participant"), "individual")
    if encounter_kind(res) == "admission":
        inpatient = next(
            (str(x["value"]) for x in idents(res) if x.get("system") == INPATIENT_NO_SYSTEM), None
        )
        row = {
            **e.base,
            "admission_no": e.rid,
            "inpatient_no": inpatient,
            "patient_id": e.patient,
            "admitted_at": dt(period.get("start")),
            "dept_code": dept,
            "admission_route": ext(res, "admission-route") or "9",
        }
        return "admission", row, e.rid
    row = {
        **e.base,
        "visit_no": e.rid,
        "patient_id": e.patient,
        "visit_type": "2" if obj(res.get("class")).get("code") == "EMER" else "1",
        "dept_code": dept,
        "doctor_code": doctor,
        "visit_time": dt(period.get("start")),
        "fee_total": ext(res, "fee-total"),
    }
    return "outpatient_visit", row, e.rid


def _condition(e: Entry) -> Record:
    res = e.res
    link = e.link
    cat = coding((res.get("category") or [None])[0]).get("code")
    return (
        "diagnosis",
        {
            **e.base,
            **link,
            "diagnosis_no": e.rid,
            "patient_id": e.patient,
            "diagnosis_type": cat
            if cat in ("1", "2", "3", "4", "5", "9")
            else ("2" if "admission_no" in link else "1"),
            "main_flag": ext(res, "main-diagnosis") or "1",
            "diagnosis_code": coding(res.get("code"), ICD10_SYSTEMS).get("code"),
            "diagnosis_name": text(res.get("code")),
            "diagnosed_at": dt(res.get("recordedDate") or res.get("onsetDateTime")),
        },
        e.rid,
    )


def _observation(e: Entry) -> Record:
    res = e.res
    qty = obj(res.get("valueQuantity"))
    value: Any = qty.get("value") if qty else None
    if not qty:
        value = res.get("valueString") or text(res.get("valueCodeableConcept"))
    rng = obj((res.get("referenceRange") or [None])[0])
    codings = [c for c in obj(res.get("code")).get("coding") or [] if isinstance(c, dict)]
    local = next((c for c in codings if c.get("system") != LOINC), codings[0] if codings else {})
    loinc = next((c.get("code") for c in codings if c.get("system") == LOINC), None)
    report = e.report_of.get(e.i) or ext(res, "report-no") or e.key((res.get("partOf") or [None])[0])
    row = {
        **e.base,
        "report_no": report,
        "item_code": local.get("code"),
        "loinc_code": loinc,
        "item_name": text(res.get("code")),
        "result_value": value,
        "result_numeric": qty.get("value") if qty else None,
        "unit": qty.get("unit") if qty else None,
        "reference_range": rng.get("text"),
        "reference_low": obj(rng.get("low")).get("value"),
        "reference_high": obj(rng.get("high")).get("value"),
        "abnormal_flag": coding((res.get("interpretation") or [None])[0]).get("code"),
        "reported_at": dt(res.get("issued") or res.get("effectiveDateTime")),
    }
    return "lab_result", row, f"{report}-{local.get('code')}"


def _diagnostic_report(e: Entry) -> Record:
    res = e.res
    cats = {str(coding(c).get("code")) for c in res.get("category") or []}
    common = {**e.base, **e.link, "report_no": e.rid, "patient_id": e.patient}
    issued = dt(res.get("issued") or res.get("effectiveDateTime"))
    if "LAB" in cats:
        return "lab_report", {**common, "panel_name": text(res.get("code")), "reported_at": issued}, e.rid
    study_at = next((j for j in map(e.refs.entry, as_list(res.get("imagingStudy"))) if j is not None), None)
    study = e.refs.resources[study_at] if study_at is not None else None
    row = {
        **common,
        "modality": modality(study) or ext(res, "modality") or next(iter(sorted(cats - {"RAD"})), None),
        "exam_item_name": text(res.get("code")),
        "reported_at": issued,
        "conclusion": res.get("conclusion"),
    }
    return "exam_report", row, e.rid


def _imaging_study(e: Entry) -> Record:
    res = e.res
    row = {
        **e.base,
        **e.link,
        "report_no": e.rid,
        "patient_id": e.patient,
        "modality": modality(res),
        "exam_item_name": res.get("description"),
        "reported_at": dt(res.get("started")),
        "conclusion": ext(res, "conclusion"),
    }
    return "exam_report", row, e.rid


def _medication_request(e: Entry) -> Record:
    res = e.res
    group = obj(res.get("groupIdentifier"))
    qty = obj(obj(res.get("dispenseRequest")).get("quantity"))
    seq = ext(res, "item-seq") or "1"
    row = {
        **e.base,
        "prescription_no": group.get("value") or e.rid,
        "item_seq": seq,
        "issued_at": dt(res.get("authoredOn")),
        "drug_code": coding(res.get("medicationCodeableConcept")).get("code"),
        "drug_name": text(res.get("medicationCodeableConcept")),
        "quantity": qty.get("value"),
    }
    return "prescription_item", row, e.rid or f"{group.get('value')}-{seq}"


def _procedure(e: Entry) -> Record:
    res = e.res
    period = obj(res.get("performedPeriod"))
    row = {
        **e.base,
        "surgery_no": e.rid,
        "admission_no": e.enc_id,
        "patient_id": e.patient,
        "procedure_code": coding(res.get("code")).get("code"),
        "procedure_name": text(res.get("code")),
        "surgery_level": ext(res, "surgery-level"),
        "started_at": dt(period.get("start") or res.get("performedDateTime")),
        "ended_at": dt(period.get("end")),
        "surgeon_code": e.first_key(res.get("performer"), "actor"),
    }
    return "surgery", row, e.rid


# the supported resource types, in the order the facade lists them, each with its mapper
MAPPERS: dict[str, Callable[[Entry], Record]] = {
    "Patient": _patient,
    "Encounter": _encounter,
    "Condition": _condition,
    "Observation": _observation,
    "DiagnosticReport": _diagnostic_report,
    "MedicationRequest": _medication_request,
    "Procedure": _procedure,
    "ImagingStudy": _imaging_study,
}
