"""The intake pipeline for one batch: read → validate (vectorised) → de-duplicate → write Delta commits.

`process()` is pure lake work; the SQL receipt around it (pending → committed) lives in service.py and
the entry points drive both through `run_batch()`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl
import pyarrow as pa

from rhip.errors import Invalid, NotFound
from rhip.intake import formats, rules, store
from rhip.lake.store import Lake
from rhip.registry import catalogue

OUTCOMES = ("new", "updated", "revoked", "duplicate")
OP_OF = {"new": store.OP_NEW, "updated": store.OP_UPDATE, "revoked": store.OP_REVOKE}
Progress = Callable[[str, int], None]
WRITERS = 4


@dataclass
class Upload:
    """One file of a batch as received (already on disk)."""

    path: Path
    filename: str
    table: str | None = None
    encoding: str | None = None
    fmt: str | None = None


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

    def total(self) -> TableCounts:
        """Counts over every table."""
        t = TableCounts()
        for c in self.tables.values():
            t.add(c)
        return t


def table_for_filename(filename: str) -> str:
    """The catalogue table a file name designates: the longest table name its stem starts with."""
    stem = Path(filename).name.lower()
    stem = re.sub(r"\.(csv|txt|parquet|jsonl|ndjson|json)$", "", stem)
    best = ""
    for name in catalogue.names():
        fits = stem == name or (stem.startswith(name) and not stem[len(name)].isalpha())
        if fits and len(name) > len(best):
            best = name
    if not best:
        raise NotFound(
            f"无法从文件名“{filename}”识别数据表；文件名应以数据表名开头（如 outpatient_visit_202503.csv），"
            f"或用 table 参数指明。可用的数据表：{'、'.join(catalogue.names())}",
            code="unknown-table",
        )
    return best


def check_header(ds: catalogue.Dataset, header: list[str], *, filename: str) -> None:
    """The columns must be the catalogue's: no unknown column, every required one present."""
    known = set(ds.field_names)
    unknown = [c for c in header if c not in known]
    missing = [f.name for f in ds.fields if f.required and f.name not in header]
    if unknown or missing:
        parts = []
        if missing:
            parts.append(f"缺少必填列：{'、'.join(missing)}")
        if unknown:
            parts.append(f"未知列：{'、'.join(unknown[:20])}")
        raise Invalid(
            f"{filename} 的表头与数据集“{ds.label}”（{ds.name}）不符：{'；'.join(parts)}",
            code="bad-header",
            missing=missing,
            unknown=unknown,
            table=ds.name,
        )


def get_dataset(name: str) -> catalogue.Dataset:
    """A catalogue dataset, or NotFound with the code unknown-table."""
    try:
        return catalogue.get(name)
    except NotFound as exc:
        raise NotFound(exc.detail, code="unknown-table") from None


def read_uploads(uploads: list[Upload], *, workdir: Path) -> dict[str, pl.DataFrame]:
    """Read every file into one string frame per table (with _file and _row), checking headers."""
    per_table: dict[str, list[pl.DataFrame]] = {}
    for i, up in enumerate(uploads):
        name = up.table or table_for_filename(up.filename)
        ds = get_dataset(name)
        got = formats.read_file(
            up.path, filename=up.filename, encoding=up.encoding, workdir=workdir, fmt=up.fmt
        )
        check_header(ds, got.header, filename=up.filename)
        per_table.setdefault(ds.name, []).append(frame_of(ds, got.table, file_index=i))
    return {t: (fs[0] if len(fs) == 1 else pl.concat(fs, how="vertical")) for t, fs in per_table.items()}


def read_uploads_ahead(
    uploads: list[Upload], *, workdir: Path, pool: Executor
) -> dict[str, Future[pl.DataFrame]]:
    """Like `read_uploads`, but each table's files are read on `pool`, in processing order, so the next
    table is parsed while the previous one is validated and written (reading is a third of a batch's time).
    Unknown tables fail here, at once; a file's own error surfaces when `process` reaches its table."""
    per_table: dict[str, list[tuple[int, Upload]]] = {}
    for i, up in enumerate(uploads):
        name = get_dataset(up.table or table_for_filename(up.filename)).name
        per_table.setdefault(name, []).append((i, up))

    def read(name: str) -> pl.DataFrame:
        ds = get_dataset(name)
        fs = []
        for i, up in per_table[name]:
            got = formats.read_file(
                up.path, filename=up.filename, encoding=up.encoding, workdir=workdir, fmt=up.fmt
            )
            check_header(ds, got.header, filename=up.filename)
            fs.append(frame_of(ds, got.table, file_index=i))
        return fs[0] if len(fs) == 1 else pl.concat(fs, how="vertical")

    return {name: pool.submit(read, name) for name in _order(list(per_table))}


def frame_of(ds: catalogue.Dataset, table: pa.Table, *, file_index: int = 0) -> pl.DataFrame:
    """A string frame in catalogue column order (absent optional columns as nulls), with _file and _row."""
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    n = df.height
    cols = []
    for f in ds.fields:
        if f.name in df.columns:
            cols.append(pl.col(f.name).cast(pl.String))
        else:
            cols.append(pl.lit(None, pl.String).alias(f.name))
    return df.select(
        pl.lit(file_index, pl.Int32).alias("_file"),
        pl.int_range(1, n + 1, dtype=pl.Int64).alias("_row"),
        *cols,
    )


def _order(tables: list[str]) -> list[str]:
    """Parents before children (by catalogue links), otherwise catalogue order."""
    present = set(tables)
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for link in catalogue.get(name).links:
            if link.dataset in present and link.dataset != name:
                visit(link.dataset)
        order.append(name)

    for name in catalogue.names():
        if name in present:
            visit(name)
    return order


def _month_expr(ds: catalogue.Dataset) -> pl.Expr:
    col = ds.event_time or "updated_at"
    kinds = {f.name: f.type for f in ds.fields}
    t = pl.col(f"__t_{col}")
    if kinds.get(col) == "datetime":
        t = (t + rules.UTC_OFFSET).dt.replace_time_zone(None)
    fallback = (pl.col("__t_updated_at") + rules.UTC_OFFSET).dt.replace_time_zone(None)
    return pl.coalesce(t.dt.strftime("%Y-%m"), fallback.dt.strftime("%Y-%m"), pl.lit("0000-00"))


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
    """
    pause = float(os.environ.get("RHIP_INTAKE_CRASH_PAUSE", "0") or 0)
    order = _order(list(frames))
    early = write and not all_or_nothing and not pause
    pool = ThreadPoolExecutor(max_workers=WRITERS) if early else None
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
    jobs: list[Future[None]] = []
    problem_frames: list[pl.DataFrame] = []
    daily_frames: list[pl.DataFrame] = []
    batch_keys: dict[str, pl.Series] = {}
    parent_keys: dict[str, pl.Series] = {}  # stored keys of a parent table, read once per batch
    index_frames: list[pl.DataFrame] = []
    ingested = pl.lit(now_utc).dt.cast_time_unit("us")
    for name in order:
        ds = catalogue.get(name)
        got = frames[name]
        df = got.result() if isinstance(got, Future) else got
        key_cols = list(ds.business_key)
        parents: dict[int, pl.Series] = {}
        for i, link in enumerate(ds.links):
            known = batch_keys.get(link.dataset)
            stored = parent_keys.get(link.dataset)
            if stored is None:
                stored = parent_keys[link.dataset] = store.stored_keys(
                    lake, table=link.dataset, institution_code=institution_code
                )
            parents[i] = stored if known is None else pl.concat([stored, known.rename("_key")])
        v = rules.validate(ds, df, institution_code=institution_code, now_utc=now_utc, parents=parents)
        frame = v.frame.with_columns(rules.key_expr(key_cols).alias("_key"))
        batch_keys[name] = frame.get_column("_key").filter(frame.get_column("org_code") == institution_code)
        # only the typed columns go on: filtering the raw text columns too copied twice the data
        good = (
            frame.lazy()
            .filter(pl.col("_check") == 0)
            .select("_file", "_row", "_key", *[f"__t_{f.name}" for f in ds.fields])
            .with_columns(_month_expr(ds).alias("_month"))
            .collect()
        )
        rejected = frame.height - good.height
        if rejected:
            problem_frames.append(
                rules.problems(ds, v, table=name).with_columns(pl.lit(name).alias("table_name"))
            )
        incoming = good.select(
            "_key",
            pl.col("__t_updated_at").alias("updated_at"),
            pl.col("__t_change_flag").cast(pl.Int8).alias("change_flag"),
            "_row",
        )
        months = good.get_column("_month").unique().to_list()
        known_state = store.stored_state(
            lake,
            table=name,
            institution_code=institution_code,
            months=months,
            keys=incoming.get_column("_key"),
        )
        outcome_col = store.classify(incoming, known_state)
        good = good.with_columns(outcome_col.alias("_outcome"))
        counts = TableCounts(received=frame.height, rejected=rejected)
        vc = dict(good.get_column("_outcome").value_counts().iter_rows())
        counts.accepted, counts.updated = int(vc.get("new", 0)), int(vc.get("updated", 0))
        counts.revoked, counts.duplicate = int(vc.get("revoked", 0)), int(vc.get("duplicate", 0))
        outcome.tables[name] = counts
        kept = good.filter(pl.col("_outcome") != "duplicate") if counts.duplicate else good
        data = kept.select(
            *[pl.col(f"__t_{f.name}").alias(f.name) for f in ds.fields],
            pl.lit(batch_id).alias("_batch"),
            "_key",
            pl.col("_outcome").replace_strict(OP_OF, return_dtype=pl.Int8).alias("_op"),
            "_month",
            "_row",
            ingested.alias("_ingested_at"),
        )
        if data.height:
            outcome.stored[name] = data
            outcome.lake_tables.append(store.data_table(name))
            if pool is not None:
                jobs.append(pool.submit(store.write_records, lake, table=name, data=data, batch_id=batch_id))
            index_frames.append(
                data.select(
                    pl.lit(name).alias("table"),
                    pl.col("org_code"),
                    pl.col("_month").alias("month"),
                    pl.col("_key").alias("key"),
                    pl.col("updated_at"),
                    pl.col("_op").alias("op"),
                    pl.col("_batch"),
                )
            )
        day = pl.coalesce(
            (pl.col("__t_collected_at") + rules.UTC_OFFSET).dt.date(),
            pl.lit((now_utc + rules.UTC_OFFSET).date()),
        )
        # two small group-bys joined on the day, not a join of every row back to its outcome
        received = frame.group_by(day.alias("day")).agg(
            pl.len().alias("received"), (pl.col("_check") > 0).sum().alias("rejected")
        )
        outcomes = good.group_by(day.alias("day")).agg(
            (pl.col("_outcome") == "new").sum().alias("accepted"),
            (pl.col("_outcome") == "updated").sum().alias("updated"),
            (pl.col("_outcome") == "revoked").sum().alias("revoked"),
            (pl.col("_outcome") == "duplicate").sum().alias("duplicate"),
        )
        daily_frames.append(
            received.join(outcomes, on="day", how="left", nulls_equal=True).select(
                "day",
                pl.col("received").cast(pl.Int64),
                *[
                    pl.col(c).fill_null(0).cast(pl.Int64)
                    for c in ("accepted", "updated", "revoked", "duplicate")
                ],
                pl.col("rejected").cast(pl.Int64),
                pl.lit(name).alias("table_name"),
            )
        )
        if progress:
            progress(name, frame.height)
    outcome.problems = pl.concat(problem_frames, how="vertical_relaxed") if problem_frames else None
    outcome.daily = pl.concat(daily_frames, how="vertical_relaxed") if daily_frames else None
    if all_or_nothing and outcome.problems is not None and outcome.problems.height:
        probs = outcome.problems.select("table_name", "row", "rule", "field", "message").to_dicts()
        raise Invalid(
            f"事务中有 {len(probs)} 条记录未通过校验，整个事务未入库",
            code="transaction-rejected",
            problems=probs,
        )
    if index_frames:
        outcome.lake_tables.append(store.KEYS_TABLE)
    keys = pl.concat(index_frames, how="vertical_relaxed") if index_frames else None
    if pool is not None:
        if keys is not None:
            jobs.append(pool.submit(store.write_keys, lake, keys=keys, batch_id=batch_id))
        for job in jobs:
            job.result()
        return outcome
    if write and before_write is not None:
        before_write(outcome.lake_tables)
    if write:
        if pause:
            # fault injection for the crash test: pause after each Delta commit (RHIP_INTAKE_CRASH_PAUSE s)
            for name, data in outcome.stored.items():
                store.write_records(lake, table=name, data=data, batch_id=batch_id)
                time.sleep(pause)
            if keys is not None:
                store.write_keys(lake, keys=keys, batch_id=batch_id)
        else:
            # each lake table is a separate Delta log, so the commits run side by side (the Rust writer
            # releases the GIL); per-commit fixed costs dominate small tables
            with ThreadPoolExecutor(max_workers=WRITERS) as writers:
                done = [
                    writers.submit(store.write_records, lake, table=name, data=data, batch_id=batch_id)
                    for name, data in outcome.stored.items()
                ]
                if keys is not None:
                    done.append(writers.submit(store.write_keys, lake, keys=keys, batch_id=batch_id))
                for job in done:
                    job.result()
    return outcome
