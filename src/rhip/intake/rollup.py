"""Intake's rollups: the monthly counts the data-collection figures need, kept current at every batch's
commit, so that computing a month's figures reads a few thousand SQL rows instead of scanning the lake.

- `intake_activity` (table, event month, institution): current records (docs/metrics.md's "current record":
  the latest version of a key, not revoked), the total of the table's `amount` field and how many of them
  were real-time. Kept as deltas: a batch adds the final version of each key it stores and takes away the
  version that key had before, which the key index remembers (`keyindex.stored_state`).
- `intake_realtime_days` (table, month, institution): a bit mask of the local days of 数据采集时间 in the
  month on which a real-time record was stored (every stored version counts, as an upload day).
- `intake_people_months` (table, institution, person, month): per person under management (the table's
  `person` field), the number of current records in each event month; `intake_people_first` counts persons
  by the first dated month in which they have one, so "people with a current record up to month M" is a sum.

The rollups are written in the SQL transaction that marks the receipt committed: they exist exactly when
the batch's records are visible. `quality` reads them by these documented names and can recount every
figure from the lake to check them (`rhip quality verify`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlalchemy.orm import Session

from rhip.db import bulk
from rhip.db.engine import dialect_insert
from rhip.intake.models import IntakeActivity, IntakeRealtimeDays
from rhip.intake.store import OP_NEW, OP_REVOKE
from rhip.registry import catalogue

NO_MONTH = "0000-00"  # `_month` of a record without any usable time: never counted as a dated record
LOCAL = pl.duration(hours=8)  # Asia/Shanghai has had no daylight saving since 1991

# what the key index keeps of each stored version besides its key, month and op (null where unused)
MEASURES: dict[str, pl.DataType] = {"amount": pl.Float64(), "realtime": pl.Boolean(), "person": pl.String()}


def measure_exprs(ds: catalogue.Dataset) -> list[pl.Expr]:
    """Per stored record: its amount, whether it was real-time and its person (columns as written)."""
    lag = int(catalogue.REALTIME_LAG.total_seconds() * 1_000_000)
    event = pl.col(ds.event_time or "updated_at").cast(pl.Datetime("us", "UTC"))
    late = pl.col("collected_at").cast(pl.Datetime("us", "UTC")) - event
    return [
        (pl.col(ds.amount).cast(pl.Float64) if ds.amount else pl.lit(None, pl.Float64)).alias("amount"),
        late.is_between(pl.duration(microseconds=0), pl.duration(microseconds=lag))
        .fill_null(False)
        .alias("realtime"),
        (pl.col(ds.person).cast(pl.String) if ds.person else pl.lit(None, pl.String)).alias("person"),
    ]


@dataclass
class Rollup:
    """A batch's changes to the rollups (deltas; masks to OR in)."""

    activity: list[pl.DataFrame] = field(default_factory=list)
    days: list[pl.DataFrame] = field(default_factory=list)
    people: list[pl.DataFrame] = field(default_factory=list)

    def extend(self, other: Rollup) -> None:
        """Add another table's (or batch's) changes."""
        self.activity += other.activity
        self.days += other.days
        self.people += other.people


def _final_versions(data: pl.DataFrame) -> pl.DataFrame:
    """The last stored version of each key in the batch (by 数据更新时间, then row)."""
    # a key stored twice in one batch has a later version stored as a correction or revocation (2 or 3), so
    # only keys with such a row can repeat: none in a batch of new records, no hashing of every key
    changed = data.filter(pl.col("_op") != OP_NEW).get_column("_key")
    if not changed.len():
        return data
    repeated = data.get_column("_key").is_in(changed.unique().implode())
    again = (
        data.filter(repeated)
        .sort("_key", "updated_at", "_row")
        .unique("_key", keep="last", maintain_order=True)
    )
    return pl.concat([data.filter(~repeated), again], how="vertical_relaxed")


def of_table(ds: catalogue.Dataset, data: pl.DataFrame, prev: pl.DataFrame) -> Rollup:
    """A table's rollup changes from the records a batch stores (`data`, as written to the lake, with the
    columns of `measure_exprs` added) and the stored state of their keys before it (`prev`: `_key`,
    `_prev_op`, `_prev_month`, `_prev_amount`, `_prev_realtime`, `_prev_person`; keys never stored are
    absent)."""
    out = Rollup()
    if not data.height:
        return out
    name = ds.name
    final = _final_versions(data)
    # only what this table's rollups use (a table without an amount or a person, or not a real-time form,
    # aggregates counts only)
    measures = [
        c for c, used in (("amount", ds.amount), ("realtime", ds.realtime), ("person", ds.person)) if used
    ]
    added = (
        final.lazy()
        .filter(pl.col("_op") != OP_REVOKE)
        .select("org_code", pl.col("_month").alias("month"), *measures, pl.lit(1, pl.Int64).alias("sign"))
    )
    both = added
    if prev.height:
        replaced = (
            final.lazy()
            .select("_key", "org_code")
            .join(prev.lazy(), on="_key", how="inner")
            .filter(pl.col("_prev_op") != OP_REVOKE)
            .select(
                "org_code",
                pl.col("_prev_month").alias("month"),
                *[pl.col(f"_prev_{m}").alias(m) for m in measures],
                pl.lit(-1, pl.Int64).alias("sign"),
            )
        )
        both = pl.concat([added, replaced], how="vertical_relaxed")
    sums = [pl.col("sign").sum().alias("n")]
    sums.append(
        (pl.col("amount").fill_null(0.0) * pl.col("sign")).sum().alias("amount")
        if ds.amount
        else pl.lit(0.0).alias("amount")
    )
    sums.append(
        (pl.col("realtime").cast(pl.Int64) * pl.col("sign")).sum().alias("n_realtime")
        if ds.realtime
        else pl.lit(0, pl.Int64).alias("n_realtime")
    )
    activity = (
        both.group_by("org_code", "month")
        .agg(sums)
        .filter((pl.col("n") != 0) | (pl.col("n_realtime") != 0) | (pl.col("amount") != 0))
        .with_columns(pl.lit(name).alias("table_name"))
        .collect()
    )
    out.activity.append(activity)
    if ds.person:
        people = (
            both.filter(pl.col("person").is_not_null())
            .group_by("org_code", "person", "month")
            .agg(pl.col("sign").sum().alias("n"))
            .filter(pl.col("n") != 0)
            .with_columns(pl.lit(name).alias("table_name"))
            .collect()
        )
        out.people.append(people)
    if ds.realtime:
        # distinct local days first (a few per institution), then their month and bit: formatting every
        # row's date was most of this table's rollup time
        days = (
            data.lazy()
            .filter(pl.col("realtime"))
            .select("org_code", (pl.col("collected_at") + LOCAL).dt.date().alias("day"))
            .unique()
            .collect()
        )
        days = (
            days.with_columns(
                pl.col("day").dt.strftime("%Y-%m").alias("month"), (pl.col("day").dt.day() - 1).alias("bit")
            )
            .group_by("org_code", "month")
            # distinct days: the sum of their bits is their OR (powers of two are exact in a double)
            .agg(pl.lit(2.0).pow(pl.col("bit")).cast(pl.Int64).sum().alias("days"))
            .with_columns(pl.lit(name).alias("table_name"))
        )
        out.days.append(days)
    return out


def _rows(frames: list[pl.DataFrame]) -> list[dict[str, Any]]:
    if not frames:
        return []
    return pl.concat(frames, how="vertical_relaxed").rename({"org_code": "institution_code"}).to_dicts()


def add_rows(
    session: Session,
    table: Any,
    rows: list[dict[str, Any]],
    merge: dict[str, Any],
    key: Sequence[str] = ("table_name", "month", "institution_code"),
) -> None:
    """Upsert rows keyed by `key` (a unique constraint of `table`), merging each column as `merge` says:
    one executemany of an INSERT … ON CONFLICT DO UPDATE, no read first."""
    if not rows:
        return
    ins = dialect_insert(session, table)
    set_ = {c: fn(table.c[c], ins.excluded[c]) for c, fn in merge.items()}
    session.execute(ins.on_conflict_do_update(index_elements=list(key), set_=set_), rows)


def added(old: Any, new: Any) -> Any:
    """`add_rows`' merge of a count: the stored one plus the new one."""
    return old + new


def apply(session: Session, rollup: Rollup) -> None:
    """Write a batch's rollup changes (in the caller's transaction: the one that commits its receipt)."""
    add_rows(
        session,
        IntakeActivity.__table__,
        _rows(rollup.activity),
        dict.fromkeys(("n", "amount", "n_realtime"), added),
    )
    add_rows(
        session, IntakeRealtimeDays.__table__, _rows(rollup.days), {"days": lambda old, new: old.op("|")(new)}
    )
    if rollup.people:
        _apply_people(session, pl.concat(rollup.people, how="vertical_relaxed"))


# the per-person work is set-based SQL over a temporary table of the batch's changes (one B-tree lookup or
# two per person), not a round of ORM statements per person
_TEMP = "rollup_people_delta"
_FIRSTS = "rollup_people_firsts"
_KEY = "table_name, institution_code, person"
_DATED = f"n > 0 AND month <> '{NO_MONTH}'"


def _first_month(alias: str) -> str:
    """SQL: the first dated month with a current record of the person in row `alias`."""
    return (
        f"(SELECT min(m.month) FROM intake_people_months m WHERE m.table_name = {alias}.table_name "
        f"AND m.institution_code = {alias}.institution_code AND m.person = {alias}.person AND m.{_DATED})"
    )


def _apply_people(session: Session, deltas: pl.DataFrame) -> None:
    """Per person touched: current records per month updated, and the counts of persons by first month
    moved wherever a person's first month changed (appeared, moved, or went away)."""
    conn = session.connection()
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {_TEMP} (table_name VARCHAR(64), institution_code VARCHAR(32), "
        "person VARCHAR(64), month VARCHAR(7), n BIGINT)"
    )
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {_FIRSTS} (table_name VARCHAR(64), institution_code VARCHAR(32), "
        "person VARCHAR(64), added VARCHAR(7), lost INTEGER, old_first VARCHAR(7), new_first VARCHAR(7))"
    )
    conn.exec_driver_sql(f"DELETE FROM {_TEMP}")
    conn.exec_driver_sql(f"DELETE FROM {_FIRSTS}")
    # in key order, so that the upsert below walks the primary key's B-tree forward (a third faster)
    rows = deltas.select("table_name", "org_code", "person", "month", pl.col("n").cast(pl.Int64)).sort(
        "table_name", "org_code", "person", "month"
    )
    bulk.fill(conn, _TEMP, [*_KEY.split(", "), "month", "n"], rows.iter_rows())
    # a person whose changes only add dated records keeps or moves back their first month: the least of
    # the old one and the months added; only persons losing a record need their months searched again
    conn.exec_driver_sql(
        f"INSERT INTO {_FIRSTS} ({_KEY}, added, lost) SELECT {_KEY}, "
        f"min(CASE WHEN {_DATED} THEN month END), max(CASE WHEN n < 0 THEN 1 ELSE 0 END) "
        f"FROM {_TEMP} GROUP BY {_KEY}"
    )
    conn.exec_driver_sql(f"UPDATE {_FIRSTS} SET old_first = {_first_month(_FIRSTS)}")
    conn.exec_driver_sql(
        f"INSERT INTO intake_people_months ({_KEY}, month, n) SELECT {_KEY}, month, n FROM {_TEMP} "
        f"WHERE true ON CONFLICT ({_KEY}, month) DO UPDATE SET n = intake_people_months.n + excluded.n"
    )
    conn.exec_driver_sql(
        f"UPDATE {_FIRSTS} SET new_first = CASE WHEN lost = 1 THEN {_first_month(_FIRSTS)} "
        "WHEN old_first IS NULL OR added < old_first THEN added ELSE old_first END"
    )
    moved = (
        f"SELECT table_name, new_first AS month, institution_code, 1 AS d FROM {_FIRSTS} "
        "WHERE new_first IS NOT NULL AND (old_first IS NULL OR old_first <> new_first) "
        f"UNION ALL SELECT table_name, old_first, institution_code, -1 FROM {_FIRSTS} "
        "WHERE old_first IS NOT NULL AND (new_first IS NULL OR old_first <> new_first)"
    )
    conn.exec_driver_sql(
        "INSERT INTO intake_people_first (table_name, month, institution_code, n) "
        f"SELECT table_name, month, institution_code, sum(d) FROM ({moved}) AS x "
        "GROUP BY table_name, month, institution_code HAVING sum(d) <> 0 "
        "ON CONFLICT (table_name, month, institution_code) "
        "DO UPDATE SET n = intake_people_first.n + excluded.n"
    )
