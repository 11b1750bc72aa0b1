"""The demo's intake against the intake benchmark, back to back in one run (issue 14, item 6).

    .venv/bin/python benchmarks/intake_demo.py --scale 0.01 --keep /tmp/w/synth01

1. the demo's intake step as `rhip demo` runs it (`rhip.fhir.demo` → `intake.demo.ingest_month`, in
   `--workers` processes, default as the demo: `intake.demo.WORKERS`): every institution, batch files,
   lab results as real-time chunks, the FHIR share, the CDA share, then the compaction — seconds and
   records/s per way in (busy seconds summed over the workers);
2. `benchmarks/intake.py`'s end-to-end run on the same month (the 8 largest institutions, batch files
   only, no compaction), on a fresh database and lake.

Target: the demo's records/s within 2x of the benchmark's (ratio = benchmark / demo <= 2). The machine is
shared: both runs carry their load average; the ratio, taken seconds apart, is the figure to read.
Writes results/intake_demo.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.fhir.demo import sender
from rhip.intake import demo
from rhip.registry import service as registry

HERE = Path(__file__).parent
TARGET_RATIO = 2.0


def _fresh(root: Path) -> Settings:
    shutil.rmtree(root, ignore_errors=True)
    settings = Settings(data_dir=root, secret_key="d" * 40)
    upgrade(settings.resolved_database_url)
    db = Database.from_settings(settings)
    with db.session() as s, s.begin():
        registry.ensure_loaded(s)
    db.dispose()
    return settings


def cpu_seconds() -> float:
    """CPU seconds of this process (all threads) and of its ended child processes (the demo's workers)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def run_demo(synth_dir: Path, root: Path, workers: int) -> dict[str, Any]:
    """The demo's intake step, timed per way in."""
    settings = _fresh(root)
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), cpu_seconds()
    got = demo.ingest_month(
        settings=settings,
        synth_dir=synth_dir,
        cda_per_org=demo.CDA_PER_ORG,
        fhir_factory=sender,
        workers=workers,
    )
    wall = time.perf_counter() - t0
    received = got["totals"].received
    ways = {
        c: {
            "records": got["way_records"].get(c, 0),
            "seconds": round(got["way_seconds"].get(c, 0.0), 2),
            "receipts": got["channels"].get(c, 0),
        }
        for c in ("batch", "realtime", "fhir", "cda")
    }
    return {
        "records": received,
        "intake_seconds": round(got["seconds"], 2),
        "compact_seconds": round(got["compact_seconds"], 2),
        "wall_seconds": round(wall, 2),
        "workers": workers,
        "cpu_seconds_with_workers": round(cpu_seconds() - c0, 2),
        "records_per_s": round(received / got["seconds"]),
        "records_per_s_with_compaction": round(received / wall),
        "ways": ways,
        "rejected": got["totals"].rejected,
        "duplicate": got["totals"].duplicate,
        "load": [round(load, 2), round(os.getloadavg()[0], 2)],
    }


def run_benchmark(synth_dir: Path, root: Path, top: int) -> dict[str, Any]:
    """benchmarks/intake.py's end to end: the largest institutions' batch files, no compaction."""
    settings = _fresh(root)
    size: dict[str, int] = {}
    for f in demo.manifest_files(synth_dir):
        size[f["org_code"]] = size.get(f["org_code"], 0) + int(f["rows"])
    orgs = sorted(size, key=lambda o: -size[o])[:top]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    got = demo.ingest_month(
        settings=settings, synth_dir=synth_dir, institutions=set(orgs), realtime=False, compact=False
    )
    secs = time.perf_counter() - t0
    return {
        "institutions": top,
        "records": got["totals"].received,
        "seconds": round(secs, 2),
        "records_per_s": round(got["totals"].received / secs),
        "load": [round(load, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=0.01)
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--keep", type=Path, default=None, help="reuse/keep the synthetic month here")
    ap.add_argument("--workers", type=int, default=demo.WORKERS, help="the demo's processes (as `rhip demo`)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rhip-demo-bench-"))
    synth_dir = args.keep or work / "synth"
    if not (synth_dir / "manifest.json").exists():
        from rhip.synth import service as synth

        synth.generate(month="2025-03", scale=args.scale, seed=5, out=synth_dir, gbk_share=0.1, console=None)
    try:
        got_demo = run_demo(synth_dir, work / "demo", args.workers)
        got_bench = run_benchmark(synth_dir, work / "bench", args.top)
    finally:
        shutil.rmtree(work / "demo", ignore_errors=True)
        shutil.rmtree(work / "bench", ignore_errors=True)
    ratio = got_bench["records_per_s"] / max(got_demo["records_per_s"], 1)
    result = {
        "scale": args.scale,
        "demo": got_demo,
        "benchmark": got_bench,
        "ratio_benchmark_over_demo": round(ratio, 2),
        "target_ratio": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print(
        f"demo {got_demo['records_per_s']:,} rec/s ({got_demo['intake_seconds']} s + compaction "
        f"{got_demo['compact_seconds']} s), benchmark {got_bench['records_per_s']:,} rec/s: "
        f"ratio {ratio:.2f} (target <= {TARGET_RATIO})"
    )
    out = HERE / "results" / "intake_demo.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
