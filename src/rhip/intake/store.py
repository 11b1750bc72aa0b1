"""Lake storage for intake: one Delta table per catalogue table (`ods_<table>`, partitioned by month) and
one key index (`intake_keys`, partitioned by table, institution and month).

Atomicity: every row written carries its batch id (`_batch`); each table gets one Delta commit per batch
with the batch id in the commit metadata, and the batch only counts once its SQL receipt is committed.
`recover()` deletes the rows of batches whose receipt never committed.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, write_deltalake

from rhip.lake.sql import Sql, ident
from rhip.lake.store import Lake

KEYS_TABLE = "intake_keys"
SYS_COLUMNS = ("_batch", "_key", "_op", "_month", "_row", "_ingested_at")
OP_NEW, OP_UPDATE, OP_REVOKE = 1, 2, 3
_BATCH_ID = re.compile(r"^[A-Za-z0-9]{8,32}$")


def data_table(table: str) -> str:
    """The lake table holding a catalogue table's records."""
    return f"ods_{table}"


@contextmanager
def institution_lock(lake: Lake, institution_code: str) -> Iterator[None]:
    """Serialise batches of one institution across processes (dedup reads, then writes)."""
    folder = lake.root / "_locks"
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", institution_code)
    with (folder / f"{safe}.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


_handles: dict[str, DeltaTable] = {}


def _handle(lake: Lake, name: str) -> DeltaTable | None:
    """A lake table kept open per process and brought up to date incrementally (log replay is costly)."""
    if not lake.exists(name):
        return None
    path = str(lake.path(name))
    dt = _handles.get(path)
    if dt is None:
        dt = _handles[path] = DeltaTable(path)
    else:
        dt.update_incremental()
    return dt


def _keys_table(lake: Lake) -> DeltaTable | None:
    """The key index (see `_handle`)."""
    return _handle(lake, KEYS_TABLE)


def _index_files(lake: Lake, filters: list[tuple[str, str, Any]]) -> list[str]:
    dt = _keys_table(lake)
    if dt is None:
        return []
    return [u.removeprefix("file://") for u in dt.file_uris(partition_filters=filters)]


def stored_state(lake: Lake, *, table: str, institution_code: str, months: list[str]) -> pl.DataFrame:
    """Latest stored version per key (key, updated_at, op) for the months a batch touches.

    Only the index partitions (table, institution, month) of this batch are read, so the cost follows the
    size of those months, not of the whole history.
    """
    empty = pl.DataFrame(schema={"_key": pl.String, "_prev": pl.Datetime("us", "UTC"), "_prev_op": pl.Int8})
    if not months:
        return empty
    files = _index_files(
        lake, [("table", "=", table), ("org_code", "=", institution_code), ("month", "in", list(months))]
    )
    if not files:
        return empty
    got = pq.read_table(files, columns=["key", "updated_at", "op"])
    df = pl.from_arrow(got)
    assert isinstance(df, pl.DataFrame)
    return (
        df.sort("updated_at")
        .group_by("key")
        .agg(pl.col("updated_at").last().alias("_prev"), pl.col("op").last().cast(pl.Int8).alias("_prev_op"))
        .rename({"key": "_key"})
        .with_columns(pl.col("_prev").cast(pl.Datetime("us", "UTC")))
    )


def stored_keys(lake: Lake, *, table: str, institution_code: str) -> pl.Series:
    """Every key ever stored for a table and institution (for referential checks)."""
    files = _index_files(lake, [("table", "=", table), ("org_code", "=", institution_code)])
    if not files:
        return pl.Series("_key", [], dtype=pl.String)
    got = pq.read_table(files, columns=["key"]).column("key")
    return pl.Series("_key", got.cast(pa.string()), dtype=pl.String)


def classify(incoming: pl.DataFrame, stored: pl.DataFrame) -> pl.Series:
    """Dedup outcome per incoming row (same order): new, updated, revoked or duplicate.

    `incoming` has _key, updated_at (UTC), change_flag (1/2/3) and _row; the latest 数据更新时间 wins and
    anything not newer than what is already known (stored or earlier in this batch) is a duplicate.
    """
    if incoming.height == 0:
        return pl.Series("_outcome", [], dtype=pl.String)
    joined = (
        incoming.select("_key", "updated_at", "change_flag", "_row")
        .with_row_index("_pos")
        .join(stored, on="_key", how="left")
    )
    # only keys sent more than once in this batch need the ordered window; the rest compare with stored
    repeated = joined.get_column("_key").is_duplicated()
    if repeated.any():
        earlier = (
            joined.filter(repeated)
            .sort("_key", "updated_at", "_row")
            .select("_pos", pl.col("updated_at").cum_max().shift(1).over("_key").alias("_earlier"))
        )
        joined = joined.join(earlier, on="_pos", how="left")
    else:
        joined = joined.with_columns(pl.lit(None, dtype=joined.schema["updated_at"]).alias("_earlier"))
    known = pl.max_horizontal(pl.col("_earlier"), pl.col("_prev"))
    outcome = (
        pl.when(known.is_not_null() & (pl.col("updated_at") <= known))
        .then(pl.lit("duplicate"))
        .when(pl.col("change_flag") == 3)
        .then(pl.lit("revoked"))
        .when(known.is_not_null())
        .then(pl.lit("updated"))
        .otherwise(pl.lit("new"))
    )
    return joined.sort("_pos").select(outcome.alias("_outcome")).get_column("_outcome")


def _props(batch_id: str) -> CommitProperties:
    return CommitProperties(custom_metadata={"rhip.batch": batch_id})


def write_records(lake: Lake, *, table: str, data: pl.DataFrame, batch_id: str) -> None:
    """One Delta commit with a batch's stored records of one catalogue table."""
    if data.height == 0:
        return
    lake.root.mkdir(parents=True, exist_ok=True)
    arrow = data.to_arrow()
    target = _handle(lake, data_table(table))
    write_deltalake(
        target if target is not None else str(lake.path(data_table(table))),
        arrow,
        mode="append",
        partition_by=["_month"],
        schema_mode="merge",
        commit_properties=_props(batch_id),
    )


def write_keys(lake: Lake, *, keys: pl.DataFrame, batch_id: str) -> None:
    """One Delta commit of a batch's index rows (table, org_code, month, key, updated_at, op, _batch)."""
    if keys.height == 0:
        return
    lake.root.mkdir(parents=True, exist_ok=True)
    target = _keys_table(lake)
    write_deltalake(
        target if target is not None else str(lake.path(KEYS_TABLE)),
        keys.to_arrow(),
        mode="append",
        partition_by=["table", "org_code", "month"],
        commit_properties=_props(batch_id),
    )


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
    """DuckDB SQL for the current version of each record of a table (tombstones out, uncommitted out)."""
    name = ident(data_table(table))
    params: dict[str, object] = {}
    where = ""
    if exclude_batches:
        where = "WHERE NOT list_contains($pending, _batch)"
        params["pending"] = list(exclude_batches)
    outer = "" if with_revoked else "WHERE _op <> 3"
    text = (
        f"SELECT * EXCLUDE (_rn) FROM (SELECT *, row_number() OVER ("
        f"PARTITION BY org_code, _key ORDER BY updated_at DESC, _ingested_at DESC, _row DESC) AS _rn "
        f"FROM {name} {where}) WHERE _rn = 1 {('AND _op <> 3' if not with_revoked else '')}"
    )
    del outer
    return Sql(text, params)


def lake_root(path: Path) -> Lake:
    """The lake for a folder."""
    return Lake(path)
