"""Rebuilding intake's rollups from the lake (`rhip intake rebuild-rollups [--month M]`), on a cluster.

The rollups (intake/rollup.py) are deltas kept at every batch's commit; a lake ingested before a rollup
existed, or rollups damaged by hand, are rebuilt here from the stored records with the same code the commit
path uses (`rollup.of_table`), fed with each key's current version as if it were one batch of new records:

- the current versions: every stored row with 修改标志 1 whose key was never changed, plus the latest
  (数据更新时间, then ingest, then row) of each changed key's 2/3 versions when that is not a revocation;
  only the few changed rows are ranked, over every month (a correction may move a record to another month);
- upload days from every stored version (an upload day is a day something was sent in real time).

The work is split into one task per table and range of institution codes (every rollup row is one
institution's); the tasks only read and count. The client then COPYs the rows into temporary staging
tables and swaps them for the months' rows in ONE SQL transaction (a DELETE and an INSERT ... SELECT per
table inside the database, not a client-side INSERT of every row), so a job that fails — a task's error,
a worker lost more often than its retries allow — leaves the old rollups untouched, never half of them.
`intake_people_first` is recounted from `intake_people_months` in the same transaction (a person's first
month depends on every month).

Run it while no batch commits (a batch committing meanwhile would be counted by the rebuild or by its own
deltas, not exactly once); pending batches' rows are never counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pyarrow.dataset as pads
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from rhip import months as month_math
from rhip.db import bulk
from rhip.intake import rollup
from rhip.intake.models import (
    IntakeActivity,
    IntakeBatch,
    IntakePeopleFirst,
    IntakePersonMonth,
    IntakeRealtimeDays,
)
from rhip.intake.store import OP_NEW, OP_REVOKE, OP_UPDATE, data_table
from rhip.lake.cluster import (
    TASKS_PER_WORKER,
    Job,
    OrgRange,
    check_readable,
    tables_of,
    task_threads,
    weighted_ranges,
    worker_threads,
)
from rhip.lake.store import Lake
from rhip.registry import catalogue

_ORDER = ["updated_at", "_ingested_at", "_row"]  # the current version is the last in this order


def _empty() -> pl.DataFrame:
    return pl.DataFrame()


@dataclass
class Rebuilt:
    """A rebuild's rows, ready to replace the rollups of its months (all months when `months` is None):
    one frame per rollup table, its columns named as the table's."""

    months: list[str] | None
    tables: list[str]
    activity: pl.DataFrame = field(default_factory=_empty)
    days: pl.DataFrame = field(default_factory=_empty)
    people: pl.DataFrame = field(default_factory=_empty)


def _filter(orgs: OrgRange, pending: list[str], extra: pads.Expression | None) -> pads.Expression:
    """Rows of the range's institutions, of committed batches, passing `extra`."""
    expr = ~pads.field("_batch").isin(pending) if pending else pads.scalar(True)
    start, end = orgs
    if start is not None:
        expr = expr & (pads.field("org_code") >= start)
    if end is not None:
        expr = expr & (pads.field("org_code") < end)
    return expr if extra is None else expr & extra


def _read(dataset: pads.Dataset, columns: list[str], where: pads.Expression) -> pl.DataFrame:
    got = dataset.to_table(columns=columns, filter=where, use_threads=worker_threads() is None)
    out = pl.from_arrow(got)
    assert isinstance(out, pl.DataFrame)
    return out


def _rows(frames: list[pl.DataFrame], months: list[str] | None) -> pl.DataFrame | None:
    """The rollup rows as the SQL table names its columns (a frame crosses the network faster than dicts)."""
    if not frames:
        return None
    out = pl.concat(frames, how="vertical_relaxed")
    if months is not None:
        out = out.filter(pl.col("month").is_in(months))
    return out.rename({"org_code": "institution_code"})


def _table_task(
    item: tuple[str, OrgRange], *, lake: Lake, months: list[str] | None, pending: list[str]
) -> tuple[pl.DataFrame | None, pl.DataFrame | None, pl.DataFrame | None]:
    """One table's rollup rows for one range of institutions (runs on a worker): activity, days, people."""
    table, orgs = item
    task_threads()
    ds = catalogue.get(table)
    dt = lake.dataset(data_table(table))
    check_readable(dt, data_table(table))
    dataset = dt.to_pyarrow_dataset()
    event = ds.event_time or "updated_at"
    names = set(dataset.schema.names)
    wanted = [
        "org_code",
        "_key",
        "_op",
        "_month",
        "_row",
        "_ingested_at",
        "updated_at",
        "collected_at",
        event,
    ]
    wanted += [c for c in (ds.amount, ds.person) if c]
    columns = [c for c in dict.fromkeys(wanted) if c in names]
    # the months' rows (for upload days the month before too: a real-time record collected in a month may
    # have its event in the one before), then every changed key's versions, whatever their month: those of
    # the months read are taken from their rows, only the other months' partitions are read for them (each
    # file is decoded once)
    is_changed = pads.field("_op") >= OP_UPDATE
    if months is None:
        stored = _read(dataset, columns, _filter(orgs, pending, None))
        changed = stored.filter(pl.col("_op") >= OP_UPDATE)
    else:
        around = sorted({*months, *(month_math.shift(m, -1) for m in months)})
        stored = _read(dataset, columns, _filter(orgs, pending, pads.field("_month").isin(around)))
        elsewhere = _filter(orgs, pending, is_changed & ~pads.field("_month").isin(around))
        changed = pl.concat(
            [stored.filter(pl.col("_op") >= OP_UPDATE), _read(dataset, columns, elsewhere)],
            how="vertical_relaxed",
        )
    latest = changed.sort([*_ORDER]).unique(["org_code", "_key"], keep="last", maintain_order=True)
    fresh = stored.filter(pl.col("_op") == OP_NEW).join(
        latest.select("org_code", "_key"), on=["org_code", "_key"], how="anti"
    )
    current = pl.concat([fresh, latest.filter(pl.col("_op") != OP_REVOKE)], how="vertical_relaxed")
    if months is not None:
        current = current.filter(pl.col("_month").is_in(months))
    measures = rollup.measure_exprs(ds)
    # a business key is unique within one institution's records only (as in a batch, which is one
    # institution's): keyed by institution and key, all institutions go through `of_table` at once
    unique_key = pl.concat_str("org_code", pl.lit("\x1f"), "_key").alias("_key")
    measured = current.with_columns(*measures, unique_key)
    got = rollup.of_table(ds, measured, pl.DataFrame())
    activity, people = [_exact_amount(a, measured) if ds.amount else a for a in got.activity], got.people
    days = []
    if ds.realtime:
        days = rollup.of_table(ds, stored.with_columns(*measures, unique_key), pl.DataFrame()).days
    return _rows(activity, months), _rows(days, months), _rows(people, months)


def _exact_amount(activity: pl.DataFrame, current: pl.DataFrame) -> pl.DataFrame:
    """The activity rows with their amount summed as exact decimals (to the micro-yuan): a sum of doubles
    depends on the order of the rows, which Polars' threads (in one process) and the ranges of a cluster's
    tasks change, so the last bits differed between one process and the workers."""
    exact = current.group_by("org_code", pl.col("_month").alias("month")).agg(
        pl.col("amount").fill_null(0.0).cast(pl.Decimal(38, 6)).sum().cast(pl.Float64)
    )
    joined = activity.drop("amount").join(exact, on=["org_code", "month"], how="left")
    return joined.with_columns(pl.col("amount").fill_null(0.0)).select(activity.columns)


def compute(job: Job, *, lake: Lake, months: list[str] | None, pending: list[str]) -> Rebuilt:
    """The rollup rows of `months` (None: every month) from the lake, on the job's workers."""
    for m in months or []:
        month_math.check(m)
    tables = [ds.name for ds in catalogue.datasets() if lake.exists(data_table(ds.name))]
    items: list[tuple[str, OrgRange]] = []
    rows: list[int] = []
    # the tables are tasks already: a table is cut into ranges only as far as the workers need more tasks
    # (an institution spanning two of a sorted table's files has both decoded by the tasks on either side)
    per_table = -(-job.workers * TASKS_PER_WORKER // max(1, len(tables)))
    for table in tables:
        for r, n in weighted_ranges(tables_of(lake, [data_table(table)]), per_table):
            items.append((table, r))
            rows.append(n)
    # the largest tasks first, so the workers finish together on the small ones; the results in `items` order
    order = sorted(range(len(items)), key=lambda i: (-rows[i], i))
    done = job.run(_table_task, [items[i] for i in order], lake=lake, months=months, pending=pending)
    by_item = dict(zip(order, done, strict=True))
    parts = [by_item[i] for i in range(len(items))]

    def joined(i: int) -> pl.DataFrame:
        frames = [f for f in (p[i] for p in parts) if f is not None and f.height]
        return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()

    return Rebuilt(months=months, tables=tables, activity=joined(0), days=joined(1), people=joined(2))


def pending_batches(session: Session) -> list[str]:
    """Batches not yet committed: their rows are not counted."""
    return list(session.scalars(select(IntakeBatch.id).where(IntakeBatch.status == "pending")))


_FIRST_SQL = (
    "INSERT INTO intake_people_first (table_name, month, institution_code, n) "
    "SELECT table_name, first_month, institution_code, count(*) FROM ("
    "SELECT table_name, institution_code, person, min(month) AS first_month FROM intake_people_months "
    "WHERE n > 0 AND month <> :no_month GROUP BY table_name, institution_code, person) AS f "
    "GROUP BY table_name, first_month, institution_code"
)
_STAGED: tuple[type[Any], ...] = (IntakeActivity, IntakeRealtimeDays, IntakePersonMonth)


def staging_name(model: type[Any]) -> str:
    """The temporary staging table a rebuild fills for a rollup table."""
    return f"rebuild_{model.__tablename__}"


def _stage(session: Session, model: type[Any], frame: pl.DataFrame) -> list[str]:
    """The frame COPYed into the rollup table's staging table (empty first: a pooled connection may keep
    one from an earlier rebuild), so no client-side INSERT of every row is built."""
    conn = session.connection()
    table, staging = model.__tablename__, staging_name(model)
    # a temporary table of the rollup's columns and types, without its keys: a duplicate fails at the swap
    conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {staging} AS SELECT * FROM {table} WHERE 1 = 0")
    conn.exec_driver_sql(f"DELETE FROM {staging}")
    columns = [c.name for c in model.__table__.columns if c.name in frame.columns]
    if frame.height:
        bulk.fill(conn, staging, columns, frame.select(columns).iter_rows())
    return columns if frame.height else []


def replace(session: Session, rebuilt: Rebuilt) -> None:
    """Put the rebuilt rows in place of the months' rollups (in the caller's transaction, which must be the
    only one: the rollups are never seen half replaced). The rows go into staging tables through COPY
    first; the swap is then a DELETE and an INSERT ... SELECT per table, inside the database."""
    frames = (rebuilt.activity, rebuilt.days, rebuilt.people)
    staged = [_stage(session, model, frame) for model, frame in zip(_STAGED, frames, strict=True)]
    for model in _STAGED:
        stmt = delete(model)
        if rebuilt.months is not None:
            stmt = stmt.where(model.month.in_(rebuilt.months))
        session.execute(stmt)
    for model, columns in zip(_STAGED, staged, strict=True):
        staging = staging_name(model)
        if columns:
            cols = ", ".join(columns)
            session.execute(text(f"INSERT INTO {model.__tablename__} ({cols}) SELECT {cols} FROM {staging}"))
            session.execute(text(f"DELETE FROM {staging}"))
    # a person's first month depends on every month: recounted from the months table
    session.execute(delete(IntakePeopleFirst))
    session.execute(text(_FIRST_SQL), {"no_month": rollup.NO_MONTH})


# per rollup table: its columns as compared (money to the fen) and the rows that count (all-zero rows are
# what the commit path leaves after a revocation; a rebuild never makes them)
_COMPARED: dict[str, tuple[str, str]] = {
    "intake_activity": (
        "table_name, month, institution_code, n, CAST(round(amount * 100) AS BIGINT), n_realtime",
        "(n <> 0 OR amount <> 0 OR n_realtime <> 0)",
    ),
    "intake_realtime_days": ("table_name, month, institution_code, days", "days <> 0"),
    "intake_people_months": ("table_name, institution_code, person, month, n", "n <> 0"),
}


def mismatches(session: Session, rebuilt: Rebuilt) -> dict[str, int]:
    """Per rollup table, how many rows differ between the rebuilt rows and the rollups the commit path
    kept for the same months (0 everywhere: they agree); compared in the database through the staging
    tables, and nothing is replaced."""
    frames = (rebuilt.activity, rebuilt.days, rebuilt.people)
    months = rebuilt.months or []
    marks = ", ".join(f":m{i}" for i in range(len(months)))
    params = {f"m{i}": m for i, m in enumerate(months)}
    out: dict[str, int] = {}
    for model, frame in zip(_STAGED, frames, strict=True):
        _stage(session, model, frame)
        cols, counted = _COMPARED[model.__tablename__]
        live = f"SELECT {cols} FROM {model.__tablename__} WHERE {counted}"
        if rebuilt.months is not None:
            live += f" AND month IN ({marks})"
        staged = f"SELECT {cols} FROM {staging_name(model)} WHERE {counted}"
        n = 0
        for a, b in ((live, staged), (staged, live)):
            n += int(
                session.execute(text(f"SELECT count(*) FROM ({a} EXCEPT {b}) AS d"), params).scalar_one()
            )
        session.execute(text(f"DELETE FROM {staging_name(model)}"))
        out[model.__tablename__] = n
    return out
