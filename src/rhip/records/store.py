"""The serving store: intake's committed batches absorbed into `records_entries` (one row per timeline
item, keyed by the institution's patient), so a record view reads indexed SQL and never scans the lake.

Sources and their display are data (`data/sources.yaml`); how rows become entries is `entries.py`. At
commit intake hands over the frames it stored; otherwise a batch's rows are read from the lake by its
`_batch` tag. Entries are written in bulk on the transaction's connection (`db.bulk`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.compute as pc
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.db import bulk
from rhip.lake.store import Lake
from rhip.records import entries
from rhip.records.entries import Frames
from rhip.records.models import RecordEntry, SyncedBatch

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Items:
    """A detail table summarised into its parent entry (lab results into their report)."""

    table: str
    key: str
    fields: tuple[str, ...]
    abnormal_field: str | None = None
    abnormal_values: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Source:
    """How one catalogue table becomes timeline entries."""

    table: str
    kind: str
    time: str
    patient: str
    title: str
    code: str | None
    detail: tuple[str, ...]
    abnormal_field: str | None = None
    abnormal_values: frozenset[str] = frozenset()
    items: Items | None = None
    fields: tuple[str, ...] = field(default=())


@cache
def _config() -> dict[str, Any]:
    return yaml.safe_load((DATA / "sources.yaml").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@cache
def sources() -> dict[str, Source]:
    """Every source table by name."""
    out = {}
    for name, c in _config()["sources"].items():
        ab = c.get("abnormal") or {}
        it = c.get("items")
        items = None
        if it:
            iab = it.get("abnormal") or {}
            items = Items(
                it["table"], it["key"], tuple(it["fields"]), iab.get("field"), frozenset(iab.get("in", []))
            )
        out[name] = Source(
            table=name,
            kind=c["kind"],
            time=c["time"],
            patient=c["patient"],
            title=c["title"],
            code=c.get("code"),
            detail=tuple(c["detail"]),
            abnormal_field=ab.get("field"),
            abnormal_values=frozenset(ab.get("in", [])),
            items=items,
        )
    return out


def kind_labels() -> dict[str, str]:
    """Chinese names of the timeline kinds."""
    return dict(_config()["kinds"])


def _read(lake: Lake, table: str, batch_ids: Sequence[str], columns: Iterable[str]) -> pl.DataFrame | None:
    """The rows of these batches in one lake table (only the columns named)."""
    name = f"ods_{table}"
    if not lake.exists(name):
        return None
    ds = lake.dataset(name).to_pyarrow_dataset()
    wanted = list(dict.fromkeys(["_batch", "_key", "_op", "_row", "org_code", "updated_at", *columns]))
    have = [c for c in wanted if c in ds.schema.names]
    tbl = ds.to_table(columns=have, filter=pc.field("_batch").isin(list(batch_ids)))
    if tbl.num_rows == 0:
        return None
    df = pl.from_arrow(tbl)
    assert isinstance(df, pl.DataFrame)
    return df


def lake_frames(lake: Lake, batch_ids: Sequence[str]) -> Frames:
    """Rows of these batches, read from the lake by their `_batch` tag."""
    return lambda table, columns: _read(lake, table, batch_ids, columns)


def stored_frames(stored: Mapping[str, pl.DataFrame]) -> Frames:
    """Rows a batch has just stored (intake's frames at commit: no lake read)."""

    def get(table: str, columns: Iterable[str]) -> pl.DataFrame | None:
        df = stored.get(table)
        if df is None or df.height == 0:
            return None
        return df.select(
            [
                c
                for c in dict.fromkeys(["_key", "_op", "org_code", "updated_at", "_batch", "_row", *columns])
                if c in df.columns
            ]
        )

    return get


def _db_rows(df: pl.DataFrame, dialect: str) -> Iterator[tuple[Any, ...]]:
    """Entries as the driver takes them: times as the text SQLAlchemy stores (SQLite) or timestamptz text."""
    fmt = "%Y-%m-%d %H:%M:%S%.6f" + ("+00:00" if dialect == "postgresql" else "")
    return df.with_columns(pl.col("occurred_at", "updated_at").dt.to_string(fmt)).iter_rows()


@dataclass(frozen=True)
class Built:
    """A batch's timeline entries as the driver takes them, built before its commit (no database needed):
    per source, the keys it revoked and its entries. Intake builds them outside the lock that its commits
    take turns under, so only the writes are serial across the demo's processes."""

    dialect: str
    parts: list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]  # (revoked keys, entries) per source

    @property
    def entries(self) -> int:
        return sum(len(got) for _gone, got in self.parts)


def build(frames: Frames, *, dialect: str) -> Built:
    """Every source's entries and revoked keys from `frames`."""
    at = now()
    parts = []
    for src in sources().values():
        got, gone = entries.build(frames, src, at=at)
        rows: list[tuple[Any, ...]] = []
        if got is not None and got.height:
            # keys are unique per source after `entries.latest`, but for two business keys that share their
            # first 200 characters; one INSERT … ON CONFLICT may not touch a row twice on PostgreSQL
            got = got.unique(subset=list(entries.KEY), keep="last", maintain_order=True)
            rows = list(_db_rows(got, dialect))
        parts.append((list(gone.iter_rows()) if gone is not None and gone.height else [], rows))
    return Built(dialect, parts)


def _write(session: Session, built: Built) -> int:
    """Every source's revoked keys deleted and its entries upserted, on the session's connection."""
    conn = session.connection()
    if conn.dialect.name != built.dialect:
        raise ValueError(f"entries built for {built.dialect}, written to {conn.dialect.name}")
    table = RecordEntry.__tablename__
    for gone, got in built.parts:
        if gone:
            bulk.delete_keys(conn, table, entries.KEY, gone)
        if got:
            bulk.upsert(conn, table, entries.COLUMNS, entries.KEY, got)
    return built.entries


def absorb(session: Session, lake: Lake, batch_ids: Sequence[str]) -> int:
    """Absorb committed intake batches from the lake (idempotent: batches already absorbed are skipped)."""
    done = set(
        session.scalars(select(SyncedBatch.batch_id).where(SyncedBatch.batch_id.in_(list(batch_ids)))).all()
    )
    todo = [b for b in batch_ids if b not in done]
    if not todo:
        return 0
    written = _write(session, build(lake_frames(lake, todo), dialect=session.connection().dialect.name))
    session.add_all(SyncedBatch(batch_id=b, entries=0, synced_at=now()) for b in todo)
    session.flush()
    return written


def build_stored(stored: Mapping[str, pl.DataFrame], *, dialect: str) -> Built | None:
    """The entries of the rows a batch stored (None: none of its tables is a source)."""
    if not any(t in stored for t in _tables()):
        return None
    return build(stored_frames(stored), dialect=dialect)


def absorb_stored(
    session: Session, *, batch_id: str, stored: Mapping[str, pl.DataFrame], built: Built | None = None
) -> int:
    """Absorb the rows a batch stored, in its commit transaction (intake calls this at commit), from the
    entries built beforehand when given."""
    if built is None:
        built = build_stored(stored, dialect=session.connection().dialect.name)
    if built is None:
        return 0
    written = _write(session, built)
    session.add(SyncedBatch(batch_id=batch_id, entries=written, synced_at=now()))
    session.flush()
    return written


@cache
def _tables() -> frozenset[str]:
    return frozenset(t for s in sources().values() for t in (s.table, *((s.items.table,) if s.items else ())))
