"""The registry's directories besides institutions and districts: clinical departments, booking channels,
12320 hotline categories and the metropolitan-area cities (`data` re-exports them under its names)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from rhip.registry.loading import aliases_of as _aliases, normalize_name, read_data as _read

CHANNEL_GROUPS = {
    "online_12320": "12320在线预约",
    "quick": "快速预约",
    "phone": "电话预约",
    "in_clinic": "诊间预约",
    "third_party": "第三方",
    "community": "社区预约",
    "hospital_own": "医院自有途径",
}
HOTLINE_KINDS = {"call": "受理电话", "work_order": "工单"}


@dataclass(frozen=True)
class DepartmentRecord:
    """A clinical department (诊疗科目) with its official code."""

    code: str
    name: str
    parent_code: str | None
    sort_order: int


@dataclass(frozen=True)
class ChannelRecord:
    """A booking channel (预约途径) and the statistics column (group) it counts under."""

    code: str
    name: str
    group: str
    aliases: tuple[str, ...]
    sort_order: int

    @property
    def group_label(self) -> str:
        """The group in Chinese."""
        return CHANNEL_GROUPS[self.group]


@dataclass(frozen=True)
class HotlineCategoryRecord:
    """A 12320 hotline call category or work-order source."""

    code: str
    name: str
    kind: str
    unit: str
    aliases: tuple[str, ...]
    sort_order: int


@dataclass(frozen=True)
class MetroCityRecord:
    """A city of the Nanjing metropolitan area (南京都市圈) other than Nanjing."""

    code: str
    name: str
    province: str
    scope: str | None
    aliases: tuple[str, ...]
    sort_order: int


@lru_cache(maxsize=1)
def metro_cities() -> list[MetroCityRecord]:
    """The metropolitan-area cities other than Nanjing."""
    return [
        MetroCityRecord(
            code=str(row["code"]),
            name=str(row["name"]),
            province=str(row["province"]),
            scope=row.get("scope"),
            aliases=_aliases(row.get("aliases")),
            sort_order=i,
        )
        for i, row in enumerate(_read("metro_cities.yaml"))
    ]


@lru_cache(maxsize=1)
def departments() -> list[DepartmentRecord]:
    """Clinical departments with their 诊疗科目 codes (parents before sub-specialities)."""
    return [
        DepartmentRecord(code=str(r["code"]), name=str(r["name"]), parent_code=r.get("parent"), sort_order=i)
        for i, r in enumerate(_read("departments.yaml"))
    ]


@lru_cache(maxsize=1)
def channels() -> list[ChannelRecord]:
    """Booking channels in the bulletins' order."""
    out = []
    for i, r in enumerate(_read("channels.yaml")):
        if r["group"] not in CHANNEL_GROUPS:
            raise ValueError(f"channel {r['code']}: unknown group {r['group']}")
        out.append(
            ChannelRecord(
                code=str(r["code"]),
                name=str(r["name"]),
                group=str(r["group"]),
                aliases=_aliases(r.get("aliases")),
                sort_order=i,
            )
        )
    return out


def channel_aliases(record: ChannelRecord) -> list[str]:
    """The channel's aliases without those that normalise to its name or to an earlier alias."""
    seen = {normalize_name(record.name)}
    out = []
    for alias in record.aliases:
        key = normalize_name(alias)
        if key not in seen:
            seen.add(key)
            out.append(alias)
    return out


def resolve_channel(name: str) -> ChannelRecord | None:
    """The booking channel a name (or code) stands for, or None."""
    key = normalize_name(name)
    for c in channels():
        if key == c.code or key in {normalize_name(n) for n in (c.name, *c.aliases)}:
            return c
    return None


@lru_cache(maxsize=1)
def hotline_categories() -> list[HotlineCategoryRecord]:
    """12320 hotline call categories and work-order sources."""
    return [
        HotlineCategoryRecord(
            code=str(r["code"]),
            name=str(r["name"]),
            kind=str(r["kind"]),
            unit=str(r["unit"]),
            aliases=_aliases(r.get("aliases")),
            sort_order=i,
        )
        for i, r in enumerate(_read("hotline.yaml"))
    ]
