"""The sold-out memory: a slot found full is answered "full" from memory, on the event loop, without a
thread or a database round trip, for a short while.

Keyed by (database engine, slot, tranche) → (until when, the idempotency keys of every booking the slot
has had when it was found full): a retry of one of those bookings still goes to the database, which
answers it with that booking. Bounded (SOLD_OUT_MAX); forgetting is always safe. On PostgreSQL the
memory lives longer while the place-return listener (pgbatch) is live: every place that comes back, in
any process, is forgotten at once (forget_full).
"""

from __future__ import annotations

import time as _time
from collections.abc import Iterable

from sqlalchemy.orm import Session

from rhip.booking.common import TRANCHES

# (database engine, slot, tranche) → (until when the slot is answered "full" from memory, the
# idempotency keys of every booking the slot has had when it was found full). The engine in the key
# keeps two databases in one process (the tests) apart.
_SOLD_OUT: dict[tuple[int, int, str], tuple[float, frozenset[str]]] = {}
# slots remembered at most: each holds its bookings' keys, and a worker runs for days
SOLD_OUT_MAX = 10_000
SOLD_OUT_TTL = 0.5  # seconds a sold-out answer is served from memory (a cancellation shows up after this)


def full_in_memory(db: int, slot_id: int, tranche: str, key: str | None) -> bool:
    """Whether the slot was found full less than SOLD_OUT_TTL ago and this is no retry of its bookings."""
    # a retry of one of the slot's bookings goes to the database, which answers it with that booking
    hit = _SOLD_OUT.get((db, slot_id, tranche))
    if hit is None:
        return False
    if hit[0] <= _time.monotonic():
        _SOLD_OUT.pop((db, slot_id, tranche), None)
        return False
    return key is None or key not in hit[1]


def remember_full(
    db: int, slot_id: int, tranche: str, keys: Iterable[str | None], ttl: float | None = None
) -> None:
    """Answer the slot's tranche "full" from memory for `ttl` (SOLD_OUT_TTL), except retries of these keys."""
    t = _time.monotonic()
    if len(_SOLD_OUT) >= SOLD_OUT_MAX:
        # bounded: drop what has expired, and everything if that is not enough (forgetting is always safe)
        for k in [k for k, (until, _keys) in _SOLD_OUT.items() if until <= t]:
            del _SOLD_OUT[k]
        if len(_SOLD_OUT) >= SOLD_OUT_MAX:
            _SOLD_OUT.clear()
    until = t + (SOLD_OUT_TTL if ttl is None else ttl)
    _SOLD_OUT[(db, slot_id, tranche)] = (until, frozenset(k for k in keys if k))


def forget_full(slot_id: int | None = None) -> None:
    """Forget what this process remembers as full: one slot (every database and tranche), or all."""
    if slot_id is None:
        _SOLD_OUT.clear()
        return
    for k in [k for k in _SOLD_OUT if k[1] == slot_id]:
        _SOLD_OUT.pop(k, None)


def sold_out_in_memory(session: Session, *, slot_id: int, tranche: str = "public") -> bool:
    """Whether this process answers the slot's tranche "full" from memory right now."""
    return full_in_memory(id(session.get_bind()), slot_id, tranche, None)


def forget_slot(session: Session, slot_id: int) -> None:
    """Forget the slot (every tranche) on this session's database: a place of it has just come back."""
    db = id(session.get_bind())
    for tranche in TRANCHES:
        _SOLD_OUT.pop((db, slot_id, tranche), None)
