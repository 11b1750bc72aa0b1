"""The booking demo's plan: the month's synthetic bookings, calibrated to the bulletin's per-hospital
booking table (data/calibration_<month>.csv) at a scale — which hospital, column (线上, 快速, 诊间, 第三方,
社区), channel, day, moment and person each booking has. `demo.py` makes them through the service."""

from __future__ import annotations

import csv
import math
import random
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from rhip import months
from rhip.booking import calendar as cal
from rhip.clock import SHANGHAI
from rhip.registry import data as reg_data, idnumber

DATA = Path(__file__).with_name("data")
COLUMNS = ("online_12320", "quick", "in_clinic", "third_party")
# 2025-03 线上预约情况: the online column split by platform, the third-party column by platform
ONLINE_SPLIT = {"jkn_app": 7657, "wechat_12320": 5581, "web_12320": 271}
THIRD_SPLIT = {"wdnj_app": 5493}
COMMUNITY_SHARE = 0.02  # of online bookings made instead by family doctors (12320 社区预约)
CANCEL_RATE = 0.04
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国玉兰志强海燕红梅文博子涵梓萱浩然欣怡"
AREAS = ["320102", "320104", "320105", "320106", "320111", "320113", "320114", "320115", "320116", "320117"]
METRO_AREAS = ["340202", "340503", "321102", "321002", "341103", "341702", "320802"]
DEPT_BY_WORD = [
    ("口腔", "12"),
    ("儿童", "07"),
    ("妇幼", "05"),
    ("眼科", "10"),
    ("皮肤", "13"),
    ("肿瘤", "19"),
    ("中医", "50"),
    ("中西医", "52"),
    ("职业病", "23"),
]


@dataclass
class Plan:
    """One synthetic booking to make."""

    key: str
    hospital: str
    department: str
    column: str
    channel: str
    day: date
    at: datetime
    person: str
    name: str
    cancel: bool = False


def calibration(month: str = "2025-03") -> list[dict[str, Any]]:
    """The bulletin's per-hospital booking table (resolved to registry codes)."""
    path = DATA / f"calibration_{month}.csv"
    if not path.exists():
        path = DATA / "calibration_2025-03.csv"
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    rows = []
    for r in csv.DictReader(lines):
        rows.append({"name": r["name"], "code": r["code"], **{c: int(r[c]) for c in COLUMNS}})
    return rows


def _largest_remainder(weights: dict[Any, float], total: int) -> dict[Any, int]:
    """Integers proportional to weights that sum to exactly `total`."""
    s = sum(weights.values())
    if total <= 0 or s <= 0:
        return dict.fromkeys(weights, 0)
    raw = {k: w * total / s for k, w in weights.items()}
    out = {k: math.floor(v) for k, v in raw.items()}
    short = total - sum(out.values())
    for k in sorted(raw, key=lambda k: raw[k] - out[k], reverse=True)[:short]:
        out[k] += 1
    return out


def targets(month: str, scale: float) -> dict[tuple[str, str], int]:
    """Bookings to make per (hospital, column): each column's total is round(total × scale)."""
    rows = calibration(month)
    out: dict[tuple[str, str], int] = {}
    for column in COLUMNS:
        weights = {r["code"]: float(r[column]) for r in rows}
        total = round(sum(weights.values()) * scale)
        for code, n in _largest_remainder(weights, total).items():
            if n:
                out[(code, column)] = n
    return out


def _department(code: str) -> str:
    inst = reg_data.get(code)
    name = inst.name if inst else ""
    for word, dept in DEPT_BY_WORD:
        if word in name:
            return dept
    return "03"


def _person(rng: random.Random, seen: set[str]) -> tuple[str, str]:
    while True:
        area = rng.choice(METRO_AREAS if rng.random() < 0.3 else AREAS)
        born = date(rng.randint(1940, 2020), rng.randint(1, 12), rng.randint(1, 28))
        pid = idnumber.make_id(area, born, rng.randint(0, 999))
        if pid not in seen:
            seen.add(pid)
            return pid, rng.choice(SURNAMES) + rng.choice(GIVEN) + (
                rng.choice(GIVEN) if rng.random() < 0.7 else ""
            )


def plan_month(month: str, scale: float, seed: int = 42) -> list[Plan]:
    """Every synthetic booking of the month, in the order they are made."""
    rng = random.Random(seed)
    start, end = months.time_bounds(month, SHANGHAI)
    days = cal.working_days(start.date(), (end - timedelta(days=1)).date())
    late_days = [d for d in days if d.day >= 15]
    seen: set[str] = set()
    plans: list[Plan] = []
    tgt = targets(month, scale)
    online_total = sum(n for (_h, c), n in tgt.items() if c == "online_12320")
    community = round(online_total * COMMUNITY_SHARE)
    tertiary_online = [
        (h, n)
        for (h, c), n in tgt.items()
        if c == "online_12320" and reg_data.get(h) and reg_data.get(h).tertiary  # type: ignore[union-attr]
    ]
    moved: Counter[str] = Counter()
    for h, n in sorted(tertiary_online, key=lambda x: -x[1]):
        take = min(n - 1, community - sum(moved.values()))
        if take > 0:
            moved[h] = take
    platforms = _largest_remainder(
        {k: float(v) for k, v in ONLINE_SPLIT.items()}, online_total - sum(moved.values())
    )
    online_channels = [c for c, n in platforms.items() for _ in range(n)]
    rng.shuffle(online_channels)
    centres = [i.code for i in reg_data.institutions() if i.kind == "community_health_centre"]
    i = 0
    for (hosp, column), n in sorted(tgt.items()):
        n_community = moved[hosp] if column == "online_12320" else 0
        dept = _department(hosp)
        for k in range(n):
            if column == "online_12320" and k < n_community:
                col, channel = "community", rng.choice(centres)
            elif column == "online_12320":
                col, channel = column, online_channels.pop()
            else:
                col = column
                channel = {"quick": "quick_12320", "in_clinic": "in_clinic", "third_party": "wdnj_app"}[
                    column
                ]
            day = rng.choice(late_days if col == "community" else days)
            first = datetime.combine(day, datetime.min.time(), SHANGHAI) + timedelta(hours=7)
            if col == "community":  # the family-doctor week: after the family release, before the public one
                lo = datetime.combine(day - timedelta(days=14), datetime.min.time(), SHANGHAI) + timedelta(
                    hours=9
                )
                hi = lo + timedelta(days=6)
            elif col == "in_clinic":  # booked in the doctor's room at an earlier visit, before the
                # unused in-clinic places flow to the public (rule clinic_reflow_hours, 24 h)
                lo, hi = first - timedelta(days=14), first - timedelta(hours=26)
            else:
                lo = datetime.combine(day - timedelta(days=7), datetime.min.time(), SHANGHAI) + timedelta(
                    hours=8
                )
                hi = first
            lo = max(lo, start)
            at = lo + timedelta(seconds=rng.randint(0, max(int((hi - lo).total_seconds()), 1)))
            pid, name = _person(rng, seen)
            plans.append(
                Plan(
                    key=f"demo-{month}-{i}",
                    hospital=hosp,
                    department=dept,
                    column=col,
                    channel=channel,
                    day=day,
                    at=at,
                    person=pid,
                    name=name,
                    cancel=col != "in_clinic" and rng.random() < CANCEL_RATE,
                )
            )
            i += 1
    plans.sort(key=lambda p: (p.at, p.key))
    return plans
