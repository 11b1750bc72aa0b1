"""A controllable clock: every time-dependent job asks it for 'now', so tests can move time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
_frozen: datetime | None = None


def now() -> datetime:
    """The current time, timezone-aware (UTC), or the frozen time in tests."""
    return _frozen if _frozen is not None else datetime.now(UTC)


def local_now() -> datetime:
    """The current time in Asia/Shanghai, for what a person sees."""
    return now().astimezone(SHANGHAI)


@contextmanager
def frozen(at: datetime) -> Iterator[None]:
    """Freeze `now()` at a timezone-aware instant inside the block."""
    global _frozen
    if at.tzinfo is None:
        raise ValueError("frozen() needs a timezone-aware datetime")
    previous, _frozen = _frozen, at.astimezone(UTC)
    try:
        yield
    finally:
        _frozen = previous
