"""The hotline's time-driven job: the SLA check, run by `rhip hotline sla --every SECONDS` (or cron).

A run fixes its instant, then works through the passes (breach, 75%, 50%) in chunks of at most `chunk`
orders, each chunk its own transaction: a catch-up over a million orders holds no long transaction, a run
stopped half-way is resumed by the next one, and a run repeated at the same instant changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from rhip.clock import now
from rhip.db.engine import Database
from rhip.hotline import service as svc

# (level, orders raised so far in this pass, orders the pass had to raise when the run started)
Progress = Callable[[str, int, int], None]


def run_once(
    db: Database, *, at: datetime | None = None, chunk: int = svc.CHUNK, progress: Progress | None = None
) -> dict[str, int]:
    """One SLA run in chunks, each its own transaction; the number of orders raised to each level."""
    t = at or now()
    todo: dict[str, int] = {}
    if progress is not None:
        with db.session() as s, s.begin():
            todo = svc.pending(s, at=t)
    done = dict.fromkeys(svc.PASSES, 0)
    for level in svc.PASSES:
        while True:
            with db.session() as s, s.begin():
                n = svc.raise_chunk(s, level=level, at=t, limit=chunk)
            done[level] += n
            if progress is not None:
                progress(level, done[level], max(todo.get(level, 0), done[level]))
            if n < chunk:
                break
    return done


def run_every(
    db: Database, *, seconds: float, report: Callable[[dict[str, int]], None], runs: int = 0
) -> None:
    """Run the SLA check every `seconds` (forever, or `runs` times when given)."""
    done = 0
    while runs <= 0 or done < runs:
        started = time.monotonic()
        report(run_once(db))
        done += 1
        if runs <= 0 or done < runs:
            time.sleep(max(0.0, seconds - (time.monotonic() - started)))
