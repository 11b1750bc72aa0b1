"""The hotline's time-driven job: the SLA check, run by `rhip hotline sla --every SECONDS` (or cron).

A run fixes its instant and its window (from the last completed run, sla_job.window_start), then announces
the marks crossed — passes breach, 75%, 50% — in chunks of at most `chunk` orders, each chunk its own
transaction: a catch-up over a million orders holds no long transaction, a run stopped half-way is resumed
by the next one (its window starts where the last *completed* run was), and a run repeated at the same
instant writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from rhip.clock import now
from rhip.db.engine import Database
from rhip.hotline import service as svc


def run_once(
    db: Database,
    *,
    at: datetime | None = None,
    chunk: int = svc.CHUNK,
    progress: svc.Progress | None = None,
    totals: bool = True,
) -> dict[str, int]:
    """One SLA run in chunks, each its own transaction; the number of orders announced at each level. With
    `progress`, the orders each pass has to announce are counted first (unless `totals` is false: that count
    costs about a fifth of a catch-up's own work)."""
    t = at or now()
    with db.session() as s, s.begin():
        lo = svc.window_start(s, at=t)
        todo = svc.pending(s, at=t, lo=lo) if progress is not None and totals else {}

    def one(level: str, walk: str, after: svc.Cursor | None) -> tuple[int, svc.Cursor | None]:
        with db.session() as s, s.begin():
            return svc.notify_chunk(s, level=level, at=t, lo=lo, walk=walk, after=after, limit=chunk)

    done, _more = svc.run_walks(one, lo=lo, limit=chunk, progress=progress, todo=todo)
    with db.session() as s, s.begin():
        svc.record_run(s, at=t, counts=done)
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
