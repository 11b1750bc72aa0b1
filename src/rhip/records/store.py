"""The serving store: intake's committed batches absorbed into `records_entries` (one row per timeline
item, keyed by the institution's patient), so a record view reads indexed SQL and never scans the lake.

Sources and their display are data (`data/sources.yaml`). A batch's rows are read from the lake by its
`_batch` tag; the latest version of each key wins, a revocation (修改标志 3) deletes the entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.compute as pc
import yaml
from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from rhip.clock import SHANGHAI, now
from rhip.db.engine import dialect_insert
from rhip.lake.store import Lake
from rhip.records.models import RecordEntry, SyncedBatch

DATA = Path(__file__).parent / "data"
OP_REVOKE = 3
CHUNK = 2000


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


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    return v


def _moment(v: Any) -> datetime | None:
    """An event time from the lake (naive values are Shanghai local time, as institutions send them)."""
    if v is None:
        return None
    if isinstance(v, str):
        try:
            v = datetime.fromisoformat(v)
        except ValueError:
            return None
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=SHANGHAI)).astimezone(UTC)
    if isinstance(v, date):
        return datetime.combine(v, time(0, 0), SHANGHAI).astimezone(UTC)
    return None


class _Fmt(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def _title(template: str, row: dict[str, Any]) -> str:
    # only the template's own fields are converted (every column of every row was, ~a sixth of absorbing)
    values = _Fmt({k: ("" if (v := row.get(k)) is None else _plain(v)) for k in _fields(template)})
    return template.format_map(values).strip()[:200] or "—"


@cache
def _fields(template: str) -> tuple[str, ...]:
    return tuple(n[1:-1] for n in _placeholders(template))


def _latest(df: pl.DataFrame) -> pl.DataFrame:
    """The newest version of each key (by 数据更新时间, then batch and row)."""
    order = [c for c in ("updated_at", "_batch", "_row") if c in df.columns]
    return df.sort(order).unique(subset=["org_code", "_key"], keep="last", maintain_order=True)


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


Frames = Callable[[str, Iterable[str]], "pl.DataFrame | None"]


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


def _needs_plain(dtype: pl.DataType) -> bool:
    """Whether a column's values need `_plain` (dates, times, decimals); others are JSON-ready as they are."""
    return dtype.is_temporal() or isinstance(dtype, pl.Decimal)


def _items_by_parent(frames: Frames, items: Items) -> dict[tuple[str, str], list[dict[str, Any]]]:
    df = frames(items.table, [items.key, *items.fields])
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if df is None:
        return out
    df = _latest(df).filter(pl.col("_op") != OP_REVOKE)
    # plain tuples and a per-column conversion, not a dict and an isinstance chain per value
    fields = [(f, _needs_plain(df.schema[f])) for f in items.fields if f in df.columns]
    cols = [
        pl.col("org_code").alias("_org"),
        pl.col(items.key).alias("_parent"),
        *(pl.col(f) for f, _p in fields),
    ]
    for org, parent, *values in df.select(cols).iter_rows():
        out.setdefault((org, str(parent)), []).append(
            {f: (_plain(v) if p else v) for (f, p), v in zip(fields, values, strict=True) if v is not None}
        )
    return out


def _id_number(v: Any) -> str | None:
    s = str(v or "").strip().upper()
    return s if len(s) == 18 else None


def _entries(frames: Frames, src: Source) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    """(entries to upsert, keys to delete) for one source over these batches."""
    cols = {src.time, src.patient, *src.detail, "id_number"}
    if src.code:
        cols.add(src.code)
    if src.abnormal_field:
        cols.add(src.abnormal_field)
    cols |= {n[1:-1] for n in _placeholders(src.title)}
    df = frames(src.table, cols)
    if df is None:
        return [], []
    df = _latest(df)
    details = [(f, _needs_plain(df.schema[f])) for f in src.detail if f in df.columns]
    items = _items_by_parent(frames, src.items) if src.items else {}
    t = now()
    rows: list[dict[str, Any]] = []
    gone: list[tuple[str, str, str]] = []
    for r in df.iter_rows(named=True):
        key = str(r["_key"])[:200]
        if r["_op"] == OP_REVOKE:
            gone.append((r["org_code"], src.table, key))
            continue
        at = _moment(r.get(src.time))
        patient = r.get(src.patient)
        if at is None or not patient:
            continue
        detail = {f: (_plain(v) if p else v) for f, p in details if (v := r[f]) is not None and v != ""}
        abnormal = bool(src.abnormal_field and str(r.get(src.abnormal_field) or "") in src.abnormal_values)
        if src.items:
            its = items.get((r["org_code"], str(r.get(src.items.key))), [])
            if its:
                detail["items"] = its
                af = src.items.abnormal_field
                if af and any(str(i.get(af) or "") in src.items.abnormal_values for i in its):
                    abnormal = True
        rows.append(
            {
                "institution_code": r["org_code"],
                "patient_key": str(patient)[:64],
                "id_number": _id_number(r.get("id_number")),
                "source": src.table,
                "business_key": key,
                "kind": src.kind,
                "occurred_at": at,
                "title": _title(src.title, r),
                "code": (str(r[src.code])[:50] if src.code and r.get(src.code) is not None else None),
                "abnormal": abnormal,
                "detail": detail,
                "updated_at": t,
            }
        )
    return rows, gone


def _placeholders(template: str) -> list[str]:
    return re.findall(r"\{[a-z_0-9]+\}", template)


def upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert or replace entries by (institution, source, business key).

    One statement compiled once and executed with the rows as parameters (SQLAlchemy's insertmanyvalues
    batches them): `insert().values(rows)` compiled a new statement of every chunk's rows, ~10x the CPU,
    and was most of an intake batch's commit time."""
    if not rows:
        return
    stmt = dialect_insert(session, RecordEntry)
    keep = ("institution_code", "source", "business_key")
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keep), set_={c: stmt.excluded[c] for c in rows[0] if c not in keep}
    )
    for i in range(0, len(rows), CHUNK):
        session.execute(stmt, rows[i : i + CHUNK])


def _write(session: Session, frames: Frames) -> int:
    written = 0
    for src in sources().values():
        rows, gone = _entries(frames, src)
        for i in range(0, len(gone), CHUNK):
            session.execute(
                delete(RecordEntry).where(
                    tuple_(RecordEntry.institution_code, RecordEntry.source, RecordEntry.business_key).in_(
                        gone[i : i + CHUNK]
                    )
                )
            )
        upsert(session, rows)
        written += len(rows)
    return written


def absorb(session: Session, lake: Lake, batch_ids: Sequence[str]) -> int:
    """Absorb committed intake batches from the lake (idempotent: batches already absorbed are skipped)."""
    done = set(
        session.scalars(select(SyncedBatch.batch_id).where(SyncedBatch.batch_id.in_(list(batch_ids)))).all()
    )
    todo = [b for b in batch_ids if b not in done]
    if not todo:
        return 0
    written = _write(session, lake_frames(lake, todo))
    session.add_all(SyncedBatch(batch_id=b, entries=0, synced_at=now()) for b in todo)
    session.flush()
    return written


def absorb_stored(session: Session, *, batch_id: str, stored: Mapping[str, pl.DataFrame]) -> int:
    """Absorb the rows a batch stored, in its commit transaction (intake calls this at commit)."""
    if not any(t in stored for t in _tables()):
        return 0
    written = _write(session, stored_frames(stored))
    session.add(SyncedBatch(batch_id=batch_id, entries=written, synced_at=now()))
    session.flush()
    return written


@cache
def _tables() -> frozenset[str]:
    return frozenset(t for s in sources().values() for t in (s.table, *((s.items.table,) if s.items else ())))
