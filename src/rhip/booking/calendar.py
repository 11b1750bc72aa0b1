"""China's public-holiday calendar with 调休 (weekend days that become working days).

Built in: the State Council's notices for 2025 (国办发明电〔2024〕12号) and 2026. Clinics follow the
working calendar: regular outpatient schedules are published for working days; a hospital may still
publish a holiday clinic (节假日门诊) explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class CalendarDay:
    """One exception to the Monday–Friday rule: a holiday (休) or a swapped working day (班)."""

    day: date
    kind: str  # "holiday" or "workday"
    name: str


def _span(start: date, end: date, name: str) -> list[CalendarDay]:
    days = (end - start).days + 1
    return [CalendarDay(start + timedelta(days=i), "holiday", name) for i in range(days)]


def _work(day: date, name: str) -> CalendarDay:
    return CalendarDay(day, "workday", f"{name}调休上班")


BUILTIN: list[CalendarDay] = [
    # 2025
    *_span(date(2025, 1, 1), date(2025, 1, 1), "元旦"),
    *_span(date(2025, 1, 28), date(2025, 2, 4), "春节"),
    _work(date(2025, 1, 26), "春节"),
    _work(date(2025, 2, 8), "春节"),
    *_span(date(2025, 4, 4), date(2025, 4, 6), "清明节"),
    *_span(date(2025, 5, 1), date(2025, 5, 5), "劳动节"),
    _work(date(2025, 4, 27), "劳动节"),
    *_span(date(2025, 5, 31), date(2025, 6, 2), "端午节"),
    *_span(date(2025, 10, 1), date(2025, 10, 8), "国庆节、中秋节"),
    _work(date(2025, 9, 28), "国庆节"),
    _work(date(2025, 10, 11), "国庆节"),
    # 2026
    *_span(date(2026, 1, 1), date(2026, 1, 3), "元旦"),
    _work(date(2026, 1, 4), "元旦"),
    *_span(date(2026, 2, 15), date(2026, 2, 23), "春节"),
    _work(date(2026, 2, 14), "春节"),
    _work(date(2026, 2, 28), "春节"),
    *_span(date(2026, 4, 4), date(2026, 4, 6), "清明节"),
    *_span(date(2026, 5, 1), date(2026, 5, 5), "劳动节"),
    _work(date(2026, 5, 9), "劳动节"),
    *_span(date(2026, 6, 19), date(2026, 6, 21), "端午节"),
    *_span(date(2026, 9, 25), date(2026, 9, 27), "中秋节"),
    *_span(date(2026, 10, 1), date(2026, 10, 7), "国庆节"),
    _work(date(2026, 9, 20), "国庆节"),
    _work(date(2026, 10, 10), "国庆节"),
]

_BY_DAY: dict[date, CalendarDay] = {d.day: d for d in BUILTIN}


def builtin_day(day: date) -> CalendarDay | None:
    """The built-in exception for a day, if any."""
    return _BY_DAY.get(day)


def is_working_day(day: date, overrides: dict[date, str] | None = None) -> bool:
    """Whether a day is a working day (调休 swaps included; `overrides` maps day → holiday/workday)."""
    kind = (overrides or {}).get(day)
    if kind is None:
        known = _BY_DAY.get(day)
        kind = known.kind if known else None
    if kind == "holiday":
        return False
    if kind == "workday":
        return True
    return day.weekday() < 5


def working_days(start: date, end: date, overrides: dict[date, str] | None = None) -> list[date]:
    """Working days from start to end inclusive."""
    out: list[date] = []
    d = start
    while d <= end:
        if is_working_day(d, overrides):
            out.append(d)
        d += timedelta(days=1)
    return out
