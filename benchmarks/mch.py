"""The report year's MCH indicators for the whole city (about 80,000 births and 500,000 children under 7),
against the limit of one scan of the same source tables in the same run.

Builds the synthetic year at scale 1 (rhip.mch.synth.generate_year, bulk inserts) in a fresh database, then
times `indicators.report` (city, every district, every institution) and one plain scan of each source table
(`count(*)` plus a sum over a column, so every row is read). Targets: indicators < 5 s, and ≤ 3 × the scan.
Prints the figures and writes results/mch.json.

    .venv/bin/python benchmarks/mch.py                      # SQLite and PostgreSQL (127.0.0.1:5432)
    .venv/bin/python benchmarks/mch.py --backend sqlite --scale 0.2
    .venv/bin/python benchmarks/mch.py --backend sqlite --reuse var/bench/mch.db   # build once, time again
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.mch import indicators, synth
from rhip.mch.models import AntenatalVisit, Child, ChildVisit, PostpartumVisit, Pregnancy
from rhip.registry import service as registry

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PG_ADMIN = os.environ.get("RHIP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
LIMIT_SECONDS, LIMIT_RATIO = 5.0, 3.0
LOADAVG = Path("/proc/loadavg")
# one scan per source table: every row read once, no join, no grouping
SCANS = (
    (Pregnancy, Pregnancy.registration_week),
    (AntenatalVisit, AntenatalVisit.gestational_week),
    (PostpartumVisit, PostpartumVisit.days_after),
    (Child, Child.birth_order),
    (ChildVisit, ChildVisit.age_days),
)


def _database(backend: str, tmp: Path) -> tuple[str, Any]:
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'mch.db'}", None
    name = f"rhip_bench_mch_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False), (admin, name)


def _drop(handle: Any) -> None:
    if handle:
        admin, name = handle
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _best(fn: Any, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def _counts(db: Database) -> dict[str, int]:
    with db.session() as s:
        return {
            t: int(s.scalar(select(func.count()).select_from(m)) or 0)
            for t, m in (
                ("pregnancies", Pregnancy),
                ("antenatal_visits", AntenatalVisit),
                ("postpartum_visits", PostpartumVisit),
                ("children", Child),
                ("child_visits", ChildVisit),
            )
        }


def run(backend: str, scale: float, year: int, runs: int, reuse: Path | None = None) -> dict[str, Any]:
    """Build (or, with `reuse`, open the SQLite file a previous run built and migrate it), time, compare."""
    with tempfile.TemporaryDirectory() as tmp:
        url, handle = (f"sqlite:///{reuse}", None) if reuse else _database(backend, Path(tmp))
        try:
            settings = Settings(data_dir=Path(tmp), database_url=url)
            upgrade(settings.resolved_database_url)
            db = Database.from_settings(settings)
            with db.session() as s, s.begin():
                registry.ensure_loaded(s)
            t = time.perf_counter()
            rows = _counts(db)
            if not rows["pregnancies"]:
                with db.session() as s, s.begin():
                    rows = synth.generate_year(s, year=year, scale=scale)
            build = time.perf_counter() - t
            with db.engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()

            def scan() -> None:
                with db.session() as s:
                    for model, col in SCANS:
                        s.execute(select(func.count(), func.sum(col)).select_from(model)).one()

            result: dict[str, Any] = {}

            def report() -> None:
                with db.session() as s:
                    result["r"] = indicators.report(s, year=year)

            scan()  # warm the cache for both sides alike
            report()
            scan_s, scan_all = _best(scan, runs)
            ind_s, ind_all = _best(report, runs)
            rep = result["r"]
            db.dispose()
        finally:
            _drop(handle)
    values = {d.key: rep.total.value(d) for d in indicators.DEFINITIONS}
    return {
        "backend": backend,
        "scale": scale,
        "year": year,
        "rows": rows,
        "build_seconds": round(build, 1),
        "indicators_seconds": round(ind_s, 3),
        "indicators_runs": [round(x, 3) for x in ind_all],
        "scan_seconds": round(scan_s, 3),
        "scan_runs": [round(x, 3) for x in scan_all],
        "ratio": round(ind_s / scan_s, 2) if scan_s else None,
        "live_births": rep.total.counts["live_births"],
        "under7": rep.total.counts["under7"],
        "districts": len(rep.districts),
        "institutions": len(rep.institutions),
        "indicators": values,
        "meets_5s": ind_s < LIMIT_SECONDS,
        "meets_ratio": ind_s <= LIMIT_RATIO * scan_s,
    }


def main() -> int:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--year", type=int, default=2024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reuse", type=Path, help="SQLite file to build once and time again (kept)")
    args = ap.parse_args()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    if args.reuse:
        if backends != ("sqlite",):
            ap.error("--reuse is for --backend sqlite")
        args.reuse.parent.mkdir(parents=True, exist_ok=True)
    out = {
        "benchmark": "mch",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg": LOADAVG.read_text().split()[:3] if LOADAVG.exists() else None,
            "note": "2 cores shared by 8 helpers",
        },
        "limits": {"seconds": LIMIT_SECONDS, "ratio_to_scan": LIMIT_RATIO},
        "results": [],
    }
    ok = True
    for backend in backends:
        r = run(backend, args.scale, args.year, args.runs, args.reuse)
        out["results"].append(r)  # type: ignore[attr-defined]
        ok = ok and r["meets_5s"] and r["meets_ratio"]
        print(
            f"{backend}: {r['live_births']:,} live births, {r['under7']:,} children under 7 "
            f"({sum(r['rows'].values()):,} rows, built in {r['build_seconds']} s)\n"
            f"  indicators (city + {r['districts']} districts + {r['institutions']} institutions): "
            f"{r['indicators_seconds']:.3f} s (limit {LIMIT_SECONDS} s) {'OK' if r['meets_5s'] else 'OVER'}\n"
            f"  one scan of the source tables: {r['scan_seconds']:.3f} s; ratio {r['ratio']} "
            f"(limit {LIMIT_RATIO}) {'OK' if r['meets_ratio'] else 'OVER'}"
        )
        print("  " + ", ".join(f"{k} {v}" for k, v in r["indicators"].items()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "mch.json").write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")
    load = LOADAVG.read_text().split()[:3] if LOADAVG.exists() else "?"
    print(f"written {RESULTS / 'mch.json'} (load average {' '.join(load)}: figures vary with it)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
