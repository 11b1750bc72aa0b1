"""Benchmark: every data-collection figure of a month vs the limit (one DuckDB scan counting rows).

The lake is written directly in intake's storage layout (Delta tables `ods_<table>` partitioned by `_month`,
with intake's system columns) at several scales of a full Nanjing month (about 330 million records), so the
measurement is of the quality queries, not of intake's ingestion speed. As in a real month, a share of the
records were corrected (修改标志 2) or revoked (3) after they were first sent (`--changed`, default 1%), so
the "current version" rule has work to do. Intake's rollups of those records are made by intake's own code
(`intake.rollup.of_table` on each written chunk and its corrections, `rollup.apply` into the SQL database),
and the time that takes is printed as the rollups' cost per million records (paid at intake).

The figures read the rollups; the recount (the same figures computed from the lake's records, as
`rhip quality verify` does) is timed too, and the two must agree. Prints the times, the growth from
scale 0.01, the ratio to the limit and the extrapolation to scale 1.0, with the load average around each
run; writes JSON to benchmarks/results/. Each time is the median of `--repeat` cold runs (default 3).

The limit is the same tables read by the same reader (`lakeread.LakeReader`), one statement counting the
month's rows per institution (a bare count(*) would be answered from the Parquet footers without a scan);
the same count through a PyArrow dataset scan (the reader used before) is printed beside it for reference,
and so is a second reference, the column scan: the same reader decoding every column the recount reads
(`recount.lake_columns`) once and computing nothing else. The limit decodes only `org_code`; the column
scan shows how much of the recount's time is reading what it must read at all.

    .venv/bin/python benchmarks/quality.py --scales 0.01 0.03 0.1
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute
from deltalake import write_deltalake

from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.intake import rollup
from rhip.lake.sql import Sql
from rhip.lake.store import Lake
from rhip.quality import figsql, figures, lakeread, recount, units as quality_units, verify
from rhip.registry import catalogue

MONTH = "2025-03"
FULL_MONTH_ROWS = 330_000_000
CHUNK = 2_000_000
RESULTS = Path(__file__).parent / "results"


def _tables() -> list[str]:
    read = set(quality_units.realtime_tables()) | set(figures.RECORD_TABLES.values())
    return [d.name for d in catalogue.datasets() if d.name in read]


def _changes(gen: np.random.Generator, cols: dict[str, pa.Array], share: float) -> pa.Table | None:
    """Later versions of a share of the chunk's records: four in five corrected (op 2), one revoked (op 3)."""
    n = len(cols["_key"])
    pick = np.flatnonzero(gen.random(n) < share)
    if not len(pick):
        return None
    base = pa.table(cols).take(pa.array(pick))
    later = pa.compute.add(base.column("updated_at"), pa.scalar(3_600_000_000, pa.duration("us")))
    ops = np.where(gen.random(len(pick)) < 0.8, 2, 3).astype(np.int8)
    out = base.set_column(base.schema.get_field_index("updated_at"), "updated_at", later)
    out = out.set_column(out.schema.get_field_index("_op"), "_op", pa.array(ops))
    return out.set_column(
        out.schema.get_field_index("_row"), "_row", pa.array(np.arange(len(pick)), pa.int64())
    )


def _facts(ds: catalogue.Dataset, table: pa.Table) -> pl.DataFrame:
    """What intake's rollups take of stored records (as `intake.pipeline` passes them)."""
    cols = ["org_code", "_key", "_op", "_month", "_row", "updated_at", "collected_at"]
    return pl.from_arrow(table).select(*cols, *rollup.measure_exprs(ds))  # type: ignore[union-attr]


def _prev(facts: pl.DataFrame) -> pl.DataFrame:
    """The stored state of these records' keys, as the key index gives it to a later version."""
    return facts.select(
        "_key",
        pl.col("_op").cast(pl.Int8).alias("_prev_op"),
        pl.col("_month").alias("_prev_month"),
        *[pl.col(m).alias(f"_prev_{m}") for m in rollup.MEASURES],
    )


def write_lake(root: Path, db: Database, *, rows: int, seed: int = 1, changed: float = 0.01) -> float:
    """A month of records for the tables the figures read, about `rows` in total, in intake's layout, and
    their rollups in the database; returns the seconds spent on the rollups."""
    gen = np.random.default_rng(seed)
    orgs = [u.code for u in quality_units.units(MONTH)]
    tables = _tables()
    per_table = rows // len(tables)
    start = int(datetime(2025, 3, 1, tzinfo=UTC).timestamp() * 1e6) - 8 * 3600 * 10**6
    span = 31 * 86400 * 10**6
    rolled = 0.0
    for name in tables:
        ds = catalogue.get(name)
        event = ds.event_time or "updated_at"
        done = 0
        while done < per_table:
            n = min(CHUNK, per_table - done)
            ev = start + gen.integers(0, span, n)
            lag = (
                np.where(gen.random(n) < 0.6, gen.integers(30, 300, n), gen.integers(3 * 3600, 20 * 3600, n))
                * 10**6
            )
            ts = pa.timestamp("us", tz="UTC")
            cols: dict[str, pa.Array] = {
                "org_code": pa.array(np.array(orgs)[gen.integers(0, len(orgs), n)]),
                "collected_at": pa.array(ev + lag, ts),
                "updated_at": pa.array(ev, ts),
                "_batch": pa.array(np.full(n, "Bbench0000000001")),
                "_key": pa.array(np.char.add("K", np.arange(done, done + n).astype(str))),
                "_op": pa.array(np.ones(n, dtype=np.int8)),
                "_month": pa.array(np.full(n, MONTH)),
                "_row": pa.array(np.arange(n, dtype=np.int64)),
                "_ingested_at": pa.array(np.full(n, start + span), ts),
            }
            if event not in cols:
                cols[event] = (
                    pa.array(ev, ts)
                    if ds.field(event).type == "datetime"
                    else pa.array((ev // 86_400_000_000).astype(np.int32), pa.date32())
                )
            if name == "outpatient_visit":
                cols["fee_total"] = pa.array(gen.gamma(2.0, 150.0, n))
            if name == "discharge_summary":
                cols["total_fee"] = pa.array(gen.gamma(2.0, 8000.0, n))
            if ds.person:
                # about three follow-ups per person in the month, each person followed by one institution
                person = gen.integers(0, max(1, per_table // 3), n)
                cols[ds.person] = pa.array(np.char.add("R", person.astype(str)))
                cols["org_code"] = pa.array(np.array(orgs)[person % len(orgs)])
            path = str(root / lakeread.data_table(name))
            first = pa.table(cols)
            write_deltalake(path, first, mode="append", partition_by=["_month"])
            later = _changes(gen, cols, changed)
            if later is not None:
                write_deltalake(path, later, mode="append", partition_by=["_month"])
            t0 = time.perf_counter()
            facts = _facts(ds, first)
            changes = rollup.of_table(ds, facts, _prev(facts.head(0)))
            if later is not None:
                fixed = _facts(ds, later)
                changes.extend(rollup.of_table(ds, fixed, _prev(facts.join(fixed.select("_key"), on="_key"))))
            with db.session() as s, s.begin():
                rollup.apply(s, changes)
            rolled += time.perf_counter() - t0
            done += n
    return rolled


def _arrow_limit(lake: Lake, tables: list[str]) -> float:
    """The same row count through PyArrow datasets (how the figures read the lake before)."""
    duck = duckdb.connect()
    for t in tables:
        duck.register(lakeread.data_table(t), lake.dataset(lakeread.data_table(t)).to_pyarrow_dataset())
    sql = figsql.limit_sql(tables, month=MONTH)
    t0 = time.perf_counter()
    duck.execute(sql.text, sql.params).fetchall()
    took = time.perf_counter() - t0
    duck.close()
    return took


def _timed_scan(lake: Lake, sql: Sql) -> tuple[float, int]:
    """One statement through a fresh reader (opening the tables included, as for the figures)."""
    lakeread.clear_cache()  # a repeat must scan again, not answer from the previous repeat's result
    reader = lakeread.LakeReader(lake)
    t0 = time.perf_counter()
    counted = reader.rows(sql, *_tables())[0][0]
    took = time.perf_counter() - t0
    reader.close()
    return took, int(counted)


def _timed_figures(db: Database, lake: Lake, *, recount: bool = False) -> tuple[float, figures.MonthFigures]:
    """All figures of the month from the rollups (or recounted from the lake), with no cached result."""
    lakeread.clear_cache()
    t0 = time.perf_counter()
    with db.session() as s, s.begin():
        fig = figures.month_figures(s, lake=lake, month=MONTH, recount=recount)
    return time.perf_counter() - t0, fig


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def measure(scale: float, work: Path, *, changed: float, repeat: int) -> dict[str, Any]:
    """Write the lake at a scale; time all figures (SQL + lake), the row-count limit and the column scan.

    Each time is the median of `repeat` cold runs (fresh reader, no cached result), the three taken in turn
    so that the load of a shared machine falls on all of them alike.
    """
    rows = int(FULL_MONTH_ROWS * scale)
    root = work / f"s{scale}"
    settings = Settings(data_dir=root, secret_key="bench")
    upgrade(settings.resolved_database_url)
    lake = Lake(settings.resolved_lake_dir)
    db = Database.from_settings(settings)
    t0 = time.perf_counter()
    rolled = write_lake(lake.root, db, rows=rows, changed=changed)
    written = time.perf_counter() - t0
    load_before = _load()
    records = {what: (table, what != "basic") for what, table in figures.RECORD_TABLES.items()}
    needed = recount.lake_columns(figures.ACTIVITY, records)
    read = {t: c for t, c in needed.items() if t in _tables()}
    runs: list[tuple[float, float, float, float]] = []
    for _ in range(repeat):
        limit, counted = _timed_scan(lake, figsql.limit_sql(_tables(), month=MONTH))
        took, fig = _timed_figures(db, lake)
        slow, _ = _timed_figures(db, lake, recount=True)
        columns, _ = _timed_scan(lake, figsql.columns_sql(read, month=MONTH))
        runs.append((limit, took, slow, columns))
    limit, took, slow, columns = (statistics.median(r[i] for r in runs) for i in range(4))
    with db.session() as s, s.begin():
        disagree = verify.differences(s, lake=lake, month=MONTH)
    arrow_limit = _arrow_limit(lake, _tables())
    load_after = _load()
    db.dispose()
    shutil.rmtree(root, ignore_errors=True)
    return {
        "scale": scale,
        "rows": rows,
        "rows_counted": int(counted),
        "write_seconds": round(written, 2),
        "repeats": repeat,
        "figures_seconds": round(took, 4),
        "limit_seconds": round(limit, 3),
        "ratio_to_limit": round(took / limit, 3) if limit else None,
        "recount_seconds": round(slow, 3),
        "recount_ratio_to_limit": round(slow / limit, 2) if limit else None,
        "rollups_agree_with_recount": not disagree,
        "rollup_seconds": round(rolled, 2),
        "rollup_seconds_per_million_records": round(rolled / counted * 1e6, 3) if counted else None,
        "column_scan_seconds": round(columns, 3),
        "recount_ratio_to_column_scan": round(slow / columns, 2) if columns else None,
        "arrow_limit_seconds": round(arrow_limit, 3),
        "recount_ratio_to_arrow_limit": round(slow / arrow_limit, 2) if arrow_limit else None,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "visits": sum(u.visits for u in fig.units),
    }


def main() -> None:
    """Run the scales, print the table and the extrapolation, write JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=float, nargs="+", default=[0.01, 0.03, 0.1])
    ap.add_argument("--changed", type=float, default=0.01, help="share of records corrected or revoked later")
    ap.add_argument("--repeat", type=int, default=3, help="cold runs per scale; the median is reported")
    args = ap.parse_args()
    # month_figures imports these on first use: a one-time cost that is not the first scale's
    for module in ("rhip.quality.service", "rhip.quality.usage"):
        importlib.import_module(module)
    work = Path(tempfile.mkdtemp(prefix="rhip-bench-quality-"))
    runs = []
    try:
        for s in args.scales:
            r = measure(s, work, changed=args.changed, repeat=args.repeat)
            runs.append(r)
            print(
                f"scale {s:<6} rows {r['rows_counted']:>12,}  figures {r['figures_seconds']:>7.3f} s  "
                f"limit {r['limit_seconds']:>6.3f} s  ratio {r['ratio_to_limit']}  |  "
                f"recount {r['recount_seconds']:.3f} s (ratio {r['recount_ratio_to_limit']}; "
                f"{r['recount_ratio_to_column_scan']} to the column scan {r['column_scan_seconds']:.3f} s; "
                f"agrees: {r['rollups_agree_with_recount']})  |  rollups at intake "
                f"{r['rollup_seconds']:.1f} s = {r['rollup_seconds_per_million_records']} s/M records  "
                f"load {r['load_average_before']}→{r['load_average_after']}",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base, top = runs[0], runs[-1]
    # linear growth in rows: time = a + b * rows, fitted on the smallest and largest scales
    b = (top["figures_seconds"] - base["figures_seconds"]) / max(1, top["rows"] - base["rows"])
    a = base["figures_seconds"] - b * base["rows"]
    # the figures read rollups, so their time hardly grows: never extrapolate below the largest measured time
    full = max(a + b * FULL_MONTH_ROWS, top["figures_seconds"])
    rb = (top["recount_seconds"] - base["recount_seconds"]) / max(1, top["rows"] - base["rows"])
    recount_full = base["recount_seconds"] - rb * base["rows"] + rb * FULL_MONTH_ROWS
    growth = top["figures_seconds"] / base["figures_seconds"] if base["figures_seconds"] else None
    out = {
        "benchmark": "quality.figures",
        "month": MONTH,
        "at": datetime.now(UTC).isoformat(),
        "changed_share": args.changed,
        "runs": runs,
        "growth_time_smallest_to_largest": round(growth, 2) if growth else None,
        "growth_rows_smallest_to_largest": round(top["rows"] / base["rows"], 2),
        "extrapolated_full_month_seconds": round(full, 2),
        "extrapolated_full_month_recount_seconds": round(recount_full, 1),
        "target_seconds": 60,
        "target_ratio_to_limit": 3,
    }
    print(
        f"growth ×{out['growth_time_smallest_to_largest']} in time "
        f"for ×{out['growth_rows_smallest_to_largest']} "
        f"in rows; full month (330 M rows) extrapolated: {full:.2f} s (target 60 s); ratio to the limit at "
        f"the largest scale {top['ratio_to_limit']} (target ≤ 3). Recount from the lake: full month "
        f"{recount_full:.1f} s, ratio {top['recount_ratio_to_limit']}; rollups cost intake "
        f"{top['rollup_seconds_per_million_records']} s per million records"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "quality.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"written {path}")


if __name__ == "__main__":
    main()
