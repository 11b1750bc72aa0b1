"""Benchmark: synthesise 2025-03 at scale 0.01 (≈3 million rows) and report rows per second.

Usage: python benchmarks/synth.py [SCALE ...]   (default 0.01; the claim is under a minute on 2 cores)
Writes benchmarks/results/synth.json.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rhip.synth import service

HERE = Path(__file__).parent
LIMIT_SECONDS = 60.0


def run(scale: float, month: str = "2025-03", seed: int = 42) -> dict[str, object]:
    """Generate one month into a temporary folder and measure it."""
    out = Path(tempfile.mkdtemp(prefix="rhip-synth-bench-"))
    try:
        started = time.perf_counter()
        result = service.generate(month=month, scale=scale, seed=seed, out=out)
        seconds = time.perf_counter() - started
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {
        "month": month,
        "scale": scale,
        "seed": seed,
        "rows": result.rows,
        "files": result.files,
        "gbk_files": result.gbk_files,
        "residents": result.residents,
        "bytes": size,
        "seconds": round(seconds, 2),
        "rows_per_second": round(result.rows / seconds),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "under_a_minute": seconds < LIMIT_SECONDS if scale <= 0.01 else None,
    }


def main(argv: list[str]) -> int:
    """Run the scales asked for (default 0.01), print the figures, write the JSON."""
    scales = [float(a) for a in argv] or [0.01]
    runs = []
    for scale in scales:
        r = run(scale)
        runs.append(r)
        print(
            f"synth 2025-03 scale {scale}: {r['rows']:,} rows, {r['files']} files, {r['seconds']} s, "
            f"{r['rows_per_second']:,} rows/s, peak RSS {r['max_rss_mb']} MB",
            flush=True,
        )
    payload = {
        "benchmark": "synth",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "runs": runs,
    }
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "synth.json").write_text(
        json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return 0 if all(r["under_a_minute"] is not False for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
