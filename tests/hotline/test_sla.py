"""SLA timers in working days on China's calendar, including adjusted working weekends."""

from __future__ import annotations

from datetime import date, datetime

from rhip.clock import SHANGHAI
from rhip.hotline import sla


def at(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=SHANGHAI)


def test_national_day_week_2025_and_its_working_saturday() -> None:
    # 2025: 1–8 October off; Sunday 28 September and Saturday 11 October are working days
    assert sla.is_workday(date(2025, 9, 28)) and sla.is_workday(date(2025, 10, 11))
    assert not sla.is_workday(date(2025, 10, 6)) and not sla.is_workday(date(2025, 10, 12))
    # received Tuesday 30 September: working days after it are 9 (Thu), 10 (Fri), 11 (Sat, adjusted), 13, 14
    due = sla.add_working_days(at(2025, 9, 30, 15), 5)
    assert due == at(2025, 10, 15)
    # on the plain Monday–Friday rule it would have been 7 October (wrong: a holiday)
    t = sla.timers(received=at(2025, 9, 30, 15), order_type="complaint")
    assert t.due_at == at(2025, 10, 15)
    # 50% of five working days = 2.5 days: 9 and 10 October, then noon of Saturday 11 October (a working day)
    assert t.warn50_at == at(2025, 10, 11, 12)
    # 75% = 3.75 days: 9, 10, 11, then 18:00 of Monday 13 (Sunday 12 is off)
    assert t.warn75_at == at(2025, 10, 13, 18)
    assert sla.level_at(t, at(2025, 10, 8, 23)) == "ok"
    assert sla.level_at(t, at(2025, 10, 11, 13)) == "warn50"
    assert sla.level_at(t, at(2025, 10, 14, 9)) == "warn75"
    assert sla.level_at(t, at(2025, 10, 15, 0)) == "breach"


def test_spring_festival_stops_the_clock() -> None:
    # 2025 Spring Festival: 28 January – 4 February off, Sunday 26 January and Saturday 8 February worked
    due = sla.add_working_days(at(2025, 1, 24, 10), 3)
    assert due == at(2025, 2, 6)  # 26 January (Sun, worked), 27 January, 5 February


def test_crisis_follow_up_is_24_clock_hours() -> None:
    t = sla.timers(received=at(2025, 10, 1, 22), order_type="crisis")
    assert t.due_at == at(2025, 10, 2, 22) and t.warn50_at == at(2025, 10, 2, 10)


def test_own_deadline_of_a_12345_order_is_kept() -> None:
    t = sla.timers(received=at(2025, 3, 3, 9), order_type="city_12345", due=at(2025, 3, 6, 0))
    assert t.due_at == at(2025, 3, 6)
    assert t.warn50_at == at(2025, 3, 5)  # 4 and 5 March are the limit's two working days


def test_limits_are_data() -> None:
    assert sla.limit_of("complaint").working_days == 5
    assert sla.limit_of("crisis").hours == 24 and sla.limit_of("crisis").priority == "P0"
