"""The recount on a cluster: the same `recount` over ranges of institution codes, one task per range.

Every figure is per institution and the current-record rule is per institution and key, so counting each
range of codes apart and putting the rows together gives exactly the figures of one count over the whole
lake (a person counted under two institutions is counted twice there too). The ranges are cut from the
Delta log's per-file statistics (the first code of each file, weighted by its rows) so that the tasks are
of about equal size and each opens only the files of its own institutions (an upload batch is one
institution's). The results are put in one order, so one process, N processes and a cluster agree.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from rhip.lake.cluster import Job, OrgRange, org_ranges, tables_of, task_threads
from rhip.lake.store import Lake
from rhip.quality import recount
from rhip.quality.lakeread import LakeReader, data_table
from rhip.quality.rollupread import Counts
from rhip.registry import data as registry_data

# a recount task has a fixed cost (every table's Delta log, DuckDB's views, a dozen statements: ~0.2 s at the
# benchmark's scale 0.03, where the whole month in one task took 1.0 s) and reads every file its range
# overlaps, so fewer tasks than the cluster default of 4 per worker: 2 still let one worker take over the
# other's second task when they do not finish together
TASKS_PER_WORKER = 2


def _task(orgs: OrgRange, *, lake: Lake, read: str, **kwargs: Any) -> Any:
    """One range's `recount.read_<read>` (runs on a worker)."""
    reader = LakeReader(lake, orgs=orgs, threads=task_threads())
    try:
        return getattr(recount, f"read_{read}")(reader, **kwargs)
    finally:
        reader.close()


def _ranges(job: Job, lake: Lake, tables: list[str]) -> list[OrgRange]:
    # the registry's codes let a file of several institutions (a compacted, sorted table) be cut inside
    known = [r.code for r in registry_data.institutions()]
    return org_ranges(
        tables_of(lake, [data_table(t) for t in tables]), job.workers * TASKS_PER_WORKER, codes=known
    )


def counts(
    job: Job,
    *,
    lake: Lake,
    month: str,
    first: date,
    last: date,
    forms: list[str],
    activity: dict[str, str],
    records: dict[str, tuple[str, bool]],
    pending: list[str],
) -> Counts:
    """`recount.counts` on the job's workers, one task per range of institution codes."""
    tables = sorted({*forms, *activity, *(t for t, _ in records.values())})
    what: dict[str, Any] = dict(
        month=month, first=first, last=last, forms=forms, activity=activity, records=records
    )
    parts: list[Counts] = job.run(
        _task, _ranges(job, lake, tables), lake=lake, read="counts", pending=pending, **what
    )
    out = Counts()
    out.days = sorted(r for p in parts for r in p.days)
    for table in activity:
        out.activity[table] = sorted(r for p in parts for r in p.activity.get(table, []))
    for figure in records:
        out.records[figure] = sorted(r for p in parts for r in p.records.get(figure, []))
    return out


def history(
    job: Job, *, lake: Lake, table: str, first_month: str, month: str, pending: list[str]
) -> list[tuple[str, str, int]]:
    """`recount.history` on the job's workers, one task per range of institution codes."""
    parts: list[list[tuple[str, str, int]]] = job.run(
        _task,
        _ranges(job, lake, [table]),
        lake=lake,
        read="history",
        table=table,
        first_month=first_month,
        month=month,
        pending=pending,
    )
    return sorted(r for p in parts for r in p)
