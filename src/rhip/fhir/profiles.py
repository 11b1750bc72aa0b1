"""StructureDefinitions of what the facade takes: one constraint profile per mapped resource (required
elements = the catalogue's required fields that no default fills, code bindings = the catalogue's code
systems, the mapping to the catalogue field on every element) and one definition per extension it reads.
Built from `elements.PROFILES` and the catalogue, under the configured canonical base."""

from __future__ import annotations

from typing import Any

from rhip.fhir.elements import BY_ID, EXTENSIONS, PROFILES, Profile, extension_url
from rhip.registry import catalogue

CORE = "http://hl7.org/fhir/StructureDefinition/"
FHIR_VERSION = "4.0.1"
DATE = "2026-12-07"
MAPPING = {"identity": "rhip-catalogue", "name": "rhip 数据集目录（registry/data/datasets.yaml）"}
_BINDABLE = ("serviceType", "class", "gender", "category", "code", "interpretation", "modality")


def value_set_url(canonical: str, code_system: str) -> str:
    """The canonical URL standing for a catalogue code system's values."""
    return f"{canonical}/ValueSet/{code_system}"


def _field(table: str, name: str) -> catalogue.Field | None:
    ds = catalogue.get(table)
    return next((f for f in ds.fields if f.name == name), None)


def _profile(p: Profile, canonical: str) -> dict[str, Any]:
    ds = catalogue.get(p.table)
    root: dict[str, Any] = {
        "id": p.type,
        "path": p.type,
        "short": f"{p.title}（{p.table}）",
        "definition": f"映射到数据集目录表 {p.table}（{ds.label}）。{p.note}".rstrip("。") + "。",
        "mapping": [{"identity": MAPPING["identity"], "map": p.table}],
    }
    if p.invariants:
        root["constraint"] = [
            {"key": k, "severity": "error", "human": human, "expression": expr}
            for k, human, expr in p.invariants
        ]
    elements: dict[str, dict[str, Any]] = {}
    slices: list[dict[str, Any]] = []
    for e in p.elements:
        f = _field(p.table, e.field)
        label = f.label if f else e.field
        mapping = {"identity": MAPPING["identity"], "map": f"{p.table}.{e.field}"}
        comment = "；".join(x for x in (e.note, f"缺省值 {e.default}" if e.default else "") if x)
        if e.extension:
            slices.append(
                {
                    "id": f"{p.type}.extension:{e.extension}",
                    "path": f"{p.type}.extension",
                    "sliceName": e.extension,
                    "short": f"{label}（{e.field}）",
                    "min": 1 if e.min1 else 0,
                    "max": "1",
                    "type": [{"code": "Extension", "profile": [extension_url(canonical, e.extension)]}],
                    "mapping": [mapping],
                    **({"comment": comment} if comment else {}),
                }
            )
            continue
        if not e.element:
            continue
        eid = f"{p.type}.{e.element}"
        have = elements.get(eid)
        if have is not None:
            have["mapping"].append(mapping)
            have["short"] += f"；{label}（{e.field}）"
            have["min"] = max(have["min"], 1 if e.min1 else 0)
            continue
        el: dict[str, Any] = {
            "id": eid,
            "path": eid,
            "short": f"{label}（{e.field}）",
            "min": 1 if e.min1 else 0,
            "mapping": [mapping],
        }
        if comment:
            el["comment"] = comment
        if f is not None and f.code_system and e.element.split(".")[0] in _BINDABLE:
            el["binding"] = {
                "strength": "required" if e.min1 else "extensible",
                "description": f"数据集目录代码系统 {f.code_system}",
                "valueSet": value_set_url(canonical, f.code_system),
            }
        elements[eid] = el
    diff = [root, *elements.values()]
    if slices:
        diff.append(
            {
                "id": f"{p.type}.extension",
                "path": f"{p.type}.extension",
                "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"},
            }
        )
        diff.extend(slices)
    return {
        "resourceType": "StructureDefinition",
        "id": p.id,
        "url": f"{canonical}/StructureDefinition/{p.id}",
        "version": "1",
        "name": "".join(w.capitalize() for w in p.id.split("-")),
        "title": f"rhip {p.title}",
        "status": "active",
        "date": DATE,
        "publisher": "rhip 区域全民健康信息平台",
        "description": f"{p.type} 经 /fhir/r4 写入数据集目录表 {p.table}（{ds.label}）时的约束。",
        "fhirVersion": FHIR_VERSION,
        "mapping": [MAPPING],
        "kind": "resource",
        "abstract": False,
        "type": p.type,
        "baseDefinition": CORE + p.type,
        "derivation": "constraint",
        "differential": {"element": diff},
    }


def _extension(name: str, canonical: str) -> dict[str, Any]:
    value_type, fields = EXTENSIONS[name]
    contexts = sorted({p.type for p in PROFILES for e in p.elements if e.extension == name})
    url = extension_url(canonical, name)
    return {
        "resourceType": "StructureDefinition",
        "id": name,
        "url": url,
        "version": "1",
        "name": "".join(w.capitalize() for w in name.split("-")),
        "title": f"rhip 扩展 {name}",
        "status": "active",
        "date": DATE,
        "publisher": "rhip 区域全民健康信息平台",
        "description": f"数据集目录字段 {fields}",
        "fhirVersion": FHIR_VERSION,
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": t} for t in contexts],
        "type": "Extension",
        "baseDefinition": CORE + "Extension",
        "derivation": "constraint",
        "differential": {
            "element": [
                {"id": "Extension", "path": "Extension", "short": f"数据集目录字段 {fields}", "max": "1"},
                {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
                {"id": "Extension.url", "path": "Extension.url", "fixedUri": url},
                {
                    "id": "Extension.value[x]",
                    "path": "Extension.value[x]",
                    "min": 1,
                    "type": [{"code": value_type}],
                },
            ]
        },
    }


def ids() -> list[str]:
    """Every StructureDefinition id served: the profiles, then the extensions."""
    return [p.id for p in PROFILES] + sorted(EXTENSIONS)


def get(sd_id: str, *, canonical: str) -> dict[str, Any] | None:
    """One StructureDefinition by id (None when there is no such)."""
    if sd_id in BY_ID:
        return _profile(BY_ID[sd_id], canonical)
    if sd_id in EXTENSIONS:
        return _extension(sd_id, canonical)
    return None


def supported_profiles(rtype: str, *, canonical: str) -> list[str]:
    """The canonical URLs of the profiles of one resource type."""
    return [f"{canonical}/StructureDefinition/{p.id}" for p in PROFILES if p.type == rtype]


def _rule(f: catalogue.Field | None) -> str:
    """The intake rules that check a catalogue field."""
    if f is None:
        return ""
    rules = ["required"] if f.required else []
    kind = {
        "code": "code",
        "id_number": "id_checksum",
        "date": "date_range",
        "datetime": "date_range、date_future",
    }
    rules.append(kind.get(f.type, "type"))
    if f.minimum is not None or f.maximum is not None:
        rules.append("range")
    if f.code_system:
        rules[-1 if f.type == "code" else len(rules) :] = [f"code（{f.code_system}）"]
    return "、".join(rules)


def markdown() -> str:
    """docs/fhir.md's element tables: per profile, each element → catalogue field, required, the rule."""
    out: list[str] = []
    for p in PROFILES:
        ds = catalogue.get(p.table)
        out.append(f"### {p.type} → `{p.table}`（{ds.label}），profile `{p.id}`\n")
        if p.note:
            out.append(f"{p.note}。\n")
        out.append("| 元素（FHIRPath） | 目录字段 | 必填 | 校验规则 | 说明 |")
        out.append("| --- | --- | --- | --- | --- |")
        for e in p.elements:
            f = _field(p.table, e.field)
            need = "是" if e.min1 else (f"否（缺省 {e.default}）" if e.default else "否")
            if not e.min1 and f is not None and f.required and not e.default:
                need = "是（见说明）"
            path = e.path.replace("|", "\\|")
            note = (e.note or "").replace("|", "\\|")
            label = f.label if f else ""
            out.append(f"| `{path}` | `{e.field}` {label} | {need} | {_rule(f)} | {note} |")
        for key, human, expr in p.invariants:
            out.append(f"\n约束 `{key}`：{human}（`{expr}`）。")
        out.append("")
    out.append("### 扩展\n")
    out.append("| 扩展（`{canonical}/StructureDefinition/…`） | 值类型 | 目录字段 |")
    out.append("| --- | --- | --- |")
    for name in sorted(EXTENSIONS):
        vt, fields = EXTENSIONS[name]
        out.append(f"| `{name}` | {vt} | {fields} |")
    return "\n".join(out) + "\n"
