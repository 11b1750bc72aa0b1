"""rhip.months: one parser for every statistics month, with a sane range."""

from __future__ import annotations

from datetime import date

import pytest

from rhip import months
from rhip.clock import SHANGHAI
from rhip.errors import Invalid


@pytest.mark.parametrize(
    "bad", ["9999-12", "0001-01", "1999-12", "2100-01", "2025-13", "2025-00", "2025-3", "x"]
)
def test_months_outside_the_range_or_malformed_are_invalid(bad: str) -> None:
    with pytest.raises(Invalid) as exc:
        months.parse(bad)
    assert exc.value.code == "bad-month"


def test_bounds_labels_and_shifts() -> None:
    assert months.parse("2000-01") == (2000, 1) and months.parse("2099-12") == (2099, 12)
    assert months.day_bounds("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    start, end = months.time_bounds("2025-12", SHANGHAI)
    assert (start.year, start.month, end.year, end.month) == (2025, 12, 2026, 1) and start.tzinfo is SHANGHAI
    assert months.label("2025-03") == "2025 年 3 月"
    assert months.shift("2025-01", -1) == "2024-12" and months.shift("2024-12", 13) == "2026-01"
    assert months.previous(date(2026, 1, 15)) == "2025-12"
    assert months.days_in("2025-02") == 28
    days = months.count_days([date(2025, 3, d) for d in range(1, 32)] + ["2025-04-01", "2025-04-02"])
    assert days == {"2025-03": 31, "2025-04": 2}
    assert months.latest(days, "2026-11") == "2025-03"  # April's two days of late uploads are no report month
    assert months.latest({"2025-04": 2}, "2026-11") == "2025-04"
    assert months.latest({}, "2026-11") == "2026-11"
