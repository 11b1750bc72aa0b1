"""Calibration targets: each uploading institution's figures for a month, scaled, from the seed tables."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rhip import months

DATA_DIR = Path(__file__).with_name("data")
FEN_PER_QIANYUAN = 100_000


@dataclass(frozen=True)
class Target:
    """What one institution uploads in the month (already scaled); revenues in integer fen."""

    name: str  # as printed in the bulletin
    kind: str  # "hospital" or "district"
    uploads: int  # 定时数据上传量: every row of every table it sends
    upload_days: int  # days with real-time data
    forms: int | None  # real-time tables with data (x of x/N); None = every real-time table
    forms_of: int | None  # N of x/N as printed
    visits: int  # 门急诊人次
    visit_revenue: int  # 门急诊收入, fen
    discharges: int  # 出院人次
    inpatient_revenue: int  # 住院收入, fen
    revenue_exact: bool  # whether the seed printed the revenues (otherwise estimated)
    visit_upload_rate: float | None = None  # 上传率（与卫统对比）, percent, where the seed prints it
    discharge_upload_rate: float | None = None


def seeded_months() -> list[str]:
    """Months that have a calibration CSV, oldest first."""
    return sorted(p.stem.removeprefix("calibration_") for p in DATA_DIR.glob("calibration_*.csv"))


@cache
def seed_rows(month: str) -> tuple[dict[str, str], ...]:
    """The raw rows of one month's calibration CSV."""
    with (DATA_DIR / f"calibration_{month}.csv").open(encoding="utf-8", newline="") as f:
        return tuple(csv.DictReader(f))


def source_month(month: str) -> str:
    """The seeded month a month is calibrated to: itself, else the nearest one (later on a tie)."""
    seeded = seeded_months()
    if month in seeded:
        return month
    at = months.index(month)
    return min(seeded, key=lambda s: (abs(months.index(s) - at), -months.index(s)))


def _int(cell: str) -> int:
    cell = cell.strip()
    return int(float(cell)) if cell and cell not in {"/", "NA"} else 0


def _float(cell: str) -> float | None:
    cell = cell.strip()
    return float(cell) if cell and cell not in {"/", "NA"} else None


@cache
def _fee_per_visit() -> tuple[float, float]:
    """City-wide 千元 per outpatient visit and per discharge in the latest month that prints revenue."""
    for month in reversed(seeded_months()):
        rows = [r for r in seed_rows(month) if r["visit_revenue"]]
        if rows:
            v = sum(_int(r["visits"]) for r in rows if _float(r["visit_revenue"]) is not None)
            vr = sum(_float(r["visit_revenue"]) or 0.0 for r in rows)
            d = sum(_int(r["discharges"]) for r in rows if _float(r["inpatient_revenue"]) is not None)
            dr = sum(_float(r["inpatient_revenue"]) or 0.0 for r in rows)
            return vr / max(v, 1), dr / max(d, 1)
    return 0.3, 15.0


def targets(month: str, scale: float) -> list[Target]:
    """Every institution row of the month's (or nearest month's) seed table, scaled.

    Counts are round(scale × figure) and revenues round(scale × figure, 2) 千元, both after
    multiplying by days(month)/days(seed month) when the month borrows another month's table.
    """
    src = source_month(month)
    ratio = months.days_in(month) / months.days_in(src)
    f = scale * ratio
    per_visit, per_discharge = _fee_per_visit()
    out: list[Target] = []
    for r in seed_rows(src):
        forms, forms_of = None, None
        if r["forms"]:
            x, n = r["forms"].split("/")
            forms, forms_of = int(x), int(n)
        visits = round(f * _int(r["visits"]))
        discharges = round(f * _int(r["discharges"]))
        vr, ir = _float(r["visit_revenue"]), _float(r["inpatient_revenue"])
        exact = bool(r["visit_revenue"])
        if not r["visit_revenue"]:  # the seed has no revenue columns: estimate from fees per visit
            vr = _int(r["visits"]) * per_visit
            ir = _int(r["discharges"]) * per_discharge
        days = _int(r["upload_days"])
        if ratio != 1.0:
            days = min(months.days_in(month), round(days * ratio))
        out.append(
            Target(
                name=r["name"],
                kind=r["kind"],
                uploads=round(f * _int(r["uploads"])),
                upload_days=days,
                forms=forms,
                forms_of=forms_of,
                visits=visits,
                visit_revenue=_fen(f, vr) if visits else 0,
                discharges=discharges,
                inpatient_revenue=_fen(f, ir) if discharges else 0,
                revenue_exact=exact,
                visit_upload_rate=_float(r["visit_upload_rate"]),
                discharge_upload_rate=_float(r["discharge_upload_rate"]),
            )
        )
    return out


def _fen(f: float, qianyuan: float | None) -> int:
    """round(f × 千元, 2) expressed in fen."""
    if qianyuan is None:
        return 0
    return round(round(f * qianyuan, 2) * FEN_PER_QIANYUAN)
