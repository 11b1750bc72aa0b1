"""FHIR R4 resources → catalogue records (plain dict walking, so a bundle maps at tens of thousands of
resources a second; the pipeline's vectorised rules then validate the records like any upload).

References between entries follow FHIR R4 §3.1.0.11 (transaction processing): a reference equal to another
entry's `fullUrl` (`urn:uuid:`, `urn:oid:` or an absolute URL), or `Type/id` naming an entry of the Bundle,
resolves to that entry, and the record gets the referenced record's business key (the Patient's local id,
the Encounter's visit or admission number, the DiagnosticReport's report number) whether or not the entry
has an id. Entry order does not matter. A `Type/id` naming no entry is a stored record's key.

This module walks the Bundle; `refs.py` resolves its identifiers and references, `records.py` maps each
resource onto its record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rhip.errors import BadRequest, Invalid
from rhip.fhir.elements import ID_NUMBER_SYSTEM
from rhip.fhir.records import MAPPERS, Entry, coding, dt, encounter_kind
from rhip.fhir.refs import Refs, business_id, conditionals, obj

SUPPORTED = tuple(MAPPERS)  # Patient, Encounter, Condition, Observation, DiagnosticReport, ...


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


def _meta(res: dict[str, Any], org: str, collected_at: str) -> dict[str, Any]:
    meta = obj(res.get("meta"))
    updated = dt(meta.get("lastUpdated")) or collected_at
    return {"org_code": org, "collected_at": collected_at, "updated_at": updated, "change_flag": "1"}


def table_of(res: dict[str, Any]) -> str | None:
    """The catalogue table a resource maps onto."""
    rtype = res.get("resourceType")
    if rtype == "Encounter":
        return "admission" if encounter_kind(res) == "admission" else "outpatient_visit"
    if rtype == "DiagnosticReport":
        cats = {str(coding(c).get("code")) for c in res.get("category") or []}
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
        keys.append(key or business_id(res, out.types[i]))
        if cond is not None and cond.kind == "create" and found.get(i):
            out.existing[i] = str(found[i])
    refs = Refs(entries, resources, keys)
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
        entry = Entry.resolve(refs, i, res, _meta(res, institution_code, at), report_of)
        table, row, location = MAPPERS[rtype](entry)
        out.add(table, i, row)
        out.locations[i] = f"{rtype}/{location}" if location else ""
        if i in refs.unresolved:
            out.errors[i] = (
                "not-found",
                "引用无法解析（Bundle 中没有该 fullUrl 的条目）：" + "、".join(refs.unresolved[i][:3]),
            )
    for i, j in out.part_of.items():
        out.locations[i] = out.locations.get(j, "")
    return out
