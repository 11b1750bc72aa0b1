"""Month arithmetic for every statistics month ('YYYY-MM'): parse, bounds, labels, shifts.

One module instead of a helper per domain. A month is parsed once at the edge and must lie in a sane
range (years 2000–2099): the platform's data starts with the bulletins of the 2010s, and a month such
as 9999-12 or 0001-01 is a typing error (or a probe), not a request for an empty report.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, tzinfo

from rhip.errors import Invalid

MIN_YEAR = 2000
MAX_YEAR = 2099
PATTERN = r"^\d{4}-\d{2}$"  # for Query(pattern=...): the range itself is checked by parse()
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def parse(month: str) -> tuple[int, int]:
    """(year, month) of a 'YYYY-MM' string in 2000-01..2099-12, or Invalid (code bad-month)."""
    m = _MONTH.match(month.strip()) if isinstance(month, str) else None
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise Invalid(f"月份格式应为 YYYY-MM：{month}", code="bad-month")
    y = int(m.group(1))
    if not MIN_YEAR <= y <= MAX_YEAR:
        raise Invalid(f"月份超出范围（{MIN_YEAR}-01 至 {MAX_YEAR}-12）：{month}", code="bad-month")
    return y, int(m.group(2))


def check(month: str) -> str:
    """The month normalised ('YYYY-MM'), or Invalid."""
    y, m = parse(month)
    return f"{y:04d}-{m:02d}"


def of(day: date) -> str:
    """The month a day falls in."""
    return f"{day.year:04d}-{day.month:02d}"


def days_in(month: str) -> int:
    """Number of days of the month."""
    y, m = parse(month)
    return calendar.monthrange(y, m)[1]


def day_bounds(month: str) -> tuple[date, date]:
    """First and last day of the month (both inclusive)."""
    y, m = parse(month)
    return date(y, m, 1), date(y, m, calendar.monthrange(y, m)[1])


def time_bounds(month: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of the month in a time zone, as aware datetimes."""
    y, m = parse(month)
    return datetime(y, m, 1, tzinfo=tz), datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=tz)


def index(month: str) -> int:
    """Months since year 0 (for differences and ordering)."""
    y, m = parse(month)
    return y * 12 + m - 1


def from_index(i: int) -> str:
    """The month of an index() value."""
    return f"{i // 12:04d}-{i % 12 + 1:02d}"


def shift(month: str, n: int) -> str:
    """The month n months later (earlier when n < 0)."""
    return from_index(index(month) + n)


def previous(today: date) -> str:
    """The month before today's: the month a bulletin published now reports."""
    return shift(of(today), -1)


def label(month: str) -> str:
    """'2025 年 3 月'."""
    y, m = parse(month)
    return f"{y} 年 {m} 月"


def count_days(days: Iterable[date | str]) -> dict[str, int]:
    """Days with data per month, from the days (dates or 'YYYY-MM-DD'), oldest month first."""
    out: dict[str, int] = {}
    for d in set(days):
        m = d[:7] if isinstance(d, str) else of(d)
        out[m] = out.get(m, 0) + 1
    return dict(sorted(out.items()))


def latest(days_with_data: Mapping[str, int], fallback: str) -> str:
    """The month a dashboard opens on: the latest with data on at least half its days.

    A few stray records (late uploads in the next month, old records re-sent) do not make a month a
    reporting month; when no month is that full, the latest with any data; with none, the fallback.
    """
    full = [m for m, n in days_with_data.items() if 2 * n >= days_in(m)]
    return max(full or days_with_data, default=fallback)
