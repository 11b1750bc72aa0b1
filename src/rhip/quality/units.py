"""The reporting units of the data-collection tables (district platforms and direct hospitals) and the
tables each owes: who a month's figures are about, apart from how they are counted."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from rhip import months
from rhip.registry import catalogue, data as registry_data

HOSPITAL_KINDS = ("hospital", "mch")


def active_days(month: str, joined_on: date | None, left_on: date | None) -> int:
    """Days of the month an institution was connected: from joining to leaving, both inclusive."""
    first, last = months.day_bounds(month)
    start = max(first, joined_on) if joined_on else first
    end = min(last, left_on) if left_on else last
    return max(0, (end - start).days + 1)


@dataclass(frozen=True)
class Unit:
    """A bulletin row: a district platform or a directly connected hospital, with its member institutions."""

    code: str
    name: str
    kind: str  # "district" or "hospital"
    members: tuple[str, ...]
    joined_on: date | None = None
    left_on: date | None = None
    district: str | None = None


def required_tables(kind: str) -> list[str]:
    """规定上传表: hospitals owe the medical tables, district platforms every table of the catalogue."""
    sets = catalogue.datasets()
    if kind == "hospital":
        return [d.name for d in sets if d.category == "medical"]
    return [d.name for d in sets]


def realtime_tables() -> list[str]:
    """The real-time forms (实时数据表单)."""
    return [d.name for d in catalogue.datasets() if d.realtime]


def units(month: str) -> list[Unit]:
    """The month's reporting units: 12 district platforms, then the direct hospitals active in it."""
    first, last = months.day_bounds(month)
    records = registry_data.institutions()
    out: list[Unit] = []
    for d in registry_data.districts():
        members = [d.platform_code] + [
            r.code
            for r in records
            if r.district_code == d.code and r.upload_route == "district" and r.kind != "district_platform"
        ]
        out.append(
            Unit(code=d.platform_code, name=d.name, kind="district", members=tuple(members), district=d.name)
        )
    children: dict[str, list[str]] = defaultdict(list)
    for r in records:
        if r.upload_route == "parent" and r.parent_code:
            children[r.parent_code].append(r.code)
    for r in records:
        if r.kind not in HOSPITAL_KINDS or r.upload_route != "direct" or r.city != registry_data.CITY:
            continue
        if (r.joined_on and r.joined_on > last) or (r.left_on and r.left_on < first):
            continue
        out.append(
            Unit(
                code=r.code,
                name=r.name,
                kind="hospital",
                members=(r.code, *children.get(r.code, ())),
                joined_on=r.joined_on,
                left_on=r.left_on,
                district=r.district,
            )
        )
    return out
