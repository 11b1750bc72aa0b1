"""The Task state machine shared by the five centres, and turnaround-time arithmetic (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rhip.errors import Conflict, Invalid

# FHIR Task.status names for our states (in_progress is FHIR's "in-progress")
FHIR_STATUS = {
    "requested": "requested",
    "accepted": "accepted",
    "in_progress": "in-progress",
    "completed": "completed",
    "rejected": "rejected",
    "cancelled": "cancelled",
}
LABELS = {
    "requested": "待接收",
    "accepted": "已接收",
    "in_progress": "诊断中",
    "completed": "已报告",
    "rejected": "已拒绝",
    "cancelled": "已取消",
}
ALLOWED: dict[str, frozenset[str]] = {
    "requested": frozenset({"accepted", "rejected", "cancelled"}),
    "accepted": frozenset({"in_progress", "rejected", "cancelled"}),
    "in_progress": frozenset({"completed", "cancelled"}),
    "completed": frozenset(),
    "rejected": frozenset(),
    "cancelled": frozenset(),
}
NEEDS_REASON = frozenset({"rejected", "cancelled"})


def check_transition(current: str, target: str, reason: str | None) -> None:
    """Refuse an illegal move (Conflict, 409) or a rejection/cancellation without a reason (Invalid)."""
    if target not in ALLOWED:
        raise Invalid(f"未知的任务状态：{target}", code="bad-status")
    if target not in ALLOWED[current]:
        raise Conflict(
            f"任务状态“{LABELS[current]}”不能变为“{LABELS[target]}”",
            code="illegal-transition",
            current=current,
            target=target,
        )
    if target in NEEDS_REASON and not (reason and reason.strip()):
        raise Invalid(f"“{LABELS[target]}”必须说明原因", code="reason-required")


@dataclass(frozen=True)
class Tat:
    """Turnaround of one centre and service type: count, median and p90 (minutes), limit, overdue."""

    centre_code: str
    service_type: str
    label: str
    count: int
    median: float | None
    p90: float | None
    limit_minutes: int
    overdue: int

    @property
    def overdue_rate(self) -> float | None:
        """Share of reports later than the limit."""
        return self.overdue / self.count if self.count else None


def median(values: Sequence[float]) -> float | None:
    """The median (mean of the two middle values for an even count)."""
    s = sorted(values)
    n = len(s)
    if not n:
        return None
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2


def p90(values: Sequence[float]) -> float | None:
    """The 90th percentile by the nearest-rank rule: the ⌈0.9·n⌉-th smallest value."""
    s = sorted(values)
    if not s:
        return None
    return s[max(1, math.ceil(0.9 * len(s))) - 1]


def summarise(
    centre_code: str, service_type: str, label: str, minutes: Sequence[float], limit_minutes: int
) -> Tat:
    """TAT figures of the completed requests' durations in minutes."""
    return Tat(
        centre_code=centre_code,
        service_type=service_type,
        label=label,
        count=len(minutes),
        median=median(minutes),
        p90=p90(minutes),
        limit_minutes=limit_minutes,
        overdue=sum(1 for m in minutes if m > limit_minutes),
    )
