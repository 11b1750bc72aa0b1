"""The city map's figures per district: institutions (registry), terminals in service and physical cards
issued in the month (this domain), bookings made in the month (booking), and telemedicine coverage — the
institutions and sites located in the district connected to any remote-diagnosis centre on the month's last
day (read through `rhip.telemed.service.get_all_connections`; one site connected to several centres counts
once)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip import months
from rhip.booking import stats as booking_stats
from rhip.clock import SHANGHAI
from rhip.registry import data as reg_data
from rhip.selfservice import stats
from rhip.selfservice.cards import card_counts
from rhip.selfservice.models import Terminal
from rhip.telemed import service as telemed

FIGURES = {
    "institutions": "医疗卫生机构数",
    "terminals": "在用自助终端台数",
    "bookings": "当月预约挂号量",
    "cards": "当月发卡量",
    "telemed": "远程医疗接入机构数",
}
# the columns of the per-district table beside the map (every figure but bookings, which has its pages)
TABLE = ("institutions", "terminals", "cards", "telemed")
KIND_LABELS = {
    "hospital": "医院",
    "mch": "妇幼保健机构",
    "community_health_centre": "社区卫生服务中心",
    "other": "其他",
}


@dataclass(frozen=True)
class DistrictRow:
    """One district on the map page: its figure and its institutions."""

    code: str
    name: str
    value: int
    institutions: list[Any]


def available() -> dict[str, str]:
    """The figures the map can shade by."""
    return dict(FIGURES)


def _nanjing() -> list[Any]:
    return [i for i in reg_data.institutions() if i.district and i.kind in KIND_LABELS and i.left_on is None]


def values(session: Session, *, figure: str, month: str) -> dict[str, int]:
    """The chosen figure per district name."""
    if figure == "institutions":
        return dict(Counter(i.district for i in _nanjing()))
    if figure == "terminals":
        rows = session.execute(
            select(Terminal.district_code, func.count())
            .where(*stats.in_service_during(month))
            .group_by(Terminal.district_code)
        ).all()
        names = {d.code: d.name for d in reg_data.districts()}
        return {names.get(code or "", code or "未知"): int(n) for code, n in rows}
    if figure == "bookings":
        counts = booking_stats.counts_by_hospital_channel(session, month=month)
        return _by_district((hosp, n) for (hosp, _chan), n in counts.items())
    if figure == "cards":
        start, end = months.time_bounds(month, SHANGHAI)
        by_inst = card_counts(session, start=start, end=end)
        return _by_district(by_inst.items())
    if figure == "telemed":
        return telemed_by_district(session, month=month)
    return {}


def _by_district(items: Any) -> dict[str, int]:
    out: Counter[str] = Counter()
    for code, n in items:
        inst = reg_data.get(code)
        if inst is not None and inst.district:
            out[inst.district] += n
    return dict(out)


def telemed_by_district(session: Session, *, month: str) -> dict[str, int]:
    """Per Nanjing district: the institutions and sites located there that are connected to a telemedicine
    centre on the month's last day (each counted once, however many centres it is connected to)."""
    _first, last = months.day_bounds(month)
    sites: dict[str, set[str]] = {}
    for c in telemed.get_all_connections(session, on=last):
        if c.city == telemed.NANJING and c.district:
            sites.setdefault(c.district, set()).add(c.site_key)
    return {district: len(keys) for district, keys in sites.items()}


def table(session: Session, *, month: str) -> list[dict[str, Any]]:
    """Every district (江北新区 included) with each TABLE figure, then 合计 (the rows' sums)."""
    vals = {f: values(session, figure=f, month=month) for f in TABLE}
    counts = [{f: int(vals[f].get(d.name, 0)) for f in TABLE} for d in reg_data.districts()]
    total = {f: sum(c[f] for c in counts) for f in TABLE}
    rows: list[dict[str, Any]] = [
        {"code": d.code, "name": d.name, **c} for d, c in zip(reg_data.districts(), counts, strict=True)
    ]
    return [*rows, {"code": "", "name": "合计", **total}]


def district_rows(session: Session, *, figure: str, month: str) -> list[DistrictRow]:
    """Every district (江北新区 included) with its figure and institutions, in the registry's order."""
    vals = values(session, figure=figure, month=month)
    by_district: dict[str, list[Any]] = {}
    for inst in _nanjing():
        by_district.setdefault(inst.district, []).append(inst)
    return [
        DistrictRow(d.code, d.name, int(vals.get(d.name, 0)), by_district.get(d.name, []))
        for d in reg_data.districts()
    ]
