"""The registry's package data (institutions, districts, channels, ...) as plain records, no database.

Institutions, districts and telemedicine centres live here; departments, channels, hotline categories and
metropolitan cities in `directories`, the name keys and file reading in `loading` (re-exported here).

The synthetic-city generator and the bulletin read these directly; `service.load` copies them into the
SQL tables. Names are matched after `normalize_name` (full-/half-width, spaces, "（含分院）") and with
or without the "南京市"/"南京" prefix, so every spelling in the bulletins resolves to one institution.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from typing import Any

from rhip.registry.directories import metro_cities
from rhip.registry.loading import (
    DATA_DIR,
    aliases_of as _aliases,
    candidate_keys,
    normalize_code,
    normalize_name,
    read_data as _read,
)

# Bump when the loader's interpretation of the files changes (forces a reload of existing databases).
LOADER_VERSION = "1"

DATA_FILES = (
    "districts.yaml",
    "institutions.yaml",
    "departments.yaml",
    "channels.yaml",
    "hotline.yaml",
    "telemed.yaml",
    "metro_cities.yaml",
)

CITY = "南京市"
CITY_CODE = "320100"

LEVELS = ("三级", "二级", "一级", "社区", "未定级")
OWNERSHIPS = ("省属", "市属", "区属", "部队", "民营", "其他")
KINDS = ("hospital", "mch", "community_health_centre", "district_platform", "other")
KIND_LABELS = {
    "hospital": "医院",
    "mch": "妇幼保健机构",
    "community_health_centre": "社区卫生服务中心",
    "district_platform": "区平台",
    "other": "其他机构",
}
UPLOAD_ROUTES = ("direct", "district", "parent", "none")
UPLOAD_ROUTE_LABELS = {
    "direct": "直接上传市平台",
    "district": "经区平台上传",
    "parent": "并入上级机构上传",
    "none": "不上传",
}
# District platforms answer to these spellings too (2018: 区卫计局, 2020: 区卫健委, tables: just "玄武区").
PLATFORM_ALIAS_TEMPLATES = (
    "{name}",
    "{name}卫健委",
    "{name}卫计局",
    "{name}卫生健康委员会",
    "{name}平台",
    "{name}区域卫生信息平台",
    "{name}卫生健康信息平台",
)

_KIND_ORDER = {"district_platform": 0, "hospital": 1, "mch": 2, "community_health_centre": 3, "other": 4}


@dataclass(frozen=True)
class DistrictRecord:
    """One of Nanjing's 12 districts (江北新区 included) and its platform."""

    code: str
    name: str
    short_name: str
    platform_code: str
    platform_name: str
    synthetic_code: bool
    sort_order: int


@dataclass(frozen=True)
class InstitutionRecord:
    """One institution: hospital, MCH, community centre, district platform or other."""

    code: str
    name: str
    aliases: tuple[str, ...]
    level: str
    ownership: str
    kind: str
    district: str | None
    district_code: str | None
    city: str
    tertiary: bool
    parent_code: str | None
    upload_route: str = "district"
    note: str | None = None
    joined_on: date | None = None
    left_on: date | None = None
    sort_order: int = 0

    @property
    def data_collection(self) -> bool:
        """Whether the city platform collects this institution's data as a unit of its own."""
        return self.upload_route in ("direct", "district")

    @property
    def kind_label(self) -> str:
        """The kind in Chinese."""
        return KIND_LABELS[self.kind]


@dataclass(frozen=True)
class TelemedCentreRecord:
    """One of the five telemedicine centres and its business-centre hospital."""

    code: str
    name: str
    centre_name: str
    hub_code: str
    started_year: int
    aliases: tuple[str, ...]
    sort_order: int


@dataclass(frozen=True)
class _Index:
    by_code: dict[str, InstitutionRecord]
    by_key: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- names


# ---------------------------------------------------------------- loading


@lru_cache(maxsize=1)
def data_hash() -> str:
    """SHA-256 over the registry's data files and the loader version (changes trigger a reload)."""
    h = hashlib.sha256(LOADER_VERSION.encode())
    for name in DATA_FILES:
        h.update(name.encode())
        h.update((DATA_DIR / name).read_bytes())
    return h.hexdigest()


@lru_cache(maxsize=1)
def districts() -> list[DistrictRecord]:
    """The 12 districts in the bulletins' usual order."""
    out = []
    for i, row in enumerate(_read("districts.yaml")):
        code = str(row["code"])
        name = str(row["name"])
        out.append(
            DistrictRecord(
                code=code,
                name=name,
                short_name=str(row["short"]),
                platform_code="D" + code,
                platform_name=f"{name}卫生信息平台",
                synthetic_code=bool(row.get("synthetic", False)),
                sort_order=i,
            )
        )
    return out


def _district_maps() -> tuple[dict[str, DistrictRecord], dict[str, DistrictRecord]]:
    by_name = {d.name: d for d in districts()}
    by_code = {d.code: d for d in districts()}
    return by_name, by_code


def _institution(row: dict[str, Any], *, kind: str, defaults: dict[str, Any]) -> InstitutionRecord:
    by_name, _ = _district_maps()
    values = {**defaults, **row}
    district_name = values.get("district")
    district = by_name.get(district_name) if district_name else None
    if district_name and district is None:
        raise ValueError(f"{values['code']}: unknown district {district_name!r}")
    level = str(values.get("level", "未定级"))
    return InstitutionRecord(
        code=str(values["code"]),
        name=str(values["name"]),
        aliases=_aliases(values.get("aliases")),
        level=level,
        ownership=str(values.get("ownership", "其他")),
        kind=str(values.get("kind", kind)),
        district=district.name if district else None,
        district_code=district.code if district else None,
        city=str(values.get("city", CITY)),
        tertiary=level == "三级",
        parent_code=values.get("parent"),
        upload_route=str(values.get("upload", "district" if district else "none")),
        note=values.get("note"),
        joined_on=values.get("joined_on"),
        left_on=values.get("left_on"),
    )


def _build_institutions() -> list[InstitutionRecord]:
    raw = _read("institutions.yaml")
    out: list[InstitutionRecord] = []
    for d in districts():
        aliases = tuple(t.format(name=d.name) for t in PLATFORM_ALIAS_TEMPLATES)
        out.append(
            InstitutionRecord(
                code=d.platform_code,
                name=d.platform_name,
                aliases=aliases,
                level="未定级",
                ownership="区属",
                kind="district_platform",
                district=d.name,
                district_code=d.code,
                city=CITY,
                tertiary=False,
                parent_code=None,
                upload_route="direct",
                note="区域卫生信息平台：汇集本区社区卫生服务中心和区属医疗机构的数据后上传市平台",
            )
        )
    for row in raw["hospitals"]:
        out.append(_institution(row, kind="hospital", defaults={}))
    for row in raw["mch_stations"]:
        out.append(_institution(row, kind="mch", defaults={"ownership": "区属"}))
    by_name, _ = _district_maps()
    for district_name, streets in raw["community_centres"].items():
        district = by_name[district_name]
        for seq, street in enumerate(streets, start=1):
            name = f"{district.name}{street}社区卫生服务中心"
            out.append(
                InstitutionRecord(
                    code=f"C{district.code}{seq:02d}",
                    name=name,
                    aliases=(f"{street}社区卫生服务中心",),
                    level="社区",
                    ownership="区属",
                    kind="community_health_centre",
                    district=district.name,
                    district_code=district.code,
                    city=CITY,
                    tertiary=False,
                    parent_code=None,
                )
            )
    for row in raw["others"]:
        out.append(_institution(row, kind="other", defaults={}))
    cities = {c.name for c in metro_cities()}
    for row in raw["metro"]:
        if row["city"] not in cities:
            raise ValueError(f"{row['code']}: {row['city']} is not a metropolitan-area city")
        out.append(_institution(row, kind="hospital", defaults={"ownership": "其他", "upload": "none"}))
    for row in raw["remote"]:
        out.append(_institution(row, kind="hospital", defaults={"ownership": "其他", "upload": "none"}))
    district_order = {d.code: d.sort_order for d in districts()}

    def order(r: InstitutionRecord) -> tuple[int, int, int, str]:
        outside = 0 if r.city == CITY else (1 if r.code.startswith("M") else 2)
        return (outside, district_order.get(r.district_code or "", 99), _KIND_ORDER[r.kind], r.code)

    ranked = sorted(out, key=order)
    return [_with_sort(r, i) for i, r in enumerate(ranked)]


def _with_sort(r: InstitutionRecord, i: int) -> InstitutionRecord:
    return replace(r, sort_order=i)


def _validate(records: list[InstitutionRecord]) -> dict[str, str]:
    """Check codes, enums, parents and name uniqueness; return the key → code index."""
    codes: set[str] = set()
    keys: dict[str, str] = {}
    for r in records:
        if r.code in codes:
            raise ValueError(f"duplicate institution code {r.code}")
        codes.add(r.code)
        if r.level not in LEVELS or r.ownership not in OWNERSHIPS or r.kind not in KINDS:
            raise ValueError(f"{r.code}: bad level/ownership/kind {r.level}/{r.ownership}/{r.kind}")
        if r.upload_route not in UPLOAD_ROUTES:
            raise ValueError(f"{r.code}: bad upload route {r.upload_route}")
        for name in (r.name, *r.aliases):
            key = normalize_name(name)
            owner = keys.get(key)
            if owner is not None and owner != r.code:
                raise ValueError(f"name {name!r} of {r.code} is already used by {owner}")
            keys[key] = r.code
    for r in records:
        if r.parent_code is not None and r.parent_code not in codes:
            raise ValueError(f"{r.code}: unknown parent {r.parent_code}")
    return keys


@lru_cache(maxsize=1)
def _index() -> _Index:
    records = _build_institutions()
    keys = _validate(records)
    return _Index(by_code={r.code: r for r in records}, by_key=keys)


def institutions() -> list[InstitutionRecord]:
    """Every institution in the registry (parents before their branches; grouped by district)."""
    records = list(_index().by_code.values())
    # parents first, so rows can be inserted in this order under an immediate foreign key
    return sorted(records, key=lambda r: (r.parent_code is not None, r.sort_order))


def institution_aliases(record: InstitutionRecord) -> list[str]:
    """The record's aliases without those that normalise to its name or to an earlier alias."""
    seen = {normalize_name(record.name)}
    out = []
    for alias in record.aliases:
        key = normalize_name(alias)
        if key not in seen:
            seen.add(key)
            out.append(alias)
    return out


def get(code: str) -> InstitutionRecord | None:
    """The institution with this code, or None."""
    return _index().by_code.get(normalize_code(code))


def resolve_name(name: str) -> InstitutionRecord | None:
    """The institution a name (canonical, alias or bulletin spelling) stands for, or None."""
    index = _index()
    code = normalize_code(name)
    if code in index.by_code:
        return index.by_code[code]
    for key in candidate_keys(name):
        owner = index.by_key.get(key)
        if owner is not None:
            return index.by_code[owner]
    return None


@lru_cache(maxsize=1)
def telemed_centres() -> list[TelemedCentreRecord]:
    """The five telemedicine centres."""
    out = []
    for i, r in enumerate(_read("telemed.yaml")):
        if get(str(r["hub"])) is None:
            raise ValueError(f"telemed centre {r['code']}: unknown hub {r['hub']}")
        out.append(
            TelemedCentreRecord(
                code=str(r["code"]),
                name=str(r["name"]),
                centre_name=str(r["centre"]),
                hub_code=str(r["hub"]),
                started_year=int(r["started"]),
                aliases=_aliases(r.get("aliases")),
                sort_order=i,
            )
        )
    return out


def district_by(code_or_name: str) -> DistrictRecord | None:
    """The district with this code, name ("江宁区") or short name ("江宁"), or None."""
    text = normalize_name(code_or_name)
    for d in districts():
        if text in (d.code, normalize_name(d.name), normalize_name(d.short_name), d.platform_code.lower()):
            return d
    return None
