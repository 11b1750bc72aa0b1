"""FHIR R4 resources → catalogue records (plain dict walking, so a bundle maps at tens of thousands of
resources a second; the pipeline's vectorised rules then validate the records like any upload).

References between entries follow FHIR R4 §3.1.0.11 (transaction processing): a reference equal to another
entry's `fullUrl` (`urn:uuid:`, `urn:oid:` or an absolute URL), or `Type/id` naming an entry of the Bundle,
resolves to that entry, and the record gets the referenced record's business key (the Patient's local id,
the Encounter's visit or admission number, the DiagnosticReport's report number) whether or not the entry
has an id. Entry order does not matter. A `Type/id` naming no entry is a stored record's key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from rhip.errors import BadRequest, Invalid
from rhip.fhir.elements import (
    DOC_SERIAL_SYSTEM as DOC_SERIAL_SYSTEM,
    ICD10_SYSTEMS,
    ID_NUMBER_SYSTEM,
    INPATIENT_NO_SYSTEM,
    LOINC,
    V2_0203 as V2_0203,
)

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
GENDER = {"male": "1", "female": "2", "unknown": "0", "other": "9"}
ADMISSION_CLASSES = ("IMP", "ACUTE", "NONAC")


@dataclass
class Conditional:
    """A conditional interaction of one entry: `ifNoneExist` (create) or `PUT Type?identifier=` (update)."""

    kind: str  # "create" | "update"
    type: str
    system: str | None
    value: str


@dataclass
class Mapped:
    """Records per catalogue table, and for each record the bundle entry it came from."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    entries: dict[str, list[int]] = field(default_factory=dict)
    errors: dict[int, tuple[str, str]] = field(default_factory=dict)  # entry → (code, text)
    types: list[str] = field(default_factory=list)  # resourceType per entry
    locations: dict[int, str] = field(default_factory=dict)  # entry → "Type/<stored key>"
    tables: dict[int, str] = field(default_factory=dict)  # entry → catalogue table of its record
    existing: dict[int, str] = field(default_factory=dict)  # ifNoneExist matched: entry → stored key
    part_of: dict[int, int] = field(default_factory=dict)  # entry stored by another entry (ImagingStudy)

    def add(self, table: str, entry: int, row: dict[str, Any]) -> None:
        """Add one record coming from a bundle entry."""
        self.rows.setdefault(table, []).append(row)
        self.entries.setdefault(table, []).append(entry)
        self.tables[entry] = table


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


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


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
    """The value of our extension `name` (any canonical base: the URL's last segment is the name)."""
    tail = "/" + name
    for e in res.get("extension") or []:
        if isinstance(e, dict) and str(e.get("url", "")).endswith(tail):
            for k, v in e.items():
                if k.startswith("value"):
                    return v.get("value") if isinstance(v, dict) and "value" in v else v
    return None


def _typed(ident: dict[str, Any], code: str) -> bool:
    for c in _obj(ident.get("type")).get("coding") or []:
        if isinstance(c, dict) and c.get("code") == code and c.get("system") in (V2_0203, None):
            return True
    return False


def _idents(res: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in res.get("identifier") or [] if isinstance(i, dict) and i.get("value")]


def id_number(res: dict[str, Any]) -> str | None:
    """The national ID (身份证号): system urn:oid:2.16.156.10011.1.3, or an identifier typed v2-0203 NNCHN."""
    for i in _idents(res):
        if i.get("system") == ID_NUMBER_SYSTEM or _typed(i, "NNCHN"):
            return str(i["value"])
    return None


def _business_id(res: dict[str, Any], rtype: str) -> str | None:
    """The business key an entry carries itself: its id; a Patient's MR-typed identifier; another
    resource's first identifier."""
    rid = res.get("id")
    if isinstance(rid, str) and rid:
        return rid
    idents = _idents(res)
    if rtype == "Patient":
        return next((str(i["value"]) for i in idents if _typed(i, "MR")), None)
    if rtype == "Encounter":
        idents = [i for i in idents if i.get("system") != INPATIENT_NO_SYSTEM] or idents
    return str(idents[0]["value"]) if idents else None


def parse_condition(text: str) -> tuple[str, str | None, str] | None:
    """`[Type?]identifier=system|value` → (type or "", system, value); None when it is not one."""
    rtype, _, query = text.partition("?") if "?" in text else ("", "", text)
    values = parse_qs(query).get("identifier")
    if not values or not values[0]:
        return None
    system, sep, value = values[0].rpartition("|")
    if not value:
        return None
    return rtype.rsplit("/", 1)[-1], (system or None) if sep else None, value


def conditionals(bundle: Any) -> dict[int, Conditional]:
    """The entries whose request is conditional (`ifNoneExist`, or PUT with a search URL)."""
    out: dict[int, Conditional] = {}
    if not isinstance(bundle, dict) or not isinstance(bundle.get("entry"), list):
        return out
    for i, e in enumerate(bundle["entry"]):
        req = _obj(e.get("request")) if isinstance(e, dict) else {}
        res = _obj(e.get("resource")) if isinstance(e, dict) else {}
        rtype = str(res.get("resourceType") or "")
        url, method = req.get("url"), str(req.get("method") or "").upper()
        if isinstance(req.get("ifNoneExist"), str) and method == "POST":
            got = parse_condition(req["ifNoneExist"])
            if got:
                out[i] = Conditional("create", rtype, got[1], got[2])
        elif method == "PUT" and isinstance(url, str) and "?" in url:
            got = parse_condition(url)
            if got:
                out[i] = Conditional("update", rtype, got[1], got[2])
    return out


def _meta(res: dict[str, Any], org: str, collected_at: str) -> dict[str, Any]:
    meta = _obj(res.get("meta"))
    updated = _dt(meta.get("lastUpdated")) or collected_at
    return {"org_code": org, "collected_at": collected_at, "updated_at": updated, "change_flag": "1"}


class _Refs:
    """Reference resolution within one Bundle (fullUrl, Type/id, conditional and identifier references)."""

    def __init__(self, entries: list[Any], resources: list[dict[str, Any]], keys: list[str | None]) -> None:
        self.resources, self.keys = resources, keys
        self.full: dict[str, int] = {}
        self.typed: dict[str, int] = {}
        for i, (e, r) in enumerate(zip(entries, resources, strict=True)):
            url = e.get("fullUrl") if isinstance(e, dict) else None
            if isinstance(url, str) and url:
                self.full[url] = i
                if not url.startswith("urn:"):
                    self.typed.setdefault(_tail(url), i)
            if isinstance(r.get("id"), str) and r["id"]:
                self.typed[f"{r.get('resourceType')}/{r['id']}"] = i
        self.unresolved: dict[int, list[str]] = {}
        self._memo: dict[str, tuple[int | None, str | None, bool]] = {}

    def entry(self, ref: Any) -> int | None:
        """The entry a Reference points to, when it is one of the Bundle's."""
        if not isinstance(ref, dict):
            return None
        r = ref.get("reference")
        if isinstance(r, str) and r:
            return self._literal(r)[0]
        ident = ref.get("identifier")
        if isinstance(ident, dict) and ident.get("value"):
            return self._by_identifier(str(ref.get("type") or ""), ident.get("system"), str(ident["value"]))
        return None

    def _by_identifier(self, rtype: str, system: str | None, value: str) -> int | None:
        for i, r in enumerate(self.resources):
            if rtype and r.get("resourceType") != rtype:
                continue
            for ident in _idents(r):
                if str(ident["value"]) == value and (system is None or ident.get("system") == system):
                    return i
        return None

    def _literal(self, r: str) -> tuple[int | None, str | None, bool]:
        """(entry, key, unresolvable) of a literal reference, memoised: a Bundle names the same patient and
        encounter from many entries."""
        hit = self._memo.get(r)
        if hit is not None:
            return hit
        i: int | None = self.full.get(r)
        key: str | None = None
        bad = False
        if i is None:
            if r.startswith(("urn:uuid:", "urn:oid:")):
                bad = True
            elif r.startswith("#"):
                pass  # a contained resource: nothing to link
            elif "?" in r:
                got = parse_condition(r)
                i = self._by_identifier(r.split("?")[0], got[1], got[2]) if got else None
                if i is None:
                    bad = not got or got[1] == ID_NUMBER_SYSTEM
                    key = None if bad or not got else got[2]
            else:
                tail = _tail(r)
                i = self.typed.get(tail)
                key = tail.rsplit("/", 1)[-1]
        if i is not None:
            key = self.keys[i]
        self._memo[r] = (i, key, bad)
        return i, key, bad

    def key(self, ref: Any, at: int) -> str | None:
        """The business key a Reference resolves to (an unresolvable `urn:` reference noted on entry `at`)."""
        if not isinstance(ref, dict):
            return None
        r = ref.get("reference")
        if isinstance(r, str) and r:
            _i, key, bad = self._literal(r)
            if bad:
                self.unresolved.setdefault(at, []).append(r)
            return key
        i = self.entry(ref)
        if i is not None:
            return self.keys[i]
        ident = ref.get("identifier")
        if isinstance(ident, dict) and ident.get("value"):
            return str(ident["value"])
        return None


def _tail(url: str) -> str:
    """`Type/id` of a relative or absolute literal reference (a `_history/n` suffix dropped)."""
    parts = url.split("?")[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    return "/".join(parts[-2:])


def _encounter_kind(enc: dict[str, Any] | None) -> str:
    if not enc:
        return "visit"
    cls = _obj(enc.get("class"))
    return "admission" if cls.get("code") in ADMISSION_CLASSES else "visit"


def table_of(res: dict[str, Any]) -> str | None:
    """The catalogue table a resource maps onto."""
    rtype = res.get("resourceType")
    if rtype == "Encounter":
        return "admission" if _encounter_kind(res) == "admission" else "outpatient_visit"
    if rtype == "DiagnosticReport":
        cats = {str(_coding(c).get("code")) for c in res.get("category") or []}
        return "lab_report" if "LAB" in cats else "exam_report"
    return {
        "Patient": "patient_info",
        "Condition": "diagnosis",
        "Observation": "lab_result",
        "MedicationRequest": "prescription_item",
        "Procedure": "surgery",
        "ImagingStudy": "exam_report",
    }.get(str(rtype))


def _check_shape(bundle: Any) -> tuple[list[Any], list[dict[str, Any]]]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BadRequest("请求体不是 FHIR Bundle（resourceType 应为 Bundle）", code="not-a-bundle")
    if bundle.get("type") not in ("transaction", "batch"):
        raise Invalid(
            f"Bundle.type 应为 transaction 或 batch，实际为 {str(bundle.get('type'))[:40]!r}",
            code="bundle-type",
        )
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise Invalid("Bundle.entry 必须是数组", code="bundle-entry")
    resources: list[dict[str, Any]] = []
    for i, e in enumerate(entries):
        res = e.get("resource") if isinstance(e, dict) else None
        if not isinstance(res, dict):
            raise Invalid(f"Bundle.entry[{i}] 没有 resource", code="bundle-entry")
        resources.append(res)
    return entries, resources


def map_bundle(
    bundle: Any,
    *,
    institution_code: str,
    collected_at: str | Sequence[str],
    found: dict[int, str | None] | None = None,
) -> Mapped:
    """Map a transaction/batch Bundle's entries onto catalogue records.

    `collected_at` (数据采集时间) is the receipt time; the demo, replaying a month, gives one per entry.
    `found` answers the Bundle's conditional entries (`conditionals()`): the stored key the condition
    matched, or None when nothing matched.
    """
    entries, resources = _check_shape(bundle)
    found = found or {}
    conds = conditionals(bundle)
    out = Mapped(types=[str(r.get("resourceType")) for r in resources])
    keys: list[str | None] = []
    for i, res in enumerate(resources):
        key = found.get(i)
        cond = conds.get(i)
        if key is None and cond is not None and cond.kind == "update" and cond.system != ID_NUMBER_SYSTEM:
            key = cond.value  # PUT Type?identifier=sys|value: the value is the local key
        keys.append(key or _business_id(res, out.types[i]))
        if cond is not None and cond.kind == "create" and found.get(i):
            out.existing[i] = str(found[i])
    refs = _Refs(entries, resources, keys)
    report_of: dict[int, str | None] = {}
    study_report: dict[int, int] = {}
    for i, r in enumerate(resources):
        if out.types[i] == "DiagnosticReport":
            for ref in r.get("result") or []:
                j = refs.entry(ref)
                if j is not None:
                    report_of[j] = keys[i]
            for ref in r.get("imagingStudy") or []:
                j = refs.entry(ref)
                if j is not None:
                    study_report[j] = i
    for i, res in enumerate(resources):
        rtype = out.types[i]
        if rtype not in SUPPORTED:
            out.errors[i] = ("not-supported", f"不支持的资源类型：{rtype}（支持 {'、'.join(SUPPORTED)}）")
            continue
        if i in out.existing:
            out.locations[i] = f"{rtype}/{out.existing[i]}"
            continue
        if i in study_report:
            out.part_of[i] = study_report[i]
            continue
        at = collected_at if isinstance(collected_at, str) else collected_at[i]
        _map_one(out, refs, i, res, rtype, base=_meta(res, institution_code, at), report_of=report_of)
        if i in refs.unresolved:
            out.errors[i] = (
                "not-found",
                "引用无法解析（Bundle 中没有该 fullUrl 的条目）：" + "、".join(refs.unresolved[i][:3]),
            )
    for i, j in out.part_of.items():
        out.locations[i] = out.locations.get(j, "")
    return out


def _map_one(
    out: Mapped,
    refs: _Refs,
    i: int,
    res: dict[str, Any],
    rtype: str,
    *,
    base: dict[str, Any],
    report_of: dict[int, str | None],
) -> None:
    """One supported resource → its catalogue record."""
    rid = refs.keys[i]
    patient = refs.key(res.get("subject") or res.get("patient"), i)
    enc_ref = res.get("encounter") or res.get("context")
    enc_id = refs.key(enc_ref, i)
    enc_at = refs.entry(enc_ref)
    enc = refs.resources[enc_at] if enc_at is not None else None
    link = {"admission_no": enc_id} if _encounter_kind(enc) == "admission" else {"visit_no": enc_id}
    location = rid
    if rtype == "Patient":
        names = res.get("name") or [{}]
        n0 = names[0] if isinstance(names, list) and names and isinstance(names[0], dict) else {}
        given = _list(n0.get("given"))
        name = n0.get("text") or ((n0.get("family") or "") + "".join(map(str, given))) or None
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
                "id_number": id_number(res),
                "phone": phone,
            },
        )
    elif rtype == "Encounter":
        period = _obj(res.get("period"))
        stype = res.get("serviceType")
        if isinstance(stype, list):  # R5 shape (CodeableReference list): take its first concept
            stype = _obj(_obj(stype[0] if stype else {}).get("concept"))
        dept = _coding(stype).get("code") or _ext(res, "department")
        doctor = None
        for p in res.get("participant") or []:
            if isinstance(p, dict):
                doctor = refs.key(p.get("individual"), i)
                break
        if _encounter_kind(res) == "admission":
            inpatient = next(
                (str(x["value"]) for x in _idents(res) if x.get("system") == INPATIENT_NO_SYSTEM), None
            )
            out.add(
                "admission",
                i,
                {
                    **base,
                    "admission_no": rid,
                    "inpatient_no": inpatient,
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
        qty = _obj(res.get("valueQuantity"))
        value: Any = qty.get("value") if qty else None
        if not qty:
            value = res.get("valueString") or _text(res.get("valueCodeableConcept"))
        rng = _obj((res.get("referenceRange") or [None])[0])
        codings = [c for c in _obj(res.get("code")).get("coding") or [] if isinstance(c, dict)]
        local = next((c for c in codings if c.get("system") != LOINC), codings[0] if codings else {})
        loinc = next((c.get("code") for c in codings if c.get("system") == LOINC), None)
        report = report_of.get(i) or _ext(res, "report-no") or refs.key((res.get("partOf") or [None])[0], i)
        out.add(
            "lab_result",
            i,
            {
                **base,
                "report_no": report,
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
        location = f"{report}-{local.get('code')}"
    elif rtype == "DiagnosticReport":
        cats = {str(_coding(c).get("code")) for c in res.get("category") or []}
        common = {**base, **link, "report_no": rid, "patient_id": patient}
        issued = _dt(res.get("issued") or res.get("effectiveDateTime"))
        if "LAB" in cats:
            out.add("lab_report", i, {**common, "panel_name": _text(res.get("code")), "reported_at": issued})
        else:
            study_at = next(
                (j for j in map(refs.entry, _list(res.get("imagingStudy"))) if j is not None), None
            )
            study = refs.resources[study_at] if study_at is not None else None
            modality = _modality(study) or _ext(res, "modality") or next(iter(sorted(cats - {"RAD"})), None)
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
        seq = _ext(res, "item-seq") or "1"
        out.add(
            "prescription_item",
            i,
            {
                **base,
                "prescription_no": group.get("value") or rid,
                "item_seq": seq,
                "issued_at": _dt(res.get("authoredOn")),
                "drug_code": med.get("code"),
                "drug_name": _text(res.get("medicationCodeableConcept")),
                "quantity": qty.get("value"),
            },
        )
        location = rid or f"{group.get('value')}-{seq}"
    elif rtype == "Procedure":
        period = _obj(res.get("performedPeriod"))
        surgeon = None
        for p in res.get("performer") or []:
            if isinstance(p, dict):
                surgeon = refs.key(p.get("actor"), i)
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
    out.locations[i] = f"{rtype}/{location}" if location else ""


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
