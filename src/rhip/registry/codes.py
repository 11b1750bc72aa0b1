"""Code systems the dataset catalogue binds: GB/T 2261 sex and marital status, GB 3304 ethnicity,
GB/T 2260 areas and ICD-10 (their data in `idnumber` and `icd10`), and the value sets of the upload tables.

Rules as data: every system is an entry of registry/data/code_systems.yaml, read once; this module only
loads it and answers lookups. Nothing here touches the database.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from rhip.errors import NotFound
from rhip.registry.icd10 import icd10, is_icd10
from rhip.registry.idnumber import SEX, areas, is_known_area
from rhip.registry.loading import read_data

DATA = Path(__file__).parent / "data"

# ---------------------------------------------------------------------------------------------
# Code systems
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeSystem:
    """A named value set: its id, Chinese name, the standard it follows, and code → display."""

    id: str
    name: str
    standard: str
    codes: Mapping[str, str]
    description: str = ""
    external: bool = False  # codes live elsewhere (the institution registry), looked up on demand


# where the codes of a system with `source:` come from (kept with the data they serve)
SOURCES: dict[str, Callable[[], Mapping[str, str]]] = {
    "sex": lambda: SEX,
    "area": lambda: {a.code: a.name for a in areas().values()},
    "icd10": lambda: {c.code: c.name for c in icd10().values()},
}


@cache
def code_systems() -> dict[str, CodeSystem]:
    """Every code system the catalogue binds, by id, read once from data/code_systems.yaml (department is
    external: the registry has its codes)."""
    raw = read_data("code_systems.yaml")
    systems: dict[str, CodeSystem] = {}
    for item in raw["systems"]:
        external = bool(item.get("external", False))
        source = item.get("source")
        codes = SOURCES[source]() if source else item.get("codes") or {}
        systems[item["id"]] = CodeSystem(
            id=item["id"],
            name=item["name"],
            standard=item["standard"],
            codes=MappingProxyType({str(k): str(v) for k, v in codes.items()}),
            description=item.get("description", ""),
            external=external,
        )
    return systems


def get_code_system(system_id: str) -> CodeSystem:
    """One code system by id, or NotFound listing the valid ids."""
    systems = code_systems()
    try:
        return systems[system_id]
    except KeyError:
        raise NotFound(
            f"代码系统“{system_id}”不存在；可用：{'、'.join(sorted(systems))}", code="codesystem-not-found"
        ) from None


def _external_codes(system_id: str) -> dict[str, str]:
    """Codes of an external system, read from the institution registry at call time."""
    if system_id != "department":
        return {}
    try:  # the institution registry's loader, imported lazily so this module stays free of it
        registry_data = importlib.import_module("rhip.registry.directories")
    except ImportError:
        return {}
    fetch: Callable[[], Any] | None = getattr(registry_data, "departments", None)
    if fetch is None:
        return {}
    items = fetch()
    if isinstance(items, Mapping):
        values = list(items.values())
        if all(isinstance(v, str) for v in values):
            return {str(k): str(v) for k, v in items.items()}
        items = values
    out: dict[str, str] = {}
    for item in items:
        if isinstance(item, str):
            out[item] = item
        elif isinstance(item, Mapping):
            out[str(item["code"])] = str(item.get("name", item["code"]))
        else:
            out[str(item.code)] = str(getattr(item, "name", item.code))
    return out


def codes_of(system_id: str) -> dict[str, str]:
    """code → display for a system, resolving external systems through the registry."""
    system = get_code_system(system_id)
    if system.external:
        return _external_codes(system_id)
    return dict(system.codes)


def in_code_system(system_id: str, code: str) -> bool:
    """Whether `code` is valid in the system (ICD-10 and area: see is_icd10 and is_known_area)."""
    system = get_code_system(system_id)
    if system_id == "icd10":
        return is_icd10(code)
    if system_id == "area":
        return is_known_area(code)
    if system.external:
        return code in _external_codes(system_id)
    return code in system.codes
