"""FHIR R4 resources → catalogue records (plain dict walking, so a bundle maps at tens of thousands of
resources a second; the pipeline's vectorised rules then validate the records like any upload)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rhip.errors import BadRequest, Invalid

SUPPORTED = (
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
    "DiagnosticReport",
    "MedicationRequest",
    "Procedure",
    "ImagingStudy",
)
ID_NUMBER_SYSTEM = "urn:oid:2.16.156.10011.1.1"  # 居民身份证号码
LOINC = "http://loinc.org"
ICD10_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10", "urn:oid:2.16.156.10011.2.3.3.11")
GENDER = {"male": "1", "female": "2", "unknown": "0", "other": "9"}
EXT = "http://rhip.example/fhir/StructureDefinition/"


@dataclass
class Mapped:
    """Records per catalogue table, and for each record the bundle entry it came from."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    entries: dict[str, list[int]] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)

    def add(self, table: str, entry: int, row: dict[str, Any]) -> None:
        """Add one record coming from a bundle entry."""
        self.rows.setdefault(table, []).append(row)
        self.entries.setdefault(table, []).append(entry)


def _dt(value: Any) -> str | None:
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


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _ref_id(ref: Any) -> str | None:
    if isinstance(ref, dict):
        r = ref.get("reference")
        if isinstance(r, str) and r:
            return r.rsplit("/", 1)[-1].removeprefix("urn:uuid:")
        ident = ref.get("identifier")
        if isinstance(ident, dict) and ident.get("value"):
            return str(ident["value"])
    return None


def _ref_type(ref: Any) -> str | None:
    if isinstance(ref, dict) and isinstance(ref.get("reference"), str) and "/" in ref["reference"]:
        return str(ref["reference"].split("/")[-2])
    return None


def _coding(cc: Any, systems: Iterable[str] | None = None) -> dict[str, Any]:
    if not isinstance(cc, dict):
        return {}
    codings = [c for c in cc.get("coding") or [] if isinstance(c, dict)]
    if systems is not None:
        wanted = tuple(systems)
        codings = [c for c in codings if c.get("system") in wanted] or codings
    return codings[0] if codings else {}


def _text(cc: Any) -> str | None:
    if not isinstance(cc, dict):
        return None
    return cc.get("text") or _coding(cc).get("display")


def _ext(res: dict[str, Any], name: str) -> Any:
    for e in res.get("extension") or []:
        if isinstance(e, dict) and str(e.get("url", "")).endswith(name):
            for k, v in e.items():
                if k.startswith("value"):
                    return v.get("value") if isinstance(v, dict) and "value" in v else v
    return None


def _ident(res: dict[str, Any], system: str | None = None) -> str | None:
    for i in res.get("identifier") or []:
        if isinstance(i, dict) and i.get("value") and (system is None or i.get("system") == system):
            return str(i["value"])
    return None


def _meta(res: dict[str, Any], org: str, collected_at: str) -> dict[str, Any]:
    meta = _obj(res.get("meta"))
    updated = _dt(meta.get("lastUpdated")) or collected_at
    return {"org_code": org, "collected_at": collected_at, "updated_at": updated, "change_flag": "1"}


def _encounter_kind(enc: dict[str, Any] | None) -> str:
    if not enc:
        return "visit"
    cls = _obj(enc.get("class"))
    return "admission" if cls.get("code") in ("IMP", "ACUTE", "NONAC") else "visit"


def map_bundle(bundle: Any, *, institution_code: str, collected_at: str | Sequence[str]) -> Mapped:
    """Map a transaction/batch Bundle's entries onto catalogue records.

    `collected_at` (数据采集时间) is the receipt time; the demo, replaying a month, gives one per entry.
    """
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BadRequest("请求体不是 FHIR Bundle（resourceType 应为 Bundle）", code="not-a-bundle")
    if bundle.get("type") not in ("transaction", "batch"):
        raise Invalid(
            f"Bundle.type 应为 transaction 或 batch，实际为 {bundle.get('type')!r}", code="bundle-type"
        )
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise Invalid("Bundle.entry 必须是数组", code="bundle-entry")
    resources: list[dict[str, Any]] = []
    for i, e in enumerate(entries):
        res = e.get("resource") if isinstance(e, dict) else None
        resources.append(res if isinstance(res, dict) else {})
        if not isinstance(res, dict):
            raise Invalid(f"Bundle.entry[{i}] 没有 resource", code="bundle-entry")
    by_id = {f"{r.get('resourceType')}/{r.get('id')}": r for r in resources if r.get("id")}
    for e in entries:
        if isinstance(e, dict) and isinstance(e.get("fullUrl"), str):
            res = e.get("resource")
            if isinstance(res, dict):
                by_id[e["fullUrl"].removeprefix("urn:uuid:")] = res
    report_of: dict[str, str] = {}
    studies_reported: set[str] = set()
    for r in resources:
        if r.get("resourceType") == "DiagnosticReport":
            for ref in r.get("result") or []:
                oid = _ref_id(ref)
                if oid:
                    report_of[oid] = str(r.get("id") or _ident(r) or "")
            for ref in r.get("imagingStudy") or []:
                sid = _ref_id(ref)
                if sid:
                    studies_reported.add(sid)
    out = Mapped()
    for i, res in enumerate(resources):
        rtype = res.get("resourceType")
        if rtype not in SUPPORTED:
            out.errors[i] = f"不支持的资源类型：{rtype}（支持 {'、'.join(SUPPORTED)}）"
            continue
        base = _meta(
            res, institution_code, collected_at if isinstance(collected_at, str) else collected_at[i]
        )
        rid = str(res.get("id") or _ident(res) or "") or None
        patient = _ref_id(res.get("subject") or res.get("patient"))
        enc_ref = res.get("encounter") or res.get("context")
        enc_id = _ref_id(enc_ref)
        enc = by_id.get(f"Encounter/{enc_id}") if enc_id else None
        link = {"admission_no": enc_id} if _encounter_kind(enc) == "admission" else {"visit_no": enc_id}
        if rtype == "Patient":
            names = res.get("name") or [{}]
            n0 = names[0] if isinstance(names[0], dict) else {}
            name = n0.get("text") or ((n0.get("family") or "") + "".join(n0.get("given") or [])) or None
            phone = next(
                (
                    t.get("value")
                    for t in res.get("telecom") or []
                    if isinstance(t, dict) and t.get("system") == "phone"
                ),
                None,
            )
            out.add(
                "patient_info",
                i,
                {
                    **base,
                    "patient_id": rid,
                    "name": name,
                    "sex": GENDER.get(str(res.get("gender"))) if res.get("gender") else None,
                    "birth_date": res.get("birthDate"),
                    "id_number": _ident(res, ID_NUMBER_SYSTEM),
                    "phone": phone,
                },
            )
        elif rtype == "Encounter":
            period = _obj(res.get("period"))
            dept = _coding(res.get("serviceType")).get("code") or _ext(res, "department")
            doctor = None
            for p in res.get("participant") or []:
                if isinstance(p, dict):
                    doctor = _ref_id(p.get("individual"))
                    break
            if _encounter_kind(res) == "admission":
                out.add(
                    "admission",
                    i,
                    {
                        **base,
                        "admission_no": rid,
                        "patient_id": patient,
                        "admitted_at": _dt(period.get("start")),
                        "dept_code": dept,
                        "admission_route": _ext(res, "admission-route") or "9",
                    },
                )
            else:
                cls = _obj(res.get("class"))
                out.add(
                    "outpatient_visit",
                    i,
                    {
                        **base,
                        "visit_no": rid,
                        "patient_id": patient,
                        "visit_type": "2" if cls.get("code") == "EMER" else "1",
                        "dept_code": dept,
                        "doctor_code": doctor,
                        "visit_time": _dt(period.get("start")),
                        "fee_total": _ext(res, "fee-total"),
                    },
                )
        elif rtype == "Condition":
            code = _coding(res.get("code"), ICD10_SYSTEMS)
            cat = _coding((res.get("category") or [None])[0]).get("code")
            out.add(
                "diagnosis",
                i,
                {
                    **base,
                    **link,
                    "diagnosis_no": rid,
                    "patient_id": patient,
                    "diagnosis_type": cat
                    if cat in ("1", "2", "3", "4", "5", "9")
                    else ("2" if "admission_no" in link else "1"),
                    "main_flag": _ext(res, "main-diagnosis") or "1",
                    "diagnosis_code": code.get("code"),
                    "diagnosis_name": _text(res.get("code")),
                    "diagnosed_at": _dt(res.get("recordedDate") or res.get("onsetDateTime")),
                },
            )
        elif rtype == "Observation":
            value: Any = None
            qty = _obj(res.get("valueQuantity"))
            if qty:
                value = qty.get("value")
            else:
                value = res.get("valueString") or _text(res.get("valueCodeableConcept"))
            rng = _obj((res.get("referenceRange") or [None])[0])
            codings = [c for c in _obj(res.get("code")).get("coding") or [] if isinstance(c, dict)]
            local = next((c for c in codings if c.get("system") != LOINC), codings[0] if codings else {})
            loinc = next((c.get("code") for c in codings if c.get("system") == LOINC), None)
            out.add(
                "lab_result",
                i,
                {
                    **base,
                    "report_no": report_of.get(str(res.get("id")))
                    or _ext(res, "report-no")
                    or _ref_id((res.get("partOf") or [None])[0]),
                    "item_code": local.get("code"),
                    "loinc_code": loinc,
                    "item_name": _text(res.get("code")),
                    "result_value": value,
                    "result_numeric": qty.get("value") if qty else None,
                    "unit": qty.get("unit") if qty else None,
                    "reference_range": rng.get("text"),
                    "reference_low": _obj(rng.get("low")).get("value"),
                    "reference_high": _obj(rng.get("high")).get("value"),
                    "abnormal_flag": _coding((res.get("interpretation") or [None])[0]).get("code"),
                    "reported_at": _dt(res.get("issued") or res.get("effectiveDateTime")),
                },
            )
        elif rtype == "DiagnosticReport":
            cats = {str(_coding(c).get("code")) for c in res.get("category") or []}
            common = {**base, **link, "report_no": rid, "patient_id": patient}
            issued = _dt(res.get("issued") or res.get("effectiveDateTime"))
            if "LAB" in cats:
                out.add(
                    "lab_report", i, {**common, "panel_name": _text(res.get("code")), "reported_at": issued}
                )
            else:
                study = next(
                    (by_id.get(f"ImagingStudy/{_ref_id(r)}") for r in res.get("imagingStudy") or []), None
                )
                modality = _modality(study) or _ext(res, "modality") or next(iter(cats - {"RAD"}), None)
                out.add(
                    "exam_report",
                    i,
                    {
                        **common,
                        "modality": modality,
                        "exam_item_name": _text(res.get("code")),
                        "reported_at": issued,
                        "conclusion": res.get("conclusion"),
                    },
                )
        elif rtype == "ImagingStudy":
            if rid in studies_reported:
                continue  # its DiagnosticReport carries the exam report
            out.add(
                "exam_report",
                i,
                {
                    **base,
                    **link,
                    "report_no": rid,
                    "patient_id": patient,
                    "modality": _modality(res),
                    "exam_item_name": res.get("description"),
                    "reported_at": _dt(res.get("started")),
                    "conclusion": _ext(res, "conclusion"),
                },
            )
        elif rtype == "MedicationRequest":
            group = _obj(res.get("groupIdentifier"))
            dr = _obj(res.get("dispenseRequest"))
            qty = _obj(dr.get("quantity"))
            med = _coding(res.get("medicationCodeableConcept"))
            out.add(
                "prescription_item",
                i,
                {
                    **base,
                    "prescription_no": group.get("value") or rid,
                    "item_seq": _ext(res, "item-seq") or "1",
                    "issued_at": _dt(res.get("authoredOn")),
                    "drug_code": med.get("code"),
                    "drug_name": _text(res.get("medicationCodeableConcept")),
                    "quantity": qty.get("value"),
                },
            )
        elif rtype == "Procedure":
            period = _obj(res.get("performedPeriod"))
            surgeon = None
            for p in res.get("performer") or []:
                if isinstance(p, dict):
                    surgeon = _ref_id(p.get("actor"))
                    break
            out.add(
                "surgery",
                i,
                {
                    **base,
                    "surgery_no": rid,
                    "admission_no": enc_id,
                    "patient_id": patient,
                    "procedure_code": _coding(res.get("code")).get("code"),
                    "procedure_name": _text(res.get("code")),
                    "surgery_level": _ext(res, "surgery-level"),
                    "started_at": _dt(period.get("start") or res.get("performedDateTime")),
                    "ended_at": _dt(period.get("end")),
                    "surgeon_code": surgeon,
                },
            )
    return out


def _modality(study: Any) -> str | None:
    if not isinstance(study, dict):
        return None
    mods = study.get("modality") or []
    if mods and isinstance(mods[0], dict) and mods[0].get("code"):
        return str(mods[0]["code"])
    for s in study.get("series") or []:
        if isinstance(s, dict) and isinstance(s.get("modality"), dict) and s["modality"].get("code"):
            return str(s["modality"]["code"])
    return None
