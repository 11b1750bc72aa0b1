"""Intake throughput: end to end (read → validate → dedup → Delta commit → receipt) on a synthetic month,
against the limit (DuckDB reading the same CSVs and writing Parquet, no checks) and the peer (the same
rules in pandera's Polars backend, validation only), in the same run. Writes results/intake.json.

Each receipt's commit also does the services' share in its transaction: the EMPI links the batch's
patients, the shared record absorbs its timeline entries, the MCH registry its forms. Those calls are
timed (called through, nothing replaced), and the figure without them is printed beside the end to end:
the part of intake the limit's work compares with.

    .venv/bin/python benchmarks/intake.py --scale 0.1 --top 8 --keep /tmp/w/synth10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandera.polars as pa
import polars as pl

from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.identity import service as identity
from rhip.intake import demo, formats, reading, rules, store
from rhip.lake.store import Lake
from rhip.mch import service as mch
from rhip.records import service as records
from rhip.registry import catalogue, codes, service as registry

HERE = Path(__file__).parent

# what a receipt's commit does for the services beyond storing the batch (timed, each called through): the
# patients' match features and the timeline entries are built before the commit, the rest in it
SERVICES_AT_COMMIT = {
    "empi_features": (identity, "patient_items"),
    "empi_links": (identity, "link_patient_items"),
    "record_entries_build": (records, "build_stored"),
    "record_entries": (records, "absorb_stored"),
    "mch_registry": (mch, "absorb_stored"),
}


@contextlib.contextmanager
def _timed_services(spent: dict[str, float]) -> Any:
    """Within this block, the seconds spent in each of `SERVICES_AT_COMMIT` add up in `spent`."""
    saved = {}
    for part, (module, name) in SERVICES_AT_COMMIT.items():
        fn = saved[part] = getattr(module, name)

        def timed(*a: Any, _fn: Any = fn, _part: str = part, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return _fn(*a, **k)
            finally:
                spent[_part] = spent.get(_part, 0.0) + time.perf_counter() - t0

        setattr(module, name, timed)
    try:
        yield
    finally:
        for part, (module, name) in SERVICES_AT_COMMIT.items():
            setattr(module, name, saved[part])


def _pandera_schema(ds: catalogue.Dataset) -> pa.DataFrameSchema:
    """The intake rules (types, required, codes, ranges, ID checksum, dates) as a pandera schema."""
    cols = {}
    for f in ds.fields:
        checks = []
        if f.type in ("integer", "decimal"):
            dtype = pl.Int64 if f.type == "integer" else pl.Float64
            checks.append(
                pa.Check(
                    lambda d, n=f.name, t=dtype: d.lazyframe.select(
                        pl.col(n).is_null() | pl.col(n).str.strip_chars().cast(t, strict=False).is_not_null()
                    ),
                    name="type",
                )
            )
            if f.minimum is not None:
                checks.append(
                    pa.Check(
                        lambda d, n=f.name, t=dtype, lo=f.minimum: d.lazyframe.select(
                            pl.col(n).str.strip_chars().cast(t, strict=False).fill_null(lo) >= lo
                        ),
                        name="min",
                    )
                )
            if f.maximum is not None:
                checks.append(
                    pa.Check(
                        lambda d, n=f.name, t=dtype, hi=f.maximum: d.lazyframe.select(
                            pl.col(n).str.strip_chars().cast(t, strict=False).fill_null(hi) <= hi
                        ),
                        name="max",
                    )
                )
        elif f.type == "date":
            checks.append(
                pa.Check(
                    lambda d, n=f.name: d.lazyframe.select(
                        pl.col(n).is_null()
                        | pl.col(n).str.to_date(rules.DATE_FMT, strict=False).is_not_null()
                    ),
                    name="date",
                )
            )
        elif f.type == "datetime":
            checks.append(
                pa.Check(
                    lambda d, n=f.name: d.lazyframe.select(
                        pl.col(n).is_null()
                        | pl.col(n).str.to_datetime(rules.DATETIME_FMT, strict=False).is_not_null()
                    ),
                    name="datetime",
                )
            )
            checks.append(
                pa.Check(
                    lambda d, n=f.name: d.lazyframe.select(
                        pl.col(n)
                        .str.to_datetime(rules.DATETIME_FMT, strict=False)
                        .fill_null(datetime(2000, 1, 1))
                        <= datetime(2030, 1, 1)
                    ),
                    name="future",
                )
            )
        elif f.type == "id_number":
            checks.append(
                pa.Check(
                    lambda d, n=f.name: d.lazyframe.select(
                        pl.col(n).is_null() | ~rules.id_check_fails(n).fill_null(False)
                    ),
                    name="id",
                )
            )
        elif f.type == "code" and f.code_system and f.code_system not in ("icd10", "area", "department"):
            checks.append(pa.Check.isin(list(codes.codes_of(f.code_system))))
        cols[f.name] = pa.Column(pl.String, checks=checks, nullable=not f.required)
    return pa.DataFrameSchema(cols)


def _history(
    settings: Settings, synth_dir: Path, orgs: list[str], rows: int, ns: list[int]
) -> dict[str, Any]:
    """End-to-end time of the same month against N months of stored history.

    History is simulated in the key index (what dedup and link checks read): the month's index rows copied
    N times into other months with distinct keys, one Delta commit, before a fresh run of the month.
    """
    from deltalake import DeltaTable, write_deltalake

    base_index = pl.from_arrow(DeltaTable(str(settings.resolved_lake_dir / "intake_keys")).to_pyarrow_table())
    assert isinstance(base_index, pl.DataFrame)
    out: dict[str, Any] = {}
    for n in ns:
        work = Path(tempfile.mkdtemp(prefix=f"rhip-hist{n}-"))
        s2 = Settings(data_dir=work / "var", secret_key="b" * 40)
        upgrade(s2.resolved_database_url)
        db2 = Database.from_settings(s2)
        with db2.session() as s, s.begin():
            registry.ensure_loaded(s)
        copies = [
            base_index.with_columns(
                pl.lit(f"{2022 + i // 12}-{i % 12 + 1:02d}").alias("month"),
                (pl.lit(f"H{i}|") + pl.col("key")).alias("key"),
                pl.lit("Bhistory000").alias("_batch"),
            )
            for i in range(n)
        ]
        s2.resolved_lake_dir.mkdir(parents=True, exist_ok=True)
        write_deltalake(
            str(s2.resolved_lake_dir / "intake_keys"),
            pl.concat(copies).to_arrow(),
            partition_by=["table", "org_code", "month"],
        )
        t0 = time.perf_counter()
        demo.ingest_month(
            settings=s2, synth_dir=synth_dir, institutions=set(orgs), realtime=False, compact=False
        )
        secs = time.perf_counter() - t0
        out[f"{n}x"] = {
            "index_rows": n * base_index.height,
            "seconds": round(secs, 3),
            "records_per_s": round(rows / secs),
        }
        db2.dispose()
        shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=0.01)
    ap.add_argument("--top", type=int, default=10, help="institutions (largest first) in the end-to-end run")
    ap.add_argument("--keep", type=Path, default=None, help="reuse/keep the synthetic month here")
    ap.add_argument(
        "--history",
        default="",
        help="also time the month against N months of stored history, e.g. 1,10,30 (key index rows)",
    )
    ap.add_argument(
        "--sniffer-limit",
        action="store_true",
        help="also time DuckDB with its CSV sniffer (how the limit was measured before)",
    )
    args = ap.parse_args()
    load_start = round(os.getloadavg()[0], 2)
    work = Path(tempfile.mkdtemp(prefix="rhip-bench-"))
    synth_dir = args.keep or work / "synth"
    if not (synth_dir / "manifest.json").exists():
        from rhip.synth import service as synth

        synth.generate(month="2025-03", scale=args.scale, seed=5, out=synth_dir, gbk_share=0.1, console=None)
    files = demo.manifest_files(synth_dir)
    size: dict[str, int] = {}
    for f in files:
        size[f["org_code"]] = size.get(f["org_code"], 0) + int(f["rows"])
    orgs = sorted(size, key=lambda o: -size[o])[: args.top]
    chosen = [f for f in files if f["org_code"] in orgs]
    rows = sum(int(f["rows"]) for f in chosen)
    paths = [synth_dir / f["path"] for f in chosen]

    # end to end, a fresh database and lake
    settings = Settings(data_dir=work / "var", secret_key="b" * 40)
    upgrade(settings.resolved_database_url)
    db = Database.from_settings(settings)
    with db.session() as s, s.begin():
        registry.ensure_loaded(s)
    services: dict[str, float] = {}
    t0 = time.perf_counter()
    with _timed_services(services):
        got = demo.ingest_month(
            settings=settings, synth_dir=synth_dir, institutions=set(orgs), realtime=False, compact=False
        )
    e2e = time.perf_counter() - t0
    intake_only = e2e - sum(services.values())
    lake = Lake(settings.resolved_lake_dir)
    files_before = {t: store.file_count(lake, t) for t in lake.tables()}
    t0 = time.perf_counter()
    store.compact(lake)
    compaction = time.perf_counter() - t0
    files_after = {t: store.file_count(lake, t) for t in lake.tables()}

    # the limit: DuckDB reading the same records as CSV and writing Parquet, no checks. DuckDB cannot read
    # GBK without an extension (not installable offline), so GBK files are transcoded to UTF-8 copies
    # *before* the clock starts; the end-to-end run above still pays for detecting and transcoding them.
    utf8_paths = []
    for i, (f, p) in enumerate(zip(chosen, paths, strict=True)):
        if f.get("encoding") == "gbk":
            tmp = work / f"t{i}.csv"
            formats.transcode_to_utf8(p, tmp, "gb18030")
            utf8_paths.append(tmp)
        else:
            utf8_paths.append(p)
    # Fair: DuckDB is told what our reader knows (the header, every column VARCHAR, RFC 4180 quoting), so
    # its per-file dialect sniffer is not timed; that sniffer alone made the earlier "limit" ~3x slower.
    con = duckdb.connect()
    t0 = time.perf_counter()
    limit_rows = 0
    for i, p in enumerate(utf8_paths):
        header = formats.read_header(p)
        sql = (
            "COPY (SELECT * FROM read_csv($path, header=true, auto_detect=false, delim=',', quote='\"', "
            "escape='\"', columns=$cols)) TO $out (FORMAT parquet)"
        )
        cols = dict.fromkeys(header, "VARCHAR")
        limit_rows += con.execute(
            sql, {"path": str(p), "cols": cols, "out": f"{work}/l{i}.parquet"}
        ).fetchone()[0]
    limit = time.perf_counter() - t0
    assert limit_rows == rows, (limit_rows, rows)
    sniffed = None
    if args.sniffer_limit:
        t0 = time.perf_counter()
        for i, p in enumerate(utf8_paths):
            sniff = (
                "COPY (SELECT * FROM read_csv($path, all_varchar=true, header=true)) TO $out (FORMAT parquet)"
            )
            con.execute(sniff, {"path": str(p), "out": f"{work}/s{i}.parquet"})
        sniffed = time.perf_counter() - t0

    # the peer: pandera (Polars backend), validation only, on frames already read
    frames = []
    for f, p in zip(chosen, paths, strict=True):
        got_t = formats.read_file(p, filename=p.name, workdir=work)
        ds = catalogue.get(f["table"])
        df0 = pl.from_arrow(got_t.table)
        assert isinstance(df0, pl.DataFrame)
        frames.append((ds, df0))
    schemas = {ds.name: _pandera_schema(ds) for ds, _ in frames}
    t0 = time.perf_counter()
    for ds, df in frames:
        with contextlib.suppress(pa.errors.SchemaErrors):
            schemas[ds.name].validate(df, lazy=True)
    peer = time.perf_counter() - t0
    # our validation only, same frames (with the row/file columns our rules carry added before the clock)
    prepared = [(ds, reading.frame_of(ds, df.to_arrow())) for ds, df in frames]
    t0 = time.perf_counter()
    now = datetime.now(UTC)
    for ds, df in prepared:
        rules.validate(ds, df, institution_code=df["org_code"][0], now_utc=now)
    ours_validate = time.perf_counter() - t0

    result = {
        "scale": args.scale,
        "institutions": len(orgs),
        "files": len(chosen),
        "records": rows,
        "end_to_end_seconds": round(e2e, 3),
        "end_to_end_records_per_s": round(rows / e2e),
        "end_to_end_vs_target_1M": round(rows / e2e / 1_000_000, 3),
        "compaction_after_seconds": round(compaction, 3),
        "lake_files_before_compaction": sum(files_before.values()),
        "lake_files_after_compaction": sum(files_after.values()),
        "limit_note": "DuckDB CSV->Parquet, header and VARCHAR columns given (no sniffer), UTF-8 copies "
        "(GBK transcoded before timing)",
        "load_average_at_start": load_start,
        "limit_duckdb_csv_to_parquet_seconds": round(limit, 3),
        "limit_records_per_s": round(rows / limit),
        "peer_pandera_polars_validate_seconds": round(peer, 3),
        "peer_records_per_s": round(rows / peer),
        "ours_validate_only_seconds": round(ours_validate, 3),
        "ours_validate_only_records_per_s": round(rows / ours_validate),
        "end_to_end_vs_limit": round(limit / e2e, 3),
        # the commit's work for the services (EMPI, shared record, MCH registry), which the limit does not do
        "services_at_commit_seconds": {k: round(v, 3) for k, v in services.items()},
        "intake_only_seconds": round(intake_only, 3),
        "intake_only_records_per_s": round(rows / intake_only),
        "intake_only_vs_limit": round(limit / intake_only, 3),
        "validate_vs_peer_speedup": round(peer / ours_validate, 2),
        "end_to_end_vs_peer_validation_only": round(peer / e2e, 2),
        "limit_with_duckdb_sniffer_records_per_s": round(rows / sniffed) if sniffed else None,
        "load_average_at_end": round(os.getloadavg()[0], 2),
        "batches": len(got["receipts"]),
        "rejected": got["totals"].rejected,
        "duplicate": got["totals"].duplicate,
    }
    if args.history:
        result["history"] = _history(
            settings, synth_dir, orgs, rows, [int(n) for n in args.history.split(",") if n]
        )
    for k, v in result.items():
        print(f"{k:42s} {v}")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "intake.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    db.dispose()
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
