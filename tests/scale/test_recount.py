"""The month's figures recounted on one process, a two-process local cluster and a scheduler + worker
pair: the same counts, and the same figures as intake's rollups."""

from __future__ import annotations

from typing import Any

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.lake.cluster import Job
from rhip.lake.store import Lake
from rhip.quality import figures
from rhip.quality.verify import differences
from tests.scale.conftest import MONTH


def _counts(db: Database, lake: Lake, job: Job | bool) -> Any:
    with db.session() as s, s.begin():
        fig = figures.month_figures(s, lake=lake, month=MONTH, recount=job)
        hist = figures.visit_history(s, lake=lake, month=MONTH, months=13, recount=job)
    return [(u.code, u.visits, round(u.visit_revenue * 100), u.discharges, u.days) for u in fig.units], hist


def test_same_counts_in_process_local_cluster_and_scheduler(
    lake: Lake, db: Database, local_cluster: Any, scheduler_pair: str
) -> None:
    from distributed import Client

    one = _counts(db, lake, True)
    assert sum(v for _c, v, *_ in one[0]) > 0  # the month has visits to count
    job1 = Job(None)
    assert _counts(db, lake, job1) == one
    assert job1.total > 1  # the in-process job ran the per-range tasks too
    two = Job(local_cluster)
    assert two.workers == 2
    assert _counts(db, lake, two) == one
    with Client(scheduler_pair) as c:
        assert _counts(db, lake, Job(c)) == one


def test_recount_on_two_workers_agrees_with_rollups(
    settings: Settings, lake: Lake, db: Database, local_cluster: Any
) -> None:
    from rich.console import Console

    from rhip.quality.commands import recount_job

    # `--scheduler` on the session's two-process cluster (`--workers 2` starts the same kind of cluster)
    address = local_cluster.scheduler.address
    got = recount_job(settings, db, months_=[MONTH], scheduler=address, show=Console(quiet=True))
    totals, diff = got[MONTH]
    assert diff == []
    with db.session() as s, s.begin():
        fig = figures.month_figures(s, lake=lake, month=MONTH)
        assert differences(s, lake=lake, month=MONTH) == []
    assert totals[0] == sum(u.visits for u in fig.units) > 0
    assert totals[2] == sum(u.discharges for u in fig.units) > 0
