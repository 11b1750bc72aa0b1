"""Attempt throttling in the database, so every worker sees the same counts.

A key is a scope and a value (an account name, a client address, a phone number); only a hash of the
value is stored. Each failure adds one; after `free` failures in the window the key is locked for a
delay that doubles with every further failure (5 s, 10 s, 20 s, ... up to `max_delay`), or, for a
quota, until the window ends; a success clears the key. Locked keys answer 429 with Retry-After
before any password is checked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.db.engine import dialect_insert
from rhip.errors import TooManyRequests
from rhip.security.models import Throttle


@dataclass(frozen=True)
class Limit:
    """How many failures a scope allows in a window before delays begin."""

    scope: str
    free: int
    window: timedelta = timedelta(minutes=15)
    max_delay: timedelta = timedelta(minutes=15)
    first_delay: timedelta = timedelta(seconds=5)
    # hard: once `free` is spent the key stays locked until its window ends (a quota, e.g. texts a phone
    # gets in an hour); otherwise each further failure doubles the delay
    hard: bool = False


# an account: 5 wrong passwords, then 5 s, 10 s, 20 s ... 15 min; a client address serves many people
# behind one NAT (a hospital, a school), so it gets more before it slows down
ACCOUNT = Limit("acct", free=5)
ADDRESS = Limit("addr", free=30)
SIGNUP_ADDRESS = Limit("signup", free=20, window=timedelta(hours=1), hard=True)
CODE_PHONE = Limit("sms", free=5, window=timedelta(hours=1), hard=True)


def key_of(limit: Limit, value: str) -> str:
    """The stored key: the scope and a hash of the value (no account names or addresses in clear)."""
    digest = hashlib.sha256(value.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()[:48]
    return f"{limit.scope}:{digest}"


def check(session: Session, limit: Limit, value: str) -> None:
    """Raise TooManyRequests while the key is locked."""
    row = session.get(Throttle, key_of(limit, value))
    t = now()
    if row is not None and row.locked_until is not None and row.locked_until > t:
        wait = max(1, int((row.locked_until - t).total_seconds() + 0.999))
        raise TooManyRequests(f"尝试次数过多，请 {wait} 秒后再试", code="too-many-attempts", retry_after=wait)


def fail(session: Session, limit: Limit, value: str) -> bool:
    """Count one failure; True when it locks the key (the caller audits the lockout)."""
    key = key_of(limit, value)
    t = now()
    ins = dialect_insert(session, Throttle).values(key=key, failures=1, window_start=t, updated_at=t)
    session.execute(
        ins.on_conflict_do_update(
            index_elements=["key"],
            set_={"failures": Throttle.failures + 1, "updated_at": t},
        )
    )
    row = session.execute(
        select(Throttle).where(Throttle.key == key).execution_options(populate_existing=True)
    ).scalar_one()
    if row.window_start + limit.window < t and (row.locked_until is None or row.locked_until < t):
        # a quiet window has passed since the first failure: start counting afresh
        row.failures, row.window_start, row.locked_until = 1, t, None
        return False
    over = row.failures - limit.free  # 0 at the last free failure: the next attempt waits
    if over < 0:
        return False
    if limit.hard:
        row.locked_until = row.window_start + limit.window
    else:
        row.locked_until = t + min(limit.first_delay * 2 ** min(over, 20), limit.max_delay)
    return True


def clear(session: Session, limit: Limit, value: str) -> None:
    """Forget a key's failures (after a success)."""
    session.execute(delete(Throttle).where(Throttle.key == key_of(limit, value)))


def prune(session: Session) -> int:
    """Drop keys quiet for a day; returns how many."""
    result = session.execute(delete(Throttle).where(Throttle.updated_at < now() - timedelta(days=1)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
