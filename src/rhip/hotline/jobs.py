"""The hotline's time-driven job: the SLA check, run by `rhip hotline sla --every SECONDS` (or cron).

Each run is one transaction of three indexed UPDATEs (breach, 75%, 50%) with an event per raised order; a
run at any moment gives the same levels, so missed runs are caught up by the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from rhip.db.engine import Database
from rhip.hotline import service as svc


def run_once(db: Database, *, at: datetime | None = None) -> dict[str, int]:
    """One SLA run in its own transaction; the number of orders raised to each level."""
    with db.session() as s, s.begin():
        return svc.run_sla(s, at=at)


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
