"""Compaction on a cluster: one task per crowded partition of the intake lake tables (`rhip intake compact
--workers N` or `--scheduler ADDRESS`, optionally `--month M`).

Each task is one Delta OPTIMIZE compact of one partition, committed by itself: a Delta commit is atomic,
so a worker killed mid-task leaves at most unreferenced Parquet files (removed by a later VACUUM), never a
partial commit, and the retried task starts again from the table's current version. Tasks on different
partitions of one table commit concurrently; deltalake's conflict check lets disjoint rewrites through.
"""

from __future__ import annotations

from deltalake import CommitProperties

from rhip.intake import store
from rhip.lake.cluster import Job, tables_of
from rhip.lake.store import Lake

Filters = list[tuple[str, str, str]]


def plan(
    lake: Lake, *, month: str | None = None, min_files: int = 2, target_size: int = store.TARGET_FILE
) -> list[tuple[str, Filters]]:
    """(table, partition filter) of every partition holding at least `min_files` small files (only those
    holding `month` when given: its `_year`, or its `_month` in a lake partitioned by month)."""
    names = [n for n in lake.tables() if n.startswith("ods_")]
    out: list[tuple[str, Filters]] = []
    for dt, name in zip(tables_of(lake, names), names, strict=True):
        parts = store.partitions(dt, [])
        wanted = {("_month", "=", month), ("_year", "=", month[:4])} if month else set()
        # the same choice of partitions as the single-process compaction
        for values in store._crowded_partitions(dt, parts, min_files, target_size):
            filters = [(c, "=", v) for c, v in zip(parts, values, strict=True)]
            if month is None or wanted & set(filters):
                out.append((name, filters))
    return out


def _compact_task(item: tuple[str, Filters], *, lake: Lake, target_size: int) -> tuple[str, int, int]:
    """One partition's OPTIMIZE compact (runs on a worker): (table, files removed, files added)."""
    name, filters = item
    dt = lake.dataset(name)
    with lake.guard():
        m = dt.optimize.compact(
            partition_filters=filters or None,
            target_size=target_size,
            commit_properties=CommitProperties(custom_metadata={"rhip.op": "compact"}),
        )
    return name, int(m.get("numFilesRemoved", 0)), int(m.get("numFilesAdded", 0))


def compact(
    job: Job,
    *,
    lake: Lake,
    month: str | None = None,
    min_files: int = 2,
    target_size: int = store.TARGET_FILE,
) -> dict[str, tuple[int, int]]:
    """Compact the crowded partitions on the job's workers; (files removed, files added) per changed table."""
    items = plan(lake, month=month, min_files=min_files, target_size=target_size)
    done: dict[str, tuple[int, int]] = {}
    for name, removed, added in job.run(_compact_task, items, lake=lake, target_size=target_size):
        if removed:
            r, a = done.get(name, (0, 0))
            done[name] = (r + removed, a + added)
    return done
