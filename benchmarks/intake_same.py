"""Same month in, same platform out: the demo's intake (every way in, then the compaction) on one synthetic
month, fingerprinted — the lake's current records and every stored version, the key index, the receipts and
their per-table counts, the problem lists, the daily counts, the rollups, the shared health record's
entries, the CDA documents kept and the bulletin's data-collection figures. Run it on the code before and
after a change and compare (issue 14: a faster intake must not change what is ingested):

    .venv/bin/python benchmarks/intake_same.py --keep /tmp/w/s001 --scale 0.001 --out /tmp/w/before.json
    .venv/bin/python benchmarks/intake_same.py --keep /tmp/w/s001 --scale 0.001 --against /tmp/w/before.json

(the "before" run: the same command with `PYTHONPATH=<old checkout>/src`). Each part is a SHA-256 over its
rows as sorted text, without what differs by nature between two runs (receipt ids, `_batch`, ingest
times, row ids). Exits 1 when `--against` names a part that differs. Prints wall and CPU seconds (this
process and its workers) and the load average of the intake it ran. `--workers` (default: as `rhip demo`)
ingests institutions in that many processes; `--workers 1` is the one-process run (and the only call code
before the workers understands).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
from deltalake import DeltaTable
from sqlalchemy import select, text

from intake_demo import (
    _fresh as fresh_settings,  # the same fresh database and lake
    cpu_seconds,
)
from rhip.config import Settings
from rhip.db.base import Base
from rhip.db.engine import Database
from rhip.db.models_registry import import_all_models
from rhip.fhir.demo import sender
from rhip.intake import demo, service, store
from rhip.lake.duck import Duck
from rhip.lake.store import Lake
from rhip.quality import stats as quality

MONTH = "2025-03"
VARYING = {"id", "batch_id", "_batch", "_ingested_at", "_year", "received_at", "committed_at", "created_at"}
# SQL tables compared whole (less VARYING columns and the ones named)
SQL_TABLES: dict[str, set[str]] = {
    "intake_daily_counts": set(),
    "intake_activity": set(),
    "intake_realtime_days": set(),
    "intake_people_months": set(),
    "intake_people_first": set(),
    "records_entries": {"updated_at"},
    "intake_cda_documents": set(),
}


def _round(v: Any) -> Any:
    """Floats to 6 decimals: a rollup's amount is a sum of doubles whose order Polars' group-by does not fix
    (the last bits differ between two runs of the same code)."""
    return round(v, 6) if isinstance(v, float) else v


def _digest(lines: list[str]) -> dict[str, Any]:
    lines.sort()
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return {"rows": len(lines), "sha256": h.hexdigest()}


def _frame_digest(df: pl.DataFrame) -> dict[str, Any]:
    df = df.select(sorted(c for c in df.columns if c not in VARYING))
    return _digest([json.dumps(r, default=str, ensure_ascii=False) for r in df.iter_rows()])


def fingerprint(settings: Settings) -> dict[str, dict[str, Any]]:
    """A digest per part of what the intake left behind."""
    db = Database.from_settings(settings)
    lake = Lake(settings.resolved_lake_dir)
    import_all_models()
    parts: dict[str, dict[str, Any]] = {}
    duck = Duck(lake)
    try:
        with db.session() as s:
            for name in sorted(lake.tables()):
                if name.startswith("ods_"):
                    table = name.removeprefix("ods_")
                    cur = pl.from_arrow(duck.query(service.visible_sql(s, table)))
                    assert isinstance(cur, pl.DataFrame)
                    parts[f"lake current {table}"] = _frame_digest(cur)
                if name.startswith("ods_") or name == store.KEYS_TABLE:
                    every = pl.from_arrow(DeltaTable(str(lake.path(name))).to_pyarrow_table())
                    assert isinstance(every, pl.DataFrame)
                    parts[f"lake versions {name}"] = _frame_digest(every)
            conn = s.connection()
            who = "SELECT b.institution_code, b.channel"
            queries = {
                "receipts": f"{who}, b.status, b.received, b.accepted, b.updated, b.revoked, b.duplicate, "
                "b.rejected, b.error_code FROM intake_batches b",
                "receipt tables": f"{who}, t.table_name, t.received, t.accepted, t.updated, t.revoked, "
                "t.duplicate, t.rejected FROM intake_batch_tables t "
                "JOIN intake_batches b ON b.id = t.batch_id",
                "problems": f"{who}, p.table_name, p.file, p.row, p.business_key, p.rule, p.field, p.value, "
                "p.message FROM intake_problems p JOIN intake_batches b ON b.id = p.batch_id",
            }
            for part, query in queries.items():
                parts[part] = _digest(
                    [json.dumps(list(r), default=str, ensure_ascii=False) for r in conn.execute(text(query))]
                )
            for name, skip in SQL_TABLES.items():
                sql_table = Base.metadata.tables[name]
                cols = [c for c in sql_table.columns if c.name not in VARYING | skip]
                parts[name] = _digest(
                    [
                        json.dumps([_round(v) for v in r], default=str, ensure_ascii=False, sort_keys=True)
                        for r in conn.execute(select(*cols))
                    ]
                )
            sections = quality.bulletin_sections(session=s, lake=lake, month=MONTH)
            parts["bulletin data-collection sections"] = _digest(
                [json.dumps(sections, default=str, ensure_ascii=False, sort_keys=True)]
            )
    finally:
        duck.close()
        db.dispose()
    return parts


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=0.001)
    ap.add_argument("--keep", type=Path, required=True, help="the synthetic month (generated here if absent)")
    ap.add_argument("--out", type=Path, default=None, help="write the fingerprint here")
    ap.add_argument("--against", type=Path, default=None, help="compare with this fingerprint")
    ap.add_argument("--institutions", default=None, help="only these institutions (comma-separated)")
    ap.add_argument(
        "--workers", type=int, default=getattr(demo, "WORKERS", 1), help="processes, as `rhip demo` runs them"
    )
    args = ap.parse_args()
    if not (args.keep / "manifest.json").exists():
        from rhip.synth import service as synth

        synth.generate(month=MONTH, scale=args.scale, seed=5, out=args.keep, gbk_share=0.1, console=None)
    work = Path(tempfile.mkdtemp(prefix="rhip-intake-same-"))
    try:
        settings = fresh_settings(work / "var")
        load = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), cpu_seconds()
        # one process: the call older code understands too (the "before" run of a comparison)
        ways = (
            {"fhir": sender(settings)}
            if args.workers <= 1
            else {"fhir_factory": sender, "workers": args.workers}
        )
        got = demo.ingest_month(
            settings=settings,
            synth_dir=args.keep,
            cda_per_org=demo.CDA_PER_ORG,
            institutions=set(args.institutions.split(",")) if args.institutions else None,
            **ways,
        )
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        parts = fingerprint(settings)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    t = got["totals"]
    print(
        f"intake: {t.received:,} records, {len(got['receipts'])} receipts, {wall:.1f} s wall, {cpu:.1f} s CPU"
        f" (load {load:.2f} → {os.getloadavg()[0]:.2f}); ways {json.dumps(got['way_seconds'])}"
    )
    if args.out:
        args.out.write_text(json.dumps(parts, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.against is None:
        return 0
    before = json.loads(args.against.read_text(encoding="utf-8"))
    differ = sorted(k for k in set(before) | set(parts) if before.get(k) != parts.get(k))
    for k in differ:
        print(f"DIFFERS {k}: before {before.get(k)} after {parts.get(k)}")
    print(f"{len(parts) - len(differ)} of {len(set(before) | set(parts))} parts identical")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
