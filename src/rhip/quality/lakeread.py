"""Reading intake's lake tables for the figures: DuckDB over each Delta table's active Parquet files.

DuckDB's own Parquet reader is several times faster than scanning through a PyArrow dataset (no
conversion of every string column into DuckDB vectors, filters evaluated before other columns are
decoded, row groups skipped on their statistics) and it opens many small files in parallel. The file list
comes from the Delta log, so what is read is exactly the table's current version whatever its layout
(partitioned by `_month` or not, few files or many). Tables that use Delta features this path does not
implement (deletion vectors, column mapping) or whose partition values are not plain words are read
through the PyArrow dataset instead, which deltalake resolves fully.

A reader may see only a range of institution codes (`orgs`): every figure is per institution and the
current-record rule is per institution and key, so the ranges of a cluster job's tasks partition the work
exactly; files whose statistics lie outside the range are not opened.

Results are cached per reader *and* per process, keyed by the statement, its parameters and the Delta
version of every table it reads: a Delta version is an immutable snapshot, so a repeated figure (the demo's
quality step then its bulletin, the portal's page then its PDF) is not recomputed until a table changes.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
from deltalake import DeltaTable

from rhip.lake.cluster import OrgRange
from rhip.lake.duck import Duck
from rhip.lake.sql import Sql, ident
from rhip.lake.store import Lake

_PLAIN = re.compile(r"^[A-Za-z0-9_.=/-]*$")
_UNSUPPORTED = {"deletionVectors", "columnMapping"}
_TYPES = {"string": "VARCHAR"}
_CACHE_SIZE = 256
_cache: OrderedDict[tuple[Any, ...], list[tuple[Any, ...]]] = OrderedDict()
_cache_lock = threading.Lock()


def in_range(lo: object, hi: object, orgs: OrgRange | None) -> bool:
    """Whether a file whose org_code statistics run from `lo` to `hi` (None: unknown) may hold a code of
    the range."""
    if orgs is None:
        return True
    start, end = orgs
    if start is not None and hi is not None and str(hi) < start:
        return False
    return not (end is not None and lo is not None and str(lo) >= end)


def data_table(catalogue_table: str) -> str:
    """The lake table intake stores a catalogue table's records in."""
    return f"ods_{catalogue_table}"


@dataclass(frozen=True)
class _Files:
    paths: list[str]  # the table's active Parquet files
    partitions: list[str]  # its partition columns
    changed: list[str]  # the files that may hold corrections or revocations (修改标志 2 or 3)
    certain: bool  # every one of them is known from its statistics to hold at least one


def changed_view(name: str) -> str:
    """The name of the view over the files of a lake table that hold corrections or revocations."""
    ident(name)
    return f"{name}__changed"


def _native_files(dt: DeltaTable, orgs: OrgRange | None = None) -> _Files | None:
    """The table's files when DuckDB can read them as they are, else None."""
    proto = dt.protocol()
    features = set(proto.reader_features or ())
    if proto.min_reader_version > 3 or features & _UNSUPPORTED:
        return None
    meta = dt.metadata()
    if meta.configuration.get("delta.columnMapping.mode", "none") != "none":
        return None
    parts = list(meta.partition_columns)
    schema = {f.name: f.type for f in dt.schema().fields}
    if any(getattr(schema.get(p), "type", None) not in _TYPES for p in parts):
        return None
    actions = dt.get_add_actions(flatten=True)
    for p in parts:
        values = actions.column(f"partition.{p}").to_pylist()
        if any(v is None or not _PLAIN.match(str(v)) for v in values):
            return None
    root = dt.table_uri.removeprefix("file://")
    if "://" in root:
        return None
    rel = [str(p) for p in actions.column("path").to_pylist()]
    if any(not _PLAIN.match(p) or p.startswith("/") for p in rel):
        return None
    paths = [os.path.join(root, p) for p in rel]
    keep = [True] * len(paths)
    if orgs is not None and "min.org_code" in actions.column_names:
        lows, highs = actions.column("min.org_code").to_pylist(), actions.column("max.org_code").to_pylist()
        keep = [in_range(lo, hi, orgs) for lo, hi in zip(lows, highs, strict=True)]
        paths = [p for p, k in zip(paths, keep, strict=True) if k]
    # the Delta log's per-file statistics say which files hold a row with 修改标志 2 or 3 (no statistics:
    # any file may)
    if "max._op" in actions.column_names:
        top = [mx for mx, k in zip(actions.column("max._op").to_pylist(), keep, strict=True) if k]
        changed = [f for f, mx in zip(paths, top, strict=True) if mx is None or int(mx) > 1]
        certain = all(mx is not None for mx in top)
    else:
        changed, certain = list(paths), False
    return _Files(paths, parts, changed, certain)


class LakeReader:
    """DuckDB over the lake tables a query names, each opened once per reader at its current version."""

    def __init__(
        self,
        lake: Lake,
        duck: Duck | None = None,
        *,
        orgs: OrgRange | None = None,
        threads: int | None = None,
    ) -> None:
        self.lake = lake
        self.con = duck.con if duck is not None else duckdb.connect(":memory:")
        self._own = duck is None
        if threads and self._own:
            self.con.execute(f"SET threads={int(threads)}")
        self.orgs = orgs
        self._versions: dict[str, tuple[str, int]] = {}
        self.present = set(lake.tables())
        self.native: dict[str, bool] = {}
        self._changed: dict[str, str | None] = {}
        self._certain: dict[str, bool] = {}

    def has(self, catalogue_table: str) -> bool:
        """Whether the lake holds records of a catalogue table."""
        return data_table(catalogue_table) in self.present

    def _open(self, name: str) -> None:
        ident(name)
        dt = self.lake.dataset(name)
        # a table re-created at the same path gets a new id: (id, version) names one snapshot
        self._versions[name] = (str(dt.metadata().id), int(dt.version()))
        found = _native_files(dt, self.orgs)
        if found and found.paths:
            parts = found.partitions
            rel = self._scan(found.paths, parts)
            types = dict(zip(rel.columns, (str(t) for t in rel.types), strict=True))
            if all(types.get(p) == "VARCHAR" for p in parts):
                rel.create_view(name, replace=True)
                self.native[name] = True
                self._changed[name] = None
                self._certain[name] = found.certain
                if found.changed and len(found.changed) < len(found.paths):
                    self._scan(found.changed, parts).create_view(changed_view(name), replace=True)
                    self._changed[name] = changed_view(name)
                elif found.changed:
                    self._changed[name] = name
                return
        self._register_arrow(name, dt)
        self.native[name] = False
        self._changed[name] = name
        self._certain[name] = False

    def _register_arrow(self, name: str, dt: DeltaTable) -> None:
        """The fallback: the table as a PyArrow dataset, its timestamps shielded from filter pushdown."""
        raw = f"{name}__arrow"
        dataset = dt.to_pyarrow_dataset()
        if self.orgs is not None:
            dataset = dataset.filter(self._org_filter())
        self.con.register(raw, dataset)
        # DuckDB pushes a comparison of a timestamp-with-zone column into the PyArrow scan wrongly (no row
        # survives); a zero interval keeps such filters in DuckDB, which compares instants correctly
        stamps = [f.name for f in dataset.schema if pa.types.is_timestamp(f.type)]
        if not stamps:
            self.con.execute(f"CREATE OR REPLACE VIEW {ident(name)} AS SELECT * FROM {ident(raw)}")
            return
        replace = ", ".join(f"{ident(c)} + INTERVAL 0 MICROSECONDS AS {ident(c)}" for c in stamps)
        view = f"CREATE OR REPLACE VIEW {ident(name)} AS SELECT * REPLACE ({replace}) FROM {ident(raw)}"
        self.con.execute(view)

    def _scan(self, paths: list[str], parts: list[str]) -> duckdb.DuckDBPyRelation:
        """The files as one relation; partition columns stay strings, as Delta declares them."""
        rel = self.con.read_parquet(paths, hive_partitioning=bool(parts), union_by_name=True)
        types = dict(zip(rel.columns, (str(t) for t in rel.types), strict=True))
        # DuckDB guesses hive values' types: `_year=2024` would come back as a BIGINT
        cast = [p for p in parts if p in types and types[p] != "VARCHAR"]
        if cast:
            replace = ", ".join(f"CAST({ident(p)} AS VARCHAR) AS {ident(p)}" for p in cast)
            rel = rel.project(f"* REPLACE ({replace})")
        if self.orgs is None:
            return rel
        # an expression, not SQL text: the range's codes are values
        col, (start, end) = duckdb.ColumnExpression("org_code"), self.orgs
        if start is not None:
            rel = rel.filter(col >= duckdb.ConstantExpression(start))
        if end is not None:
            rel = rel.filter(col < duckdb.ConstantExpression(end))
        return rel

    def _org_filter(self) -> pads.Expression:
        """The range as a PyArrow filter (the fallback path)."""
        assert self.orgs is not None
        start, end = self.orgs
        expr = pads.scalar(True)
        if start is not None:
            expr = expr & (pads.field("org_code") >= start)
        if end is not None:
            expr = expr & (pads.field("org_code") < end)
        return expr

    def version(self, catalogue_table: str) -> tuple[str, int]:
        """The Delta table id and version this reader sees of a catalogue table (opening it if needed)."""
        name = data_table(catalogue_table)
        if name not in self._versions:
            self._open(name)
        return self._versions[name]

    def changed_source(self, catalogue_table: str) -> str | None:
        """The relation holding every stored correction or revocation of a table (None: there is none)."""
        self.version(catalogue_table)
        return self._changed[data_table(catalogue_table)]

    def changes_certain(self, catalogue_table: str) -> bool:
        """Whether the Delta statistics alone prove that a table holds a correction or revocation."""
        source = self.changed_source(catalogue_table)
        return source is not None and self._certain[data_table(catalogue_table)]

    def rows(self, sql: Sql, *catalogue_tables: str) -> list[tuple[Any, ...]]:
        """Run a statement over the named catalogue tables' lake tables (cached per table versions)."""
        versions = tuple((t, self.version(t)) for t in catalogue_tables)
        key = (self.lake.uri, self.orgs, sql.text, repr(sorted(sql.params.items())), versions)
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None:
                _cache.move_to_end(key)
                return hit
        got = self.con.execute(sql.text, sql.params).fetchall()
        with _cache_lock:
            _cache[key] = got
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        return got

    def close(self) -> None:
        """Close the connection when this reader made it."""
        if self._own:
            self.con.close()


def clear_cache() -> None:
    """Forget every cached result (tests that rewrite a lake in place at the same version)."""
    with _cache_lock:
        _cache.clear()
