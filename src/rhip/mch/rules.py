"""The MCH rules that need no database: gestational age, the child examination schedule, follow-up intervals,
value ranges. Every refusal is a Chinese sentence naming the rule.
"""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import date, timedelta
from functools import cache

from rhip.errors import Invalid
from rhip.mch.models import ORANGE, RED

# 0–6 examinations: 满月 (1 month), then 4:2:2 in the first three years (3, 6, 8, 12 / 18, 24 / 30, 36
# months), then yearly to 6 (国家基本公共卫生服务规范, 0–6 岁儿童健康管理)
SCHEDULE_MONTHS: tuple[int, ...] = (1, 3, 6, 8, 12, 18, 24, 30, 36, 48, 60, 72)
UNDER3_SCHEDULE: tuple[int, ...] = tuple(m for m in SCHEDULE_MONTHS if m <= 36)
# days between follow-ups of a case under 专案管理 (this platform's rule; the 2017 规范 leaves it open)
FOLLOW_UP_DAYS = {RED: 7, ORANGE: 14, "purple": 14}
EARLY_WEEKS = 13  # 早孕: before 13 weeks of gestation
WHO_FIRST_TRIMESTER_WEEKS = 12  # SMART ANC: first contact before 12 weeks
MIN_DELIVERY_WEEKS = 20  # before 20 weeks a pregnancy ending is a miscarriage/abortion, not a delivery
MAX_WEEKS = 44
NEWBORN_VISIT_DAYS = 28
POSTPARTUM_VISIT_DAYS = 28
CHECK42_WINDOW = (35, 70)  # the 42-day check, accepted between 35 and 70 days after delivery
CERT_RE = re.compile(r"^[A-Z]\d{9}$")  # 出生医学证明编号: one letter and nine digits
OK_RANGES = {
    "systolic": (60, 250, "收缩压", "mmHg"),
    "diastolic": (30, 160, "舒张压", "mmHg"),
    "mother_weight_kg": (30, 200, "孕妇体重", "kg"),
    "haemoglobin": (30, 220, "血红蛋白", "g/L"),
    "birth_weight_g": (300, 7000, "出生体重", "g"),
    "weight_kg": (0.5, 60, "体重", "kg"),
    "length_cm": (25, 160, "身长/身高", "cm"),
    "head_cm": (20, 60, "头围", "cm"),
}


def add_months(day: date, months: int) -> date:
    """The same day `months` later (the month's last day when it has no such day)."""
    total = day.year * 12 + day.month - 1 + months
    y, m = divmod(total, 12)
    return date(y, m + 1, min(day.day, monthrange(y, m + 1)[1]))


def months_between(start: date, end: date) -> int:
    """Whole months from start to end (age in completed months)."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if add_months(start, months) > end:
        months -= 1
    return months


def gestational_week(lmp: date, day: date) -> int:
    """Completed weeks of gestation on a day, from the last menstrual period."""
    return (day - lmp).days // 7


def lmp_from(day: date, weeks: int, days: int = 0) -> date:
    """The last menstrual period implied by a gestational age on a day."""
    return day - timedelta(days=weeks * 7 + days)


def edd_from(lmp: date) -> date:
    """预产期: 280 days after the last menstrual period (Naegele)."""
    return lmp + timedelta(days=280)


def check_range(field: str, value: float | None) -> None:
    """Refuse an absurd measurement."""
    if value is None:
        return
    lo, hi, label, unit = OK_RANGES[field]
    if not lo <= float(value) <= hi:
        raise Invalid(f"{label} {value} {unit} 超出合理范围（{lo}–{hi} {unit}）", code="value-out-of-range")


def check_not_future(day: date, today: date, what: str) -> None:
    """Refuse a date after today."""
    if day > today:
        raise Invalid(f"{what} {day.isoformat()} 晚于今天", code="date-in-future")


def report_year(year: int) -> tuple[date, date]:
    """The report year named by its end: 1 October of year-1 to 30 September of year (inclusive)."""
    if not 2000 <= year <= 2100:
        raise Invalid(f"统计年度应在 2000–2100 之间：{year}", code="bad-year")
    return date(year - 1, 10, 1), date(year, 9, 30)


def year_of(day: date) -> int:
    """The report year a day belongs to."""
    return day.year + 1 if day.month >= 10 else day.year


@cache
def expected_exams(birth: date, year: int) -> int:
    """Examinations due in a report year by the under-3 schedule: scheduled age m falls in the year when the
    child was born m months before a day of it (the indicators' denominator of 3 岁以下系统管理)."""
    start, end = date(year - 1, 10, 1), date(year, 9, 30)
    return sum(1 for m in UNDER3_SCHEDULE if add_months(start, -m) <= birth <= add_months(end, -m))


def due_exams(birth: date, done_ages_days: list[int], today: date) -> list[int]:
    """Scheduled ages (months) already due by today with no examination within a month of them."""
    out = []
    for m in SCHEDULE_MONTHS:
        due = add_months(birth, m)
        if due > today:
            break
        lo, hi = (due - birth).days - 31, (add_months(birth, m + 1) - birth).days + 31
        if not any(lo <= d <= hi for d in done_ages_days):
            out.append(m)
    return out
