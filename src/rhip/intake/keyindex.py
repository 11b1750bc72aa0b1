"""The key index (`intake_keys`: table, org_code, month, key, updated_at, op, _batch, and what the rollups
need of each version: amount, realtime, person; partitioned by table, institution and event year, files
sorted by month) and de-duplication against it.

A batch opens the index once (`open_index`, under its institution's lock, so the partitions it reads cannot
change underneath it): dedup (`stored_state`, `classify`) and link checks (`stored_keys`) read that one
snapshot, the table writers add their key files as each table is written (`KeyIndex.add`), and `commit`
makes them one Delta commit, so the index stays atomic per batch like every other lake table.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.transaction import AddAction

from rhip.intake import deltalog, rollup, store
from rhip.intake.store import KEYS_TABLE, OP_DUPLICATE, OP_NEW, OP_REVOKE, OP_UPDATE
from rhip.lake.store import Lake
from rhip.registry import catalogue

KEYS_PARTITIONS = ["table", "org_code", "year"]
# the index's columns as written (partition columns are added per layout)
KEYS_SCHEMA = pa.schema(
    [
        ("table", pa.string()),
        ("org_code", pa.string()),
        ("month", pa.string()),
        ("key", pa.string()),
        ("updated_at", pa.timestamp("us", "UTC")),
        ("op", pa.int8()),
        ("_batch", pa.string()),
        ("amount", pa.float64()),
        ("realtime", pa.bool_()),
        ("person", pa.string()),
    ]
)
# how the index files are read: an older file without the rollup columns reads them as nulls
_READ_SCHEMA: dict[str, pl.DataType] = {
    "month": pl.String(),
    "key": pl.String(),
    "updated_at": pl.Datetime("us", "UTC"),
    "op": pl.Int8(),
    **rollup.MEASURES,
}


@dataclass
class KeyIndex:
    """The key index as one batch sees it, and the index files its table writers have written so far.

    `writable` is False when the stored index's schema differs from what the writers produce (an older
    lake): their rows are then kept in `pending` for deltalake's writer to merge at commit.
    """

    lake: Lake
    dt: DeltaTable | None
    parts: list[str]
    writable: bool = True
    listing: Listing | None = None  # the index's active files (see `_listing`)
    actions: list[AddAction] = field(default_factory=list)
    pending: list[pl.DataFrame] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def files(self, filters: list[tuple[str, str, Any]]) -> list[str]:
        """The index files of the partitions matching `filters` (`=`/`in` on partition columns, `>=`/`<=` on
        `key`, pruned on each file's key range like deltalake's `file_pruning_predicate`).

        Filtered in memory from the listing kept per process: asking deltalake for the pruned file list
        walked every file of the index (thousands) several times per table of every batch, and a Polars filter
        of the whole listing cost ~5 ms a call (the demo's month: 35 s of its intake)."""
        if self.dt is None:
            return []
        if self.listing is None:  # a lake on object storage: no local log to follow, deltalake prunes
            return [u.removeprefix("file://") for u in self.dt.file_uris(file_pruning_predicate=filters)]
        return self.listing.select(filters)

    def add(self, table: str, data: pl.DataFrame, *, batch_id: str) -> None:
        """Write (not commit) the index files of a table's stored records (`data` as written, by month)."""
        rows = index_rows(table, data)
        if not self.writable:
            with self.lock:
                self.pending.append(rows)
            return
        if "year" in self.parts:
            rows = rows.with_columns(pl.col("month").str.slice(0, 4).alias("year"))
        actions = store.write_files(self.lake, KEYS_TABLE, rows, parts=self.parts, batch_id=batch_id)
        with self.lock:
            self.actions.extend(actions)


def open_index(lake: Lake) -> KeyIndex:
    """The key index brought up to date once, for one batch."""
    dt = store.handle(lake, KEYS_TABLE)
    parts = store.partitions(dt, KEYS_PARTITIONS)
    return KeyIndex(
        lake=lake,
        dt=dt,
        parts=parts,
        writable=dt is None or store.same_schema(dt, KEYS_SCHEMA),
        listing=None if dt is None or lake.remote else _listing(lake.path(KEYS_TABLE), dt, parts),
    )


_GROUPED = ("table", "org_code")  # the partition columns every lookup names: the listing is grouped on them


@dataclass(frozen=True)
class _File:
    path: str
    values: tuple[str | None, ...]  # the file's partition values, in the listing's `parts` order
    kmin: str | None  # the file's key range (Delta statistics; None: not known)
    kmax: str | None


@dataclass(frozen=True)
class Listing:
    """The index's active files at one version, grouped by table and institution (as far as they are partition
    columns). Never changed once made: a batch keeps the one it opened while later ones are made beside it."""

    version: int
    parts: list[str]
    groups: dict[tuple[str | None, ...], dict[str, _File]]
    where: dict[str, tuple[str | None, ...]]  # path -> its group

    def select(self, filters: list[tuple[str, str, Any]]) -> list[str]:
        """The paths of the files matching `filters` (see `KeyIndex.files`)."""
        checks: list[tuple[int, set[str]]] = []
        low = high = None
        fixed: dict[str, str] = {}
        for col, op, value in filters:
            if col == "key" and op == ">=":
                low = str(value)
            elif col == "key" and op == "<=":
                high = str(value)
            elif col in self.parts and op in ("=", "in"):
                allowed = {str(value)} if op == "=" else {str(v) for v in value}
                checks.append((self.parts.index(col), allowed))
                if op == "=":
                    fixed[col] = str(value)
            else:
                raise ValueError(f"unsupported index filter: {(col, op, value)!r}")
        grouped = [c for c in _GROUPED if c in self.parts]
        if all(c in fixed for c in grouped):
            found = self.groups.get(tuple(fixed[c] for c in grouped))
            candidates = list(found.values()) if found else []
        else:
            candidates = [f for group in self.groups.values() for f in group.values()]
        return [
            f.path
            for f in candidates
            if all(f.values[i] in allowed for i, allowed in checks)
            and (low is None or f.kmax is None or f.kmax >= low)
            and (high is None or f.kmin is None or f.kmin <= high)
        ]

    def changed(self, version: int, added: list[_File], removed: set[str]) -> Listing:
        """A new listing: this one with files added and removed (only the groups they touch are copied)."""
        groups, where = dict(self.groups), dict(self.where)
        copied: set[tuple[str | None, ...]] = set()

        def own(key: tuple[str | None, ...]) -> dict[str, _File]:
            if key not in copied:
                groups[key] = dict(groups.get(key, {}))
                copied.add(key)
            return groups[key]

        for path in removed:
            if (key := where.pop(path, None)) is not None:
                own(key).pop(path, None)
        for f in added:
            if (old := where.get(f.path)) is not None:
                own(old).pop(f.path, None)
            key = self.group_of(f.values)
            own(key)[f.path] = f
            where[f.path] = key
        return Listing(version, self.parts, {k: g for k, g in groups.items() if g}, where)

    def group_of(self, values: tuple[str | None, ...]) -> tuple[str | None, ...]:
        return tuple(values[self.parts.index(c)] for c in _GROUPED if c in self.parts)


def _new_listing(version: int, parts: list[str], files: list[_File]) -> Listing:
    return Listing(version, list(parts), {}, {}).changed(version, files, set())


_LISTED: dict[str, Listing] = {}
_LISTED_LOCK = threading.Lock()


def _listing(root: Path, dt: DeltaTable, parts: list[str]) -> Listing:
    """The index's active files at the handle's version (paths, partition values, each file's key range),
    kept per process and brought forward by reading only the new commits' JSON (our own batch's one commit,
    usually); rebuilt from deltalake's add actions when that is not possible (first use, a log cleaned up, a
    metadata change)."""
    log = root / "_delta_log"
    with _LISTED_LOCK:
        got = _LISTED.get(str(root))
        known = deltalog.known(log, dt)
        # the handle may lag this process's own appends (deltalog): the newest commit is found in the log
        version = deltalog.latest(log, known if got is None else max(known, got.version))
        if got is not None and got.version == version and got.parts == parts:
            return got
        listing = None
        if got is not None and got.version < version and got.parts == parts:
            listing = _replay(root, got, range(got.version + 1, version + 1))
        if listing is None:
            dt.update_incremental()
            listing = _from_actions(root, dt, parts)
        _LISTED[str(root)] = listing
        return listing


def _from_actions(root: Path, dt: DeltaTable, parts: list[str]) -> Listing:
    actions = pl.DataFrame(dt.get_add_actions(flatten=True))  # pa.table() would import pandas (~1 s)
    version = int(dt.version())
    if actions.height == 0:
        return _new_listing(version, parts, [])

    def col(name: str) -> pl.Expr:
        return (pl.col(name) if name in actions.columns else pl.lit(None)).cast(pl.String)

    base = f"{root}/"
    rows = actions.select(
        pl.col("path"), *[col(f"partition.{c}") for c in parts], col("min.key"), col("max.key")
    ).iter_rows()
    files = [_File(base + unquote(r[0]), tuple(r[1:-2]), r[-2], r[-1]) for r in rows]
    return _new_listing(version, parts, files)


def _replay(root: Path, listing: Listing, versions: range) -> Listing | None:
    """`listing` brought forward through the commits `versions` (None when a commit cannot be read or changes
    the table's metadata: the caller lists the table afresh)."""
    added: dict[str, _File] = {}
    removed: set[str] = set()
    base = f"{root}/"
    for v in versions:
        try:
            lines = (root / "_delta_log" / f"{v:020d}.json").read_text(encoding="utf-8").splitlines()
        except OSError:
            return None
        for line in lines:
            if not line.strip():
                continue
            action = json.loads(line)
            if "metaData" in action:
                return None
            if (add := action.get("add")) is not None:
                path = base + unquote(add["path"])
                stats = json.loads(add.get("stats") or "{}")
                values = add.get("partitionValues") or {}
                added[path] = _File(
                    path,
                    tuple(values.get(c) for c in listing.parts),
                    (stats.get("minValues") or {}).get("key"),
                    (stats.get("maxValues") or {}).get("key"),
                )
                removed.discard(path)
            elif (rem := action.get("remove")) is not None:
                path = base + unquote(rem["path"])
                added.pop(path, None)
                removed.add(path)
    return listing.changed(versions[-1] if versions else listing.version, list(added.values()), removed)


def index_rows(table: str, data: pl.DataFrame) -> pl.DataFrame:
    """A table's stored records as key-index rows (table, org_code, month, key, updated_at, op, _batch,
    amount, realtime, person)."""
    return data.select(
        pl.lit(table).alias("table"),
        pl.col("org_code"),
        pl.col("_month").alias("month"),
        pl.col("_key").alias("key"),
        pl.col("updated_at"),
        pl.col("_op").cast(pl.Int8).alias("op"),
        pl.col("_batch"),
        *rollup.measure_exprs(catalogue.get(table)),
    )


def commit(index: KeyIndex, *, batch_id: str) -> None:
    """One Delta commit of the key-index files the batch's table writers wrote."""
    lake = index.lake
    if index.pending:
        _write_keys(lake, keys=pl.concat(index.pending, how="vertical_relaxed"), batch_id=batch_id)
    if not index.actions:
        return
    target = store.handle(lake, KEYS_TABLE)
    if target is None:
        extra = [pa.field(c, pa.string()) for c in index.parts if c not in KEYS_SCHEMA.names]
        target = store.create_table(
            lake, KEYS_TABLE, schema=pa.schema([*KEYS_SCHEMA, *extra]), parts=index.parts, batch_id=batch_id
        )
    store.commit_files(target, index.actions, parts=index.parts, batch_id=batch_id)


def _write_keys(lake: Lake, *, keys: pl.DataFrame, batch_id: str) -> None:
    """Index rows through deltalake's writer (schema merge), for an index whose schema differs."""
    parts = store.partitions(store.handle(lake, KEYS_TABLE), KEYS_PARTITIONS)
    if "year" in parts:
        keys = keys.with_columns(pl.col("month").str.slice(0, 4).alias("year"))
    store.append(lake, KEYS_TABLE, keys.sort("table", "org_code", "month"), parts=parts, batch_id=batch_id)


def stored_state(
    index: KeyIndex,
    *,
    table: str,
    institution_code: str,
    months: list[str] | None,
    keys: pl.Series | None = None,
) -> pl.DataFrame:
    """Latest stored version per key for the months a batch touches (and, when given, only for `keys`: the
    batch's own keys, so the ordering work follows the batch, not the history): `_key`, `_prev` (its
    数据更新时间), `_prev_op`, and for the rollups `_prev_month`, `_prev_amount`, `_prev_realtime`,
    `_prev_person`.

    Only the index partitions (table, institution, year) of this batch are read, so the cost follows the
    size of those years, not of the whole history. `months=None` reads every year (for the few keys that
    must be found wherever they are: see `moved_state`).
    """
    empty = pl.DataFrame(
        schema={
            "_key": pl.String,
            "_prev": pl.Datetime("us", "UTC"),
            "_prev_op": pl.Int8,
            "_prev_month": pl.String,
            **{f"_prev_{m}": t for m, t in rollup.MEASURES.items()},
        }
    )
    if months is not None and not months:
        return empty
    where: list[tuple[str, str, Any]] = [("table", "=", table), ("org_code", "=", institution_code)]
    if months is not None:
        where.append(
            ("month", "in", list(months))
            if "month" in index.parts
            else ("year", "in", sorted({m[:4] for m in months}))
        )
    files = index.files(where + _key_range(keys))
    if not files:
        return empty
    scan = _scan(files, index.lake)
    if months is not None and "month" not in index.parts:
        # index files are sorted by month: row-group statistics skip the other months of a year partition
        scan = scan.filter(pl.col("month").is_in(list(months)))
    scan = scan.select("key", "updated_at", "op", "month", *rollup.MEASURES)
    if keys is not None:
        scan = scan.filter(pl.col("key").is_in(keys.implode()))
    return (
        scan.sort("updated_at")
        .group_by("key")
        .agg(
            pl.col("updated_at").last().alias("_prev"),
            pl.col("op").last().cast(pl.Int8).alias("_prev_op"),
            pl.col("month").last().alias("_prev_month"),
            *[pl.col(m).last().alias(f"_prev_{m}") for m in rollup.MEASURES],
        )
        .rename({"key": "_key"})
        .with_columns(pl.col("_prev").cast(pl.Datetime("us", "UTC")))
        .collect()
    )


def moved_state(
    index: KeyIndex, *, table: str, institution_code: str, incoming: pl.DataFrame, known: pl.DataFrame
) -> pl.DataFrame:
    """`known` (the stored state of a batch's keys in the months it touches) completed with the keys of its
    declared corrections and revocations (修改标志 2/3) that were not found there: a correction may move a
    record to another month (a wrong visit time), and it must still replace the version it corrects. Those
    few keys are looked up in every year of the index (files pruned on their key range)."""
    declared = incoming.filter(pl.col("change_flag") != OP_NEW).get_column("_key")
    if not declared.len():
        return known
    missing = declared.filter(~declared.is_in(known.get_column("_key").implode())).unique()
    if not missing.len():
        return known
    found = stored_state(index, table=table, institution_code=institution_code, months=None, keys=missing)
    return pl.concat([known, found], how="vertical_relaxed") if found.height else known


def stored_keys(
    index: KeyIndex, *, table: str, institution_code: str, wanted: pl.Series | None = None
) -> pl.Series:
    """The keys stored for a table and institution (for referential checks); with `wanted` (the keys a
    batch refers to), only those within its range: a batch referring to recent records then reads only
    the index files whose key range overlaps."""
    bounds = _key_range(wanted)
    files = index.files([("table", "=", table), ("org_code", "=", institution_code), *bounds])
    if not files:
        return pl.Series("_key", [], dtype=pl.String)
    scan = _scan(files, index.lake).select(pl.col("key").cast(pl.String).alias("_key"))
    if bounds:
        scan = scan.filter(pl.col("_key").is_between(pl.lit(bounds[0][2]), pl.lit(bounds[1][2])))
    return scan.collect().get_column("_key")


def _key_range(keys: pl.Series | None) -> list[tuple[str, str, Any]]:
    """File filters on the index files' key statistics (min/max in the Delta log) covering `keys`."""
    if keys is None or keys.len() == keys.null_count():
        return []
    lo, hi = keys.min(), keys.max()
    return [("key", ">=", str(lo)), ("key", "<=", str(hi))]


def _scan(files: list[str], lake: Lake) -> pl.LazyFrame:
    """Index files read by Polars (not pyarrow, whose thread pool the CSV reader keeps busy meanwhile)."""
    return pl.scan_parquet(
        files,
        storage_options=lake.storage_options or None,
        schema=_READ_SCHEMA,
        glob=False,
        hive_partitioning=False,
        missing_columns="insert",
        extra_columns="ignore",
    )


def classify(incoming: pl.DataFrame, stored: pl.DataFrame) -> pl.Series:
    """Dedup outcome per incoming row (same order) as an `_op` code: OP_NEW, OP_UPDATE, OP_REVOKE, or
    OP_DUPLICATE (not stored).

    `incoming` has _key, updated_at (UTC), change_flag (1/2/3) and _row; the latest 数据更新时间 wins and
    anything not newer than what is already known (stored or earlier in this batch) is a duplicate.
    """
    if incoming.height == 0:
        return pl.Series("_op", [], dtype=pl.Int8)
    # keys sent more than once, found on 64-bit hashes (a third of the cost of hashing the strings
    # again): a collision only sends a few more rows down the exact, ordered path below
    repeated = incoming.get_column("_key").hash().is_duplicated()
    joined = incoming.select("_key", "updated_at", "change_flag", "_row")
    if stored.height:
        joined = joined.join(stored, on="_key", how="left", maintain_order="left")
    else:
        joined = joined.with_columns(pl.lit(None, pl.Datetime("us", "UTC")).alias("_prev"))
    ops = joined.select(_op_expr(pl.col("_prev")).alias("_op")).get_column("_op")
    if repeated.any():
        # keys sent more than once in this batch: ordered by 数据更新时间 (then row), each version is
        # also compared with the latest earlier one; only those rows are sorted, then put back in place
        again = (
            joined.with_row_index("_pos")
            .filter(repeated)
            .sort("_key", "updated_at", "_row")
            .with_columns(pl.col("updated_at").cum_max().shift(1).over("_key").alias("_earlier"))
            .select("_pos", _op_expr(pl.max_horizontal("_earlier", "_prev")).alias("_op"))
        )
        ops = ops.scatter(again.get_column("_pos"), again.get_column("_op"))
    return ops


def _op_expr(known: pl.Expr) -> pl.Expr:
    """The dedup outcome code given the latest known 数据更新时间 of the key (null: never seen)."""
    return (
        pl.when(known.is_not_null() & (pl.col("updated_at") <= known))
        .then(pl.lit(OP_DUPLICATE, pl.Int8))
        .when(pl.col("change_flag") == OP_REVOKE)
        .then(pl.lit(OP_REVOKE, pl.Int8))
        .when(known.is_not_null())
        .then(pl.lit(OP_UPDATE, pl.Int8))
        .otherwise(pl.lit(OP_NEW, pl.Int8))
    )
