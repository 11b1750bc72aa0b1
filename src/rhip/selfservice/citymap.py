"""The city map's figures per district: institutions (registry), terminals in service (self-service),
bookings made in the month (booking service). Telemedicine coverage joins when the telemed domain exists
(`rhip.telemed.stats.coverage_by_district(session, month=)`); until then it is not offered."""

from __future__ import annotations

import importlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip.booking import stats as booking_stats
from rhip.registry import data as reg_data
from rhip.selfservice import stats
from rhip.selfservice.models import Terminal

FIGURES = {
    "institutions": "医疗卫生机构数",
    "terminals": "在用自助终端台数",
    "bookings": "当月预约挂号量",
    "telemed": "远程医疗接入机构数",
}
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


def _telemed() -> Any | None:
    try:
        module = importlib.import_module("rhip.telemed.stats")
    except ImportError:
        return None
    return getattr(module, "coverage_by_district", None)


def available() -> dict[str, str]:
    """The figures the map can shade by on this installation."""
    return {k: v for k, v in FIGURES.items() if k != "telemed" or _telemed() is not None}


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
        out: Counter[str] = Counter()
        for (hosp, _chan), n in booking_stats.counts_by_hospital_channel(session, month=month).items():
            inst = reg_data.get(hosp)
            if inst is not None and inst.district:
                out[inst.district] += n
        return dict(out)
    if figure == "telemed":
        fn = _telemed()
        if fn is not None:
            return dict(fn(session, month=month))
    return {}


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
