"""The intake pipeline for one batch: read → validate (vectorised) → de-duplicate → write Delta commits.

`process()` is pure lake work; the SQL receipt around it (pending → committed) lives in service.py and
the entry points drive both through `run_batch()`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl

from rhip.config import Settings
from rhip.errors import Invalid
from rhip.intake import keyindex, rollup, rules, store
from rhip.intake.reading import table_order
from rhip.lake.store import Lake
from rhip.registry import catalogue

Progress = Callable[[str, int], None]
WRITERS = 2  # table writers beside validation: with 2 cores, more only added thread switching (measured)


@dataclass
class TableCounts:
    """What happened to one table's records in a batch."""

    received: int = 0
    accepted: int = 0
    updated: int = 0
    revoked: int = 0
    duplicate: int = 0
    rejected: int = 0

    def add(self, other: TableCounts) -> None:
        """Add another count in place."""
        for k in ("received", "accepted", "updated", "revoked", "duplicate", "rejected"):
            setattr(self, k, getattr(self, k) + getattr(other, k))


@dataclass
class Outcome:
    """The result of processing a batch (before its receipt is committed)."""

    tables: dict[str, TableCounts] = field(default_factory=dict)
    problems: pl.DataFrame | None = None
    daily: pl.DataFrame | None = None
    lake_tables: list[str] = field(default_factory=list)
    stored: dict[str, pl.DataFrame] = field(default_factory=dict)
    rollup: rollup.Rollup = field(default_factory=rollup.Rollup)

    def total(self) -> TableCounts:
        """Counts over every table."""
        t = TableCounts()
        for c in self.tables.values():
            t.add(c)
        return t


@functools.cache
def _parents() -> frozenset[str]:
    """Tables some catalogue table links to (only their keys are kept for link checks in a batch)."""
    return frozenset(link.dataset for name in catalogue.names() for link in catalogue.get(name).links)


def _event_day(ds: catalogue.Dataset) -> pl.Expr:
    """The record's event date (local), falling back to 数据更新时间: what `_month` is named after."""
    col = ds.event_time or "updated_at"
    kinds = {f.name: f.type for f in ds.fields}
    t = pl.col(f"__t_{col}")
    if kinds.get(col) == "datetime":
        t = (t + rules.UTC_OFFSET).dt.date()
    return pl.coalesce(t, (pl.col("__t_updated_at") + rules.UTC_OFFSET).dt.date())


def _months(days: pl.Series) -> pl.Series:
    """'YYYY-MM' per event date ('0000-00' when there is none).

    Formatted once per distinct date and mapped back: formatting every row's timestamp was a second of a
    large batch, and a batch holds a few dozen distinct dates.
    """
    uniq = days.drop_nulls().unique()
    labels = [f"{d.year:04d}-{d.month:02d}" for d in uniq.to_list()]
    return days.replace_strict(uniq, labels, default="0000-00", return_dtype=pl.String).alias("_month")


def _daily(name: str, frame: pl.DataFrame, good: pl.DataFrame, today: date) -> pl.DataFrame:
    """Received/accepted/updated/revoked/duplicate/rejected per day of 数据采集时间 for one table.

    Two small group-bys (outcome codes of the valid rows, count of the rejected ones), not a join of
    every row back to its outcome.
    """
    day = pl.coalesce((pl.col("__t_collected_at") + rules.UTC_OFFSET).dt.date(), pl.lit(today)).alias("day")
    per_op = good.lazy().group_by(day, "_op").agg(pl.len().cast(pl.Int64).alias("n"))
    bad = (
        frame.lazy().filter(pl.col("_check") > 0).group_by(day).agg(pl.len().cast(pl.Int64).alias("rejected"))
    )
    cols = {"accepted": store.OP_NEW, "updated": store.OP_UPDATE, "revoked": store.OP_REVOKE}
    cols["duplicate"] = store.OP_DUPLICATE
    counted = per_op.group_by("day").agg(
        *[pl.col("n").filter(pl.col("_op") == op).sum().alias(c) for c, op in cols.items()]
    )
    return (
        counted.join(bad, on="day", how="full", coalesce=True)
        .select(
            "day",
            *[pl.col(c).fill_null(0).cast(pl.Int64) for c in (*cols, "rejected")],
        )
        .with_columns(
            pl.sum_horizontal(*cols, "rejected").alias("received"),
            pl.lit(name).alias("table_name"),
        )
        .select("day", "received", "accepted", "updated", "revoked", "duplicate", "rejected", "table_name")
        .collect()
    )


@functools.cache
def _crash_pause() -> float:
    """Settings.intake_crash_pause (RHIP_INTAKE_CRASH_PAUSE), read once per process."""
    return Settings().intake_crash_pause


def process(
    lake: Lake,
    frames: Mapping[str, pl.DataFrame | Future[pl.DataFrame]],
    *,
    institution_code: str,
    batch_id: str,
    now_utc: datetime,
    progress: Progress | None = None,
    write: bool = True,
    before_write: Callable[[list[str]], None] | None = None,
    all_or_nothing: bool = False,
) -> Outcome:
    """Validate, de-duplicate and (unless write=False) commit a batch's frames to the lake.

    With `all_or_nothing` (a FHIR transaction) one rejected record refuses the whole batch before anything
    is written: Invalid `transaction-rejected` carrying the problem rows (table_name, row, rule, message).

    Otherwise each table's Delta commit starts as soon as that table is done, overlapping the next table's
    validation; `before_write` is told every table the batch may touch first, and if anything fails the
    commits in flight finish before the error propagates, so the caller's abort removes all of them.
    A transaction's tables are written as files meanwhile too, and committed once all of them passed.
    """
    pause = _crash_pause()
    order = table_order(list(frames))
    early = write and not all_or_nothing and not pause
    pool = ThreadPoolExecutor(max_workers=WRITERS) if write and not pause else None
    if early and before_write is not None:
        before_write([store.data_table(n) for n in order] + [store.KEYS_TABLE])
    try:
        return _process(
            lake,
            frames,
            order,
            institution_code=institution_code,
            batch_id=batch_id,
            now_utc=now_utc,
            progress=progress,
            write=write,
            before_write=before_write,
            all_or_nothing=all_or_nothing,
            pause=pause,
            pool=pool,
        )
    except BaseException:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


@dataclass
class _Finished:
    """A table's share of the outcome, produced off the main thread: its problems, daily counts and the
    records to store, and its changes to the rollups."""

    problems: pl.DataFrame | None
    daily: pl.DataFrame
    data: pl.DataFrame
    rollup: rollup.Rollup
    staged: store.Staged | None = None


def _finish(
    ds: catalogue.Dataset,
    v: rules.Validated,
    good: pl.DataFrame,
    prev: pl.DataFrame,
    *,
    rejected: int,
    duplicates: int,
    batch_id: str,
    now_utc: datetime,
    write: Callable[..., store.Staged | None] | None = None,
) -> _Finished:
    """The rest of a table once its records are validated and classified (nothing later tables need):
    the problem list, the daily counts, the records to store, their rollup changes (`prev`: the stored
    state of their keys), and (with `write`) their Delta commit."""
    name = ds.name
    probs = None
    if rejected:
        probs = rules.problems(ds, v, table=name).with_columns(pl.lit(name).alias("table_name"))
    daily = _daily(name, v.frame, good, (now_utc + rules.UTC_OFFSET).date())
    kept = good.filter(pl.col("_op") != store.OP_DUPLICATE) if duplicates else good
    data = kept.select(
        *[pl.col(f"__t_{f.name}").alias(f.name) for f in ds.fields],
        pl.lit(batch_id).alias("_batch"),
        "_key",
        "_op",
        _months(kept.get_column("_day")),
        "_row",
        pl.lit(now_utc).dt.cast_time_unit("us").alias("_ingested_at"),
    )
    staged = write(data=data) if write is not None and data.height else None
    facts = data.select(
        "org_code", "_key", "_op", "_month", "_row", "updated_at", "collected_at", *rollup.measure_exprs(ds)
    )
    changes = rollup.of_table(ds, facts, prev)
    return _Finished(problems=probs, daily=daily, data=data, rollup=changes, staged=staged)


def _process(
    lake: Lake,
    frames: Mapping[str, pl.DataFrame | Future[pl.DataFrame]],
    order: list[str],
    *,
    institution_code: str,
    batch_id: str,
    now_utc: datetime,
    progress: Progress | None,
    write: bool,
    before_write: Callable[[list[str]], None] | None,
    all_or_nothing: bool,
    pause: float,
    pool: ThreadPoolExecutor | None,
) -> Outcome:
    outcome = Outcome()
    finished: list[Future[_Finished] | _Finished] = []
    batch_keys: dict[str, pl.Series] = {}
    parent_keys: dict[tuple[str, Any, Any], pl.Series] = {}
    index = keyindex.open_index(lake)  # one snapshot for the batch: its partitions are ours (locked)
    for name in order:
        ds = catalogue.get(name)
        got = frames[name]
        df = got.result() if isinstance(got, Future) else got
        parents: dict[int, pl.Series] = {}
        for i, link in enumerate(ds.links):
            known = batch_keys.get(link.dataset)
            # the stored parent keys in the range this table refers to (a batch referring to recent
            # records reads only the recent index files); read once per parent and range
            refs = df.select(rules.key_expr(list(link.fields)).alias("_ref")).get_column("_ref")
            span = (link.dataset, refs.min(), refs.max())
            stored = parent_keys.get(span)
            if stored is None:
                stored = parent_keys[span] = keyindex.stored_keys(
                    index, table=link.dataset, institution_code=institution_code, wanted=refs
                )
            parents[i] = stored if known is None else pl.concat([stored, known.rename("_key")])
        v = rules.validate(ds, df, institution_code=institution_code, now_utc=now_utc, parents=parents)
        v.frame = v.frame.with_columns(rules.key_expr(list(ds.business_key)).alias("_key"))
        if name in _parents():
            batch_keys[name] = v.frame.select(
                pl.col("_key").filter(pl.col("org_code") == institution_code)
            ).get_column("_key")
        # only the typed columns go on: filtering the raw text columns too copied twice the data
        good = (
            v.frame.lazy()
            .filter(pl.col("_check") == 0)
            .select("_row", "_key", *[f"__t_{f.name}" for f in ds.fields], _event_day(ds).alias("_day"))
            .collect()
        )
        days = good.get_column("_day")
        months = [f"{d.year:04d}-{d.month:02d}" for d in days.drop_nulls().unique().to_list()]
        if days.null_count():
            months.append("0000-00")
        incoming = good.select(
            "_key",
            pl.col("__t_updated_at").alias("updated_at"),
            pl.col("__t_change_flag").cast(pl.Int8).alias("change_flag"),
            "_row",
        )
        known_state = keyindex.stored_state(
            index, table=name, institution_code=institution_code, months=months, keys=incoming["_key"]
        )
        known_state = keyindex.moved_state(
            index, table=name, institution_code=institution_code, incoming=incoming, known=known_state
        )
        good = good.with_columns(
            keyindex.classify(incoming, known_state.select("_key", "_prev")).alias("_op")
        )
        vc = dict(good.get_column("_op").value_counts().iter_rows())
        counts = TableCounts(
            received=v.frame.height,
            rejected=v.frame.height - good.height,
            accepted=int(vc.get(store.OP_NEW, 0)),
            updated=int(vc.get(store.OP_UPDATE, 0)),
            revoked=int(vc.get(store.OP_REVOKE, 0)),
            duplicate=int(vc.get(store.OP_DUPLICATE, 0)),
        )
        outcome.tables[name] = counts
        finish = functools.partial(
            _finish,
            ds,
            v,
            good,
            known_state,
            rejected=counts.rejected,
            duplicates=counts.duplicate,
            batch_id=batch_id,
            now_utc=now_utc,
        )
        if pool is not None:
            # the problem list, daily counts and the Delta commit (a transaction's: its files) run beside
            # the next table's validation
            commit = functools.partial(_write, lake, index, name, batch_id=batch_id, stage=all_or_nothing)
            finished.append(pool.submit(finish, write=commit))
        else:
            finished.append(finish())
        if progress:
            progress(name, v.frame.height)
    done = [f.result() if isinstance(f, Future) else f for f in finished]
    for name, fin in zip(order, done, strict=True):
        if fin.data.height:
            outcome.stored[name] = fin.data
            outcome.lake_tables.append(store.data_table(name))
    problem_frames = [fin.problems for fin in done if fin.problems is not None]
    outcome.problems = pl.concat(problem_frames, how="vertical_relaxed") if problem_frames else None
    outcome.daily = pl.concat([fin.daily for fin in done], how="vertical_relaxed") if done else None
    for fin in done:
        outcome.rollup.extend(fin.rollup)
    staged = [fin.staged for fin in done if fin.staged is not None]
    if all_or_nothing and outcome.problems is not None and outcome.problems.height:
        for st in staged:  # written, never committed: not visible, removed so they do not pile up
            store.discard(lake, store.data_table(st.table), st.actions or [])
        store.discard(lake, store.KEYS_TABLE, index.actions)
        probs = outcome.problems.select("table_name", "row", "rule", "field", "message").to_dicts()
        raise Invalid(
            f"事务中有 {len(probs)} 条记录未通过校验，整个事务未入库",
            code="transaction-rejected",
            problems=probs,
        )
    if outcome.stored:
        outcome.lake_tables.append(store.KEYS_TABLE)
    if not write:
        return outcome
    if pool is None:
        # fault injection for the crash test: pause after each Delta commit (Settings.intake_crash_pause)
        if before_write is not None:
            before_write(outcome.lake_tables)
        for name, data in outcome.stored.items():
            _write(lake, index, name, data=data, batch_id=batch_id)
            time.sleep(pause)
    elif all_or_nothing:
        if before_write is not None:
            before_write(outcome.lake_tables)
        # each lake table is a separate Delta log: the commits run side by side
        for job in [pool.submit(store.commit_staged, lake, st, batch_id=batch_id) for st in staged]:
            job.result()
    keyindex.commit(index, batch_id=batch_id)
    return outcome


def _write(
    lake: Lake,
    index: keyindex.KeyIndex,
    name: str,
    *,
    data: pl.DataFrame,
    batch_id: str,
    stage: bool = False,
) -> store.Staged | None:
    """A table's Delta commit (with `stage`: only its files, committed later), then its key-index files
    (committed with the rest of the index)."""
    staged = store.stage_records(lake, table=name, data=data, batch_id=batch_id)
    if not stage:
        store.commit_staged(lake, staged, batch_id=batch_id)
    index.add(name, staged.data, batch_id=batch_id)
    return staged if stage else None
