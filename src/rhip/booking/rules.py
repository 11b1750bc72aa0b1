"""Booking rules: platform defaults, per-hospital overrides, and the pure time arithmetic on them."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from rhip.clock import SHANGHAI
from rhip.errors import Invalid

PLATFORM = "*"

# session → default local start and end
SESSIONS: dict[str, tuple[time, time, str]] = {
    "am": (time(8, 0), time(12, 0), "上午"),
    "pm": (time(14, 0), time(17, 30), "下午"),
    "night": (time(18, 0), time(21, 0), "夜间"),
}
SESSION_BY_LABEL = {label: key for key, (_s, _e, label) in SESSIONS.items()}

DEFAULT_LADDER: list[dict[str, int]] = [{"count": 3, "window_days": 90, "suspend_days": 90}]


@dataclass(frozen=True)
class Rules:
    """The effective booking rules of one hospital (platform defaults where it sets none)."""

    release_days_ahead: int = 7
    release_time: str = "08:00"
    family_share_pct: int | None = None  # None: 30 for tertiary hospitals, 0 otherwise
    family_days_earlier: int = 7
    clinic_share_pct: int = 0
    cancel_cutoff_days: int = 1
    cancel_cutoff_time: str = "12:00"
    checkin_grace_minutes: int = 30
    limit_dept_day: int = 1
    limit_day: int = 2
    limit_week: int = 3
    noshow_ladder: list[dict[str, int]] = field(default_factory=lambda: list(DEFAULT_LADDER))
    prepay_minutes: int = 0
    return_delay_seconds: int = 0
    clinic_reflow_hours: int = 24  # unused 诊间 places join the public pool this long before the session
    max_people_per_phone: int = 5  # real-name people (就诊人) one mobile number may register (platform)

    def family_share(self, *, tertiary: bool) -> int:
        """Percentage of each slot reserved for signed family doctors."""
        if self.family_share_pct is not None:
            return self.family_share_pct
        return 30 if tertiary else 0

    def public_release(self, service_date: date) -> datetime:
        """When the public may start booking a day's slots (aware, Asia/Shanghai)."""
        day = service_date - timedelta(days=self.release_days_ahead)
        return datetime.combine(day, parse_hhmm(self.release_time), SHANGHAI)

    def family_release(self, service_date: date) -> datetime:
        """When signed family doctors may start booking (one week before the public by default)."""
        return self.public_release(service_date) - timedelta(days=self.family_days_earlier)

    def clinic_reflow(self, session_start: datetime) -> datetime:
        """When unused in-clinic places flow into the public pool (default 24 hours before the session)."""
        return session_start - timedelta(hours=self.clinic_reflow_hours)

    def cancel_deadline(self, service_date: date) -> datetime:
        """The last moment a resident may cancel (default 12:00 the day before)."""
        day = service_date - timedelta(days=self.cancel_cutoff_days)
        return datetime.combine(day, parse_hhmm(self.cancel_cutoff_time), SHANGHAI)


RULE_FIELDS = [f.name for f in fields(Rules)]
PLATFORM_ONLY = frozenset({"max_people_per_phone"})  # about accounts, not hospitals


def parse_hhmm(value: str) -> time:
    """'06:30' → time(6, 30), or Invalid."""
    try:
        hh, mm = value.split(":")
        return time(int(hh), int(mm))
    except (ValueError, AttributeError):
        raise Invalid(f"时间格式应为 HH:MM：{value}", code="bad-time") from None


def merge(base: Rules, overrides: dict[str, Any]) -> Rules:
    """Rules with the non-null overrides applied."""
    values = {k: v for k, v in overrides.items() if k in RULE_FIELDS and v is not None}
    return replace(base, **values)


def check(rules: Rules) -> Rules:
    """Rules whose values make sense, or Invalid naming the first bad one."""
    parse_hhmm(rules.release_time)
    parse_hhmm(rules.cancel_cutoff_time)
    if not 0 <= rules.release_days_ahead <= 90:
        raise Invalid("放号提前天数应在 0–90 之间", code="bad-rule")
    share = rules.family_share_pct
    if share is not None and not 0 <= share <= 100:
        raise Invalid("家庭医生号源比例应在 0–100 之间", code="bad-rule")
    if not 0 <= rules.clinic_share_pct <= 100 or (share or 0) + rules.clinic_share_pct > 100:
        raise Invalid("诊间号源比例应在 0–100 之间，且与家庭医生比例之和不超过 100", code="bad-rule")
    if not 0 <= rules.clinic_reflow_hours <= 24 * 14:
        raise Invalid("诊间号源回流时间应在开诊前 0–336 小时之间", code="bad-rule")
    if not 1 <= rules.max_people_per_phone <= 20:
        raise Invalid("每个手机号可绑定的就诊人数应在 1–20 之间", code="bad-rule")
    if min(rules.limit_dept_day, rules.limit_day, rules.limit_week) < 1:
        raise Invalid("预约限额至少为 1", code="bad-rule")
    for step in rules.noshow_ladder:
        if not {"count", "window_days", "suspend_days"} <= set(step) or min(step.values()) < 1:
            raise Invalid("爽约阶梯每级需要 count、window_days、suspend_days（均 ≥ 1）", code="bad-rule")
    return rules


def spread(total: int, n: int) -> list[int]:
    """`total` places spread as evenly as possible over `n` slots."""
    if n <= 0:
        return []
    return [(i + 1) * total // n - i * total // n for i in range(n)]


def split_capacity(
    capacity: int, n_slots: int, *, family_pct: int, clinic_pct: int
) -> list[tuple[int, int, int]]:
    """Each slot's (public, family, clinic) places: the shares apply to the whole session, spread evenly."""
    total = capacity * n_slots
    family = spread((total * family_pct + 50) // 100, n_slots)
    clinic = spread((total * clinic_pct + 50) // 100, n_slots)
    out = []
    for f, c in zip(family, clinic[::-1], strict=True):
        f = min(f, capacity)
        c = min(c, capacity - f)
        out.append((capacity - f - c, f, c))
    return out
