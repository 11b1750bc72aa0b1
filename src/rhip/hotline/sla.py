"""Work-order time limits (SLA) in working days on China's calendar, with its adjusted working weekends.

A limit of N working days starts at 00:00 (Beijing time) of the day after the order is received and ends at
24:00 of the N-th working day after it; only time on working days counts, so the 50% and 75% marks also fall
on working days (a holiday stops the clock). `chinese_calendar` knows the State Council's notices (holidays
and the weekend days that become working days, 调休上班); for a year it does not know, Monday–Friday rules.
Limits per order type are data (`data/sla.yaml`); a 12345 order that brings its own deadline keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Protocol

import chinese_calendar
import yaml

from rhip.clock import SHANGHAI
from rhip.errors import Invalid

DATA = Path(__file__).with_name("data")
DAY = 86_400.0
LEVELS = ("ok", "warn50", "warn75", "breach")
LEVEL_LABELS = {"ok": "正常", "warn50": "已过半", "warn75": "预警", "breach": "超时"}
OPEN_STATES = (
    "new",
    "assigned",
    "in_progress",
    "reopened",
    "escalated",
)  # the states in which the clock runs
# level → the mark (an order's column) whose passing raises an order to it, highest level first
MARKS = {"breach": "due_at", "warn75": "warn75_at", "warn50": "warn50_at"}


@dataclass(frozen=True)
class Limit:
    """The time limit of one order type."""

    type: str
    name: str
    priority: str
    working_days: int | None = None
    hours: int | None = None


@cache
def limits() -> dict[str, Limit]:
    """Limits per order type, from data/sla.yaml."""
    rows = yaml.safe_load((DATA / "sla.yaml").read_text(encoding="utf-8"))
    return {r["type"]: Limit(**r) for r in rows}


def limit_of(order_type: str) -> Limit:
    """The limit of an order type, or Invalid naming the known ones."""
    found = limits().get(order_type)
    if found is None:
        raise Invalid(f"未知的工单类型：{order_type}（可选：{'、'.join(limits())}）", code="bad-order-type")
    return found


@cache
def is_workday(day: date) -> bool:
    """Whether a date is a working day in China (holidays off, adjusted weekends on)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:  # a year the package has no notice for
        return day.weekday() < 5


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


def add_working_days(received: datetime, days: int) -> datetime:
    """The deadline: 24:00 of the `days`-th working day after the day `received` falls on (Beijing)."""
    day = received.astimezone(SHANGHAI).date()
    left = days
    while left > 0:
        day += timedelta(days=1)
        if is_workday(day):
            left -= 1
    return _midnight(day + timedelta(days=1))


def working_seconds(start: datetime, end: datetime) -> float:
    """Seconds between two instants that fall on working days."""
    if end <= start:
        return 0.0
    a, b = start.astimezone(SHANGHAI), end.astimezone(SHANGHAI)
    total, day = 0.0, a.date()
    while day <= b.date():
        if is_workday(day):
            lo = max(a, _midnight(day))
            hi = min(b, _midnight(day + timedelta(days=1)))
            total += max(0.0, (hi - lo).total_seconds())
        day += timedelta(days=1)
    return total


def advance(start: datetime, seconds: float) -> datetime:
    """The instant after `start` when `seconds` of working-day time have passed."""
    t = start.astimezone(SHANGHAI)
    left = seconds
    while True:
        day_end = _midnight(t.date() + timedelta(days=1))
        if is_workday(t.date()):
            room = (day_end - t).total_seconds()
            if left <= room:
                return t + timedelta(seconds=left)
            left -= room
        t = day_end


@dataclass(frozen=True)
class Timers:
    """An order's deadline and its 50% / 75% marks."""

    due_at: datetime
    warn50_at: datetime
    warn75_at: datetime


def timers(*, received: datetime, order_type: str, due: datetime | None = None) -> Timers:
    """The timers of an order: from its own deadline when it brings one, else from its type's limit."""
    lim = limit_of(order_type)
    if lim.hours is not None and due is None:  # clock hours (crisis follow-up): every hour counts
        span = timedelta(hours=lim.hours)
        return Timers(received + span, received + span / 2, received + span * 3 / 4)
    if due is None:
        assert lim.working_days is not None
        due = add_working_days(received, lim.working_days)
    if due <= received:
        raise Invalid("办理期限必须晚于受理时间", code="bad-due")
    # the clock starts at the later of receipt and 00:00 after the day of receipt
    start = max(received, _midnight(received.astimezone(SHANGHAI).date() + timedelta(days=1)))
    if due <= start:
        start = received
    total = working_seconds(start, due)
    if total <= 0:  # a deadline inside a holiday: count wall-clock time instead
        span = due - received
        return Timers(due, received + span / 2, received + span * 3 / 4)
    return Timers(due, advance(start, total * 0.5), advance(start, total * 0.75))


class Marked(Protocol):
    """Anything with the three marks: `Timers`, a work order."""

    @property
    def due_at(self) -> datetime: ...
    @property
    def warn50_at(self) -> datetime: ...
    @property
    def warn75_at(self) -> datetime: ...


def level_at(t: Marked, at: datetime) -> str:
    """The SLA level of an open order at an instant: the highest level whose mark has passed (the rule; its
    SQL form is `levels.open_level`)."""
    for level, mark in MARKS.items():
        if at >= getattr(t, mark):
            return level
    return "ok"


def next_mark(level: str) -> str | None:
    """The mark that ends a level (None for breach, which never ends)."""
    up = LEVELS.index(level) + 1
    return MARKS[LEVELS[up]] if up < len(LEVELS) else None
