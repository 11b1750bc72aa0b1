"""Benchmark: the bulletin of a month rendered as HTML, PDF and XLSX (target under 10 seconds).

Uses the configured data folder (RHIP_DATA_DIR; `rhip demo` fills it) or an empty one; prints the time of each
step, the total wall time to the last byte (WeasyPrint is imported in the background while the issue is built,
as `rhip bulletin` does) and the load average, and writes JSON to benchmarks/results/bulletin.json.

    .venv/bin/python benchmarks/bulletin.py --month 2025-03
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rhip.bulletin import render, service
from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.lake.store import Lake

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    """Build and render one issue, timing each step."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--month", default="2025-03")
    args = ap.parse_args()
    settings = Settings()
    upgrade(settings.resolved_database_url)
    db = Database.from_settings(settings)
    times: dict[str, float] = {}
    load_before = round(os.getloadavg()[0], 2)
    started = time.perf_counter()
    render.preload()  # as `rhip bulletin` does: WeasyPrint's import overlaps with building the issue
    t = time.perf_counter()
    with db.session() as s, s.begin():
        b = service.build(session=s, lake=Lake(settings.resolved_lake_dir), month=args.month, strict=True)
    times["build"] = time.perf_counter() - t
    t = time.perf_counter()
    page = render.html(b)
    times["html"] = time.perf_counter() - t
    t = time.perf_counter()
    pdf = render.pdf(b, html_text=page)
    times["pdf"] = time.perf_counter() - t
    t = time.perf_counter()
    xlsx = render.xlsx(b)
    times["xlsx"] = time.perf_counter() - t
    db.dispose()
    total = time.perf_counter() - started
    load_after = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as d:
        Path(d, "b.pdf").write_bytes(pdf)
    for k, v in times.items():
        print(f"{k:<6} {v:6.2f} s")
    print(
        f"total  {total:6.2f} s (target 10 s); {len(b.sections)} sections, "
        f"PDF {len(pdf):,} B, XLSX {len(xlsx):,} B; load average {load_before}→{load_after}"
    )
    out = {
        "benchmark": "bulletin.render",
        "month": args.month,
        "at": datetime.now(UTC).isoformat(),
        "data_dir": str(settings.data_dir),
        "seconds": {k: round(v, 3) for k, v in times.items()},
        "total_seconds": round(total, 3),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "target_seconds": 10,
        "sections": len(b.sections),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bulletin.json").write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
