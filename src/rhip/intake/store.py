"""Lake storage for intake: one Delta table per catalogue table (`ods_<table>`, partitioned by the event
year `_year`, with the event month `_month` as a column each file is sorted by) and one key index
(`intake_keys`, partitioned by table, institution and event year).

Why years, not months: registry-like tables (health records, follow-ups) carry event dates spanning decades,
so month partitions gave every batch hundreds of one-row files and made every later read slow; a monthly
batch of visits still lands in one partition. Tables created before this layout keep their partitioning
(read from the Delta metadata), so old lakes stay readable and writable. `compact()` merges small files.

Atomicity: every row written carries its batch id (`_batch`); each table gets one Delta commit per batch
with the batch id in the commit metadata, and the batch only counts once its SQL receipt is committed.
`recover()` deletes the rows of batches whose receipt never committed.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError
from deltalake.transaction import AddAction, RemoveAction
from sqlalchemy import Engine

from rhip.db.locks import db_lock, file_lock
from rhip.intake import deltalog
from rhip.lake.sql import Sql, ident, ranked_versions_sql
from rhip.lake.store import Lake

KEYS_TABLE = "intake_keys"
SYS_COLUMNS = ("_batch", "_key", "_op", "_month", "_row", "_ingested_at")
DATA_PARTITIONS = ["_year"]
TARGET_FILE = 64 << 20  # compaction merges files below this size into files of about this size
OP_NEW, OP_UPDATE, OP_REVOKE = 1, 2, 3
OP_DUPLICATE = 0  # classify's code for a record not stored (never written to the lake)
_BATCH_ID = re.compile(r"^[A-Za-z0-9]{8,32}$")


def data_table(table: str) -> str:
    """The lake table holding a catalogue table's records."""
    return f"ods_{table}"


@contextmanager
def institution_lock(lake: Lake, institution_code: str, *, engine: Engine | None = None) -> Iterator[None]:
    """Serialise batches of one institution across processes (dedup reads, then writes): a file lock in a
    local lake, a database lock (`db.locks`) when the lake is on object storage, where the processes may be
    on several machines and a file cannot be locked."""
    if lake.remote:
        if engine is None:
            raise ValueError("a lake on object storage needs the database for its institution lock")
        with db_lock(engine, f"intake:{institution_code}"):
            yield
        return
    with file_lock(lake.root / "_locks", institution_code):
        yield


_handles: dict[str, DeltaTable] = {}


def handle(lake: Lake, name: str) -> DeltaTable | None:
    """A lake table kept open per process, its schema and partitioning current (log replay is costly).

    Its file list may lag this process's own appends (`deltalog`): it is brought up to date only when a
    commit this process did not write appears — one stat of the next commit file, where deltalake's
    incremental update listed the whole `_delta_log` folder before every table's commit of every batch.
    Readers of the file list use `fresh`."""
    if not lake.exists(name):
        return None
    path = lake.uri_of(name)
    dt = _handles.get(path)
    if dt is None:
        try:
            dt = _handles[path] = lake.dataset(name)
        except TableNotFoundError:  # its log folder exists, its first commit not yet (another process's)
            return None
    elif lake.remote:  # an object store: no local log to look at (and deltalake commits every append)
        with lake.guard():
            dt.update_incremental()
    elif newer_commit(path, dt):
        dt.update_incremental()
    return dt


def fresh(lake: Lake, name: str) -> DeltaTable | None:
    """`handle`, with its file list brought up to date too."""
    dt = handle(lake, name)
    if dt is None or lake.remote:  # a remote table's handle was brought up to date by `handle`
        return dt
    log = lake.path(name) / "_delta_log"
    if deltalog.commit_path(log, int(dt.version()) + 1).exists():
        dt.update_incremental()
    return dt


def newer_commit(path: str, dt: DeltaTable) -> bool:
    """Whether the table's log holds a commit after the newest this process knows to be its own appends."""
    log = Path(path) / "_delta_log"
    return deltalog.commit_path(log, deltalog.known(log, dt) + 1).exists()


def partitions(dt: DeltaTable | None, default: list[str]) -> list[str]:
    """The partition columns of an existing table (older lakes used months), or the default for a new one."""
    if dt is None:
        return list(default)
    return list(dt.metadata().partition_columns)


def _props(batch_id: str) -> CommitProperties:
    return CommitProperties(custom_metadata={"rhip.batch": batch_id})


@dataclass
class Staged:
    """A table's records of a batch as they will be committed (sorted by month, partition columns added),
    already written as Parquet files when the table can take them as they are (`actions`; None for a new
    table or a schema change, which `commit_staged` writes through deltalake)."""

    table: str
    data: pl.DataFrame
    parts: list[str]
    actions: list[AddAction] | None


def stage_records(lake: Lake, *, table: str, data: pl.DataFrame, batch_id: str) -> Staged:
    """Write (not commit) a batch's records of one catalogue table; nothing is visible until committed."""
    target = handle(lake, data_table(table))
    parts = partitions(target, DATA_PARTITIONS)
    if "_year" in parts:
        data = data.with_columns(pl.col("_month").str.slice(0, 4).alias("_year"))
    if data.get_column("_month").n_unique() > 1:  # most monthly batches hold one month: no sort needed
        data = data.sort("_month")
    actions = None
    if target is not None and same_schema(target, _arrow_schema(data)):
        actions = write_files(lake, data_table(table), data, parts=parts, batch_id=batch_id)
    return Staged(table=table, data=data, parts=parts, actions=actions)


def commit_staged(lake: Lake, staged: Staged, *, batch_id: str) -> None:
    """The staged records' one Delta commit."""
    name = data_table(staged.table)
    target = _handles.get(lake.uri_of(name))
    if staged.actions is None or target is None:
        append(lake, name, staged.data, parts=staged.parts, batch_id=batch_id)
    else:
        commit_files(target, staged.actions, parts=staged.parts, batch_id=batch_id)


def discard(lake: Lake, name: str, actions: list[AddAction]) -> None:
    """Delete files written for a batch that will not be committed (they were never visible)."""
    for a in actions:
        if lake.remote:
            lake.delete(name, a.path)
        else:
            (lake.path(name) / a.path).unlink(missing_ok=True)  # as write_files named it


def write_records(lake: Lake, *, table: str, data: pl.DataFrame, batch_id: str) -> pl.DataFrame:
    """One Delta commit with a batch's stored records of one catalogue table; returns the rows as written
    (sorted by month), which the key index takes in the same order."""
    if data.height == 0:
        return data
    staged = stage_records(lake, table=table, data=data, batch_id=batch_id)
    commit_staged(lake, staged, batch_id=batch_id)
    return staged.data


def _arrow_schema(data: pl.DataFrame) -> pa.Schema:
    return data.head(0).to_arrow(compat_level=pl.CompatLevel.oldest()).schema


def create_table(lake: Lake, name: str, *, schema: pa.Schema, parts: list[str], batch_id: str) -> DeltaTable:
    """A new lake table (its first commit), kept open like every handle; in a local lake, the table another
    process created meanwhile (the demo's workers ingest institutions side by side)."""
    path = lake.uri_of(name)
    if lake.remote:
        with lake.guard():
            target = _handles[path] = DeltaTable.create(
                path,
                schema=schema,
                partition_by=parts or None,
                commit_properties=_props(batch_id),
                storage_options=lake.storage_options or None,
            )
        return target
    lake.root.mkdir(parents=True, exist_ok=True)
    with file_lock(lake.root / "_locks", f"create-{name}"):
        if (made := handle(lake, name)) is not None:
            return made
        target = _handles[path] = DeltaTable.create(
            path, schema=schema, partition_by=parts or None, commit_properties=_props(batch_id)
        )
    return target


def append(
    lake: Lake,
    name: str,
    data: pl.DataFrame,
    *,
    parts: list[str],
    batch_id: str,
    target: DeltaTable | None = None,
) -> None:
    """Append rows as one Delta commit: Polars writes the Parquet files, deltalake commits them.

    deltalake's own writer encoded ~3x slower than Polars' multi-threaded one; the commit is the same
    Delta transaction (add actions with partition values and row counts). When the rows bring a column
    or type the table does not have yet, deltalake's writer merges the schema instead.
    """
    arrow_schema = _arrow_schema(data)
    target = target or handle(lake, name)
    if target is None:
        target = create_table(lake, name, schema=arrow_schema, parts=parts, batch_id=batch_id)
    if not same_schema(target, arrow_schema):
        target.update_incremental()  # deltalake's writer merges the schema against the latest version
        write_deltalake(
            target,
            data.to_arrow(),
            mode="append",
            partition_by=parts or None,
            schema_mode="merge",
            commit_properties=_props(batch_id),
        )
        return
    actions = write_files(lake, name, data, parts=parts, batch_id=batch_id)
    commit_files(target, actions, parts=parts, batch_id=batch_id)


def write_files(
    lake: Lake, name: str, data: pl.DataFrame, *, parts: list[str], batch_id: str
) -> list[AddAction]:
    """Write rows as Parquet files under a table's folder, one per partition; their Delta add actions
    (on object storage each file is encoded in memory and put as one object)."""
    actions: list[AddAction] = []
    if not parts:
        groups: dict[tuple[Any, ...], pl.DataFrame] = {(): data}
    elif data.select(pl.struct(parts).n_unique()).item() == 1:
        groups = {tuple(data.row(0, named=True)[c] for c in parts): data.drop(parts)}
    else:
        groups = data.partition_by(parts, as_dict=True, include_key=False)
    for values, frame in groups.items():
        pvals = {c: (None if v is None else str(v)) for c, v in zip(parts, values, strict=True)}
        folder = "/".join(
            f"{c}={quote(v if v is not None else '__HIVE_DEFAULT_PARTITION__', safe='')}"
            for c, v in pvals.items()
        )
        rel = f"{folder}/" if folder else ""
        rel += f"part-{uuid.uuid4().hex}-{batch_id}.parquet"
        if lake.remote:
            buf = io.BytesIO()
            frame.write_parquet(buf, compression="zstd", compression_level=1, statistics=True)
            body = buf.getvalue()
            lake.put(name, rel, body)
            size = len(body)
        else:
            out = lake.path(name) / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            frame.write_parquet(out, compression="zstd", compression_level=1, statistics=True)
            size = out.stat().st_size
        actions.append(
            AddAction(
                path=rel,
                size=size,
                partition_values=pvals,
                modification_time=int(time.time() * 1000),
                data_change=True,
                stats=json.dumps(_stats(frame)),
            )
        )
    return actions


def commit_files(target: DeltaTable, actions: list[AddAction], *, parts: list[str], batch_id: str) -> None:
    """One Delta transaction adding files already written (a blind append written by `deltalog`, or by
    deltalake when the table or a concurrent commit needs it)."""
    if deltalog.append(target, actions, parts=parts, batch_id=batch_id) is not None:
        return
    target.update_incremental()
    target.create_write_transaction(
        list[AddAction | RemoveAction](actions),
        mode="append",
        schema=target.schema(),
        partition_by=parts or None,
        commit_properties=_props(batch_id),
    )


# `key` (the key index's): dedup and link checks skip index files whose key range misses the batch's keys
STATS_COLUMNS = ("org_code", "_op", "_month", "_batch", "op", "month", "table", "key")


def _stats(frame: pl.DataFrame) -> dict[str, Any]:
    """Delta file statistics: row count, and min/max/null count of the system columns readers skip on
    (e.g. the quality figures read only files whose max `_op` is above 1 for corrections)."""
    cols = [c for c in STATS_COLUMNS if c in frame.columns]
    stats: dict[str, Any] = {"numRecords": frame.height}
    if cols and frame.height:
        row = frame.select(
            *[pl.col(c).min().alias(f"min|{c}") for c in cols],
            *[pl.col(c).max().alias(f"max|{c}") for c in cols],
            *[pl.col(c).null_count().alias(f"nulls|{c}") for c in cols],
        ).row(0, named=True)
        stats["minValues"] = {c: row[f"min|{c}"] for c in cols if row[f"min|{c}"] is not None}
        stats["maxValues"] = {c: row[f"max|{c}"] for c in cols if row[f"max|{c}"] is not None}
        stats["nullCount"] = {c: int(row[f"nulls|{c}"]) for c in cols}
    return stats


def same_schema(dt: DeltaTable, arrow_schema: pa.Schema) -> bool:
    """Whether rows of this Arrow schema fit the table as it is (same names, same Delta types)."""
    from deltalake import Schema as DeltaSchema

    have = {f.name: f.type for f in dt.schema().fields}
    try:
        want = {f.name: f.type for f in DeltaSchema.from_arrow(arrow_schema).fields}
    except Exception:
        return False
    return all(n in have and have[n] == t for n, t in want.items())


def compact(
    lake: Lake,
    *,
    tables: list[str] | None = None,
    min_files: int = 2,
    target_size: int = TARGET_FILE,
) -> dict[str, tuple[int, int]]:
    """Merge small files of intake lake tables (Delta OPTIMIZE compact, per partition holding at least
    `min_files` files under `target_size` bytes); returns (files removed, files added) per changed table.

    A data-preserving rewrite: rows, `_batch` tags and every column stay, so a pending batch's rows can still
    be removed by `remove_batch` afterwards. Partitions with fewer files are left alone, so calling this
    after every batch costs a file listing until a partition has accumulated `min_files` small files.
    """
    listed = tables if tables is not None else lake.tables()
    names = [n for n in listed if n.startswith("ods_") or n == KEYS_TABLE]
    if len(names) <= 1:
        got = [_compact_table(lake, n, min_files, target_size) for n in names]
    else:
        # tables side by side: a table of one partition (the data tables' event year, at a month's scale) is
        # one bin, which deltalake rewrites on one thread (its OPTIMIZE releases the GIL)
        with ThreadPoolExecutor(max_workers=min(len(names), os.cpu_count() or 1)) as pool:
            got = list(pool.map(lambda n: _compact_table(lake, n, min_files, target_size), names))
    return {n: counts for n, counts in zip(names, got, strict=True) if counts is not None}


# the key index's partitions merged at the month's end only from this many files: its ~800 (table,
# institution, year) partitions hold 1-3 files each after a month (main and correction files), which dedup
# reads no slower than one, and merging them all was 8.7 of the demo's compaction's 14.7 s; the small
# receipts' partitions (real-time, FHIR, CDA) hold more and are merged
KEYS_CROWDED = 8


def compact_month_end(lake: Lake) -> dict[str, tuple[int, int]]:
    """The one compaction after a month's intake whose batches left their small files (`compact`): every data
    table in full, the key index where a partition holds `KEYS_CROWDED` files or more."""
    done = compact(lake, tables=[t for t in lake.tables() if t != KEYS_TABLE])
    done.update(compact(lake, tables=[KEYS_TABLE], min_files=KEYS_CROWDED))
    return done


def _compact_table(lake: Lake, name: str, min_files: int, target_size: int) -> tuple[int, int] | None:
    """`compact` of one table: (files removed, files added), or None when nothing was merged."""
    dt = fresh(lake, name)  # OPTIMIZE plans on the handle's file list: it must hold every commit
    if dt is None or len(dt.file_uris()) < min_files:  # no partition can hold min_files: no scan
        return None
    parts = partitions(dt, [])
    removed = added = 0
    crowded = _crowded_partitions(dt, parts, min_files, target_size)
    # one OPTIMIZE per crowded partition, except a full compaction (min_files <= 2, what Delta's
    # OPTIMIZE does by itself): then one call and one commit for the whole table. The key index has
    # thousands of (table, institution, year) partitions, and a commit per partition was most of the
    # demo's end-of-intake compaction
    filter_sets = (
        [None]
        if crowded and (min_files <= 2 or not parts)
        else [[(c, "=", v) for c, v in zip(parts, values, strict=True)] for values in crowded]
    )
    for filters in filter_sets:
        m = dt.optimize.compact(
            partition_filters=filters,
            target_size=target_size,
            commit_properties=CommitProperties(custom_metadata={"rhip.op": "compact"}),
        )
        removed += int(m.get("numFilesRemoved", 0))
        added += int(m.get("numFilesAdded", 0))
    return (removed, added) if removed else None


def _crowded_partitions(
    dt: DeltaTable, parts: list[str], min_files: int, target_size: int
) -> list[tuple[str, ...]]:
    """Partition values (in `parts` order) holding at least `min_files` active files below `target_size`."""
    actions = pl.DataFrame(dt.get_add_actions(flatten=True))  # pa.table() would import pandas (~1 s)
    if not isinstance(actions, pl.DataFrame) or actions.height == 0:
        return []
    actions = actions.filter(pl.col("size_bytes") < target_size)
    if not parts:
        return [()] if actions.height >= min_files else []
    cols = [pl.col(f"partition.{c}").cast(pl.String) for c in parts]
    crowded = actions.group_by(cols).len().filter(pl.col("len") >= min_files)
    return [tuple(r[:-1]) for r in crowded.iter_rows()]


def file_count(lake: Lake, name: str) -> int:
    """Active Parquet files of a lake table (0 when absent)."""
    dt = fresh(lake, name)
    return 0 if dt is None else len(dt.file_uris())


def remove_batch(lake: Lake, *, batch_id: str, tables: list[str]) -> int:
    """Delete every row of a batch from the given lake tables; returns rows removed."""
    if not _BATCH_ID.match(batch_id):
        raise ValueError(f"not a batch id: {batch_id!r}")
    removed = 0
    for name in tables:
        if not lake.exists(name):
            continue
        dt = lake.dataset(name)
        if "_batch" not in dt.schema().to_arrow().names:
            continue
        # the id is checked against [A-Za-z0-9]+ above: safe to quote into the Delta predicate
        metrics = dt.delete(predicate=f"_batch = '{batch_id}'", commit_properties=_props(batch_id))
        removed += int(metrics.get("num_deleted_rows", 0) or 0)
    return removed


def process_alive(host: str, pid: int) -> bool:
    """Whether a batch's owning process still runs (only knowable on this host)."""
    if host != os.uname().nodename:
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def current_sql(table: str, *, exclude_batches: list[str] | None = None, with_revoked: bool = False) -> Sql:
    """DuckDB SQL for the current version of each record of a table (tombstones out, uncommitted out);
    the ranking is `lake.sql.ranked_versions_sql`, the one "current record" builder."""
    params: dict[str, object] = {}
    keep = "TRUE"
    if exclude_batches:
        keep = "NOT list_contains($pending, _batch)"
        params["pending"] = list(exclude_batches)
    ranked = ranked_versions_sql(ident(data_table(table)), "*", keep)
    tombstones = "" if with_revoked else " AND _op <> 3"
    return Sql(f"SELECT * EXCLUDE (_rn) FROM ({ranked}) WHERE _rn = 1{tombstones}", params)


def lake_root(path: Path) -> Lake:
    """The lake for a folder."""
    return Lake(path)
