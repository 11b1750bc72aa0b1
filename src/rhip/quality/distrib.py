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
from pathlib import Path
from typing import Any

from rhip.lake.cluster import TASKS_PER_WORKER, Job, OrgRange, org_ranges, tables_of, worker_threads
from rhip.lake.store import Lake
from rhip.quality import recount
from rhip.quality.lakeread import LakeReader, data_table
from rhip.quality.rollupread import Counts


def _counts_task(orgs: OrgRange, *, root: str, **kwargs: Any) -> Counts:
    """One range's counts (runs on a worker)."""
    reader = LakeReader(Lake(Path(root)), orgs=orgs, threads=worker_threads())
    try:
        return recount.read_counts(reader, **kwargs)
    finally:
        reader.close()


def _history_task(orgs: OrgRange, *, root: str, **kwargs: Any) -> list[tuple[str, str, int]]:
    """One range's history rows (runs on a worker)."""
    reader = LakeReader(Lake(Path(root)), orgs=orgs, threads=worker_threads())
    try:
        return recount.read_history(reader, **kwargs)
    finally:
        reader.close()


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
    ranges = org_ranges(tables_of(lake, [data_table(t) for t in tables]), job.workers * TASKS_PER_WORKER)
    parts = job.run(
        _counts_task,
        ranges,
        root=str(lake.root),
        month=month,
        first=first,
        last=last,
        forms=forms,
        activity=activity,
        records=records,
        pending=pending,
    )
    out = Counts()
    out.days = sorted(r for p in parts for r in p.days)
    for table in activity:
        out.activity[table] = sorted(r for p in parts for r in p.activity.get(table, []))
    for what in records:
        out.records[what] = sorted(r for p in parts for r in p.records.get(what, []))
    return out


def history(
    job: Job, *, lake: Lake, table: str, first_month: str, month: str, pending: list[str]
) -> list[tuple[str, str, int]]:
    """`recount.history` on the job's workers, one task per range of institution codes."""
    ranges = org_ranges(tables_of(lake, [data_table(table)]), job.workers * TASKS_PER_WORKER)
    parts = job.run(
        _history_task,
        ranges,
        root=str(lake.root),
        table=table,
        first_month=first_month,
        month=month,
        pending=pending,
    )
    return sorted(r for p in parts for r in p)
