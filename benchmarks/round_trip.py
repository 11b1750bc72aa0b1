"""Round trip at scale: the synthetic 2025-03 city, every institution's files through intake as the demo
sends them, then the bulletin's figures per hospital and district against the city's ground truth.

For every unit the bulletin's 门急诊人次, 出院人次, 收入 and 住院收入 must equal the ground truth's valid
records (every planted defect, duplicate, modification and revocation filtered), and 实时数据上传天数 /
实时数据表单上传情况 the days and forms it sent in real time. The ground truth's valid records are also
compared with s × the 2025-03 seed figure (the calibration target), which they equal when no loss is
planted. Intake's rollups (what the figures read) are checked against a recount of the lake. Prints the
mismatches (none expected), the times, and writes JSON to benchmarks/results/round_trip.json.

    .venv/bin/python benchmarks/round_trip.py --scale 0.1 --keep /tmp/w/synth10
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.intake import demo as intake_demo
from rhip.lake.store import Lake
from rhip.quality import figures, service as quality, verify
from rhip.registry import service as registry
from rhip.synth import calibration, service as synth

MONTH = "2025-03"
RESULTS = Path(__file__).parent / "results"
# figure → (ground-truth field, how the unit's figure is read)
FIGURES: dict[str, tuple[str, Callable[[figures.UnitFigures], int]]] = {
    "visits": ("outpatient_visits", lambda u: u.visits),
    "discharges": ("discharges", lambda u: u.discharges),
    "visit_revenue_fen": ("outpatient_revenue_fen", lambda u: round(u.visit_revenue * 100)),
    "inpatient_revenue_fen": ("inpatient_revenue_fen", lambda u: round(u.inpatient_revenue * 100)),
}


def _synth(scale: float, keep: Path | None, work: Path) -> Path:
    """The synthetic month (reused from `keep` when it holds one of this scale)."""
    out = keep or work / "synth"
    manifest = out / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text(encoding="utf-8")).get("scale") == scale:
        return out
    synth.generate(month=MONTH, scale=scale, seed=7, out=out, gbk_share=0.1, console=Console(stderr=True))
    return out


def main() -> None:
    """Generate (or reuse) the month, ingest it, compare the figures with the ground truth, write JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--keep", type=Path, default=None, help="reuse/keep the synthetic month here")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rhip-bench-roundtrip-"))
    try:
        t0 = time.perf_counter()
        synth_dir = _synth(args.scale, args.keep, work)
        made = time.perf_counter() - t0
        settings = Settings(data_dir=work / "data", secret_key="bench")
        upgrade(settings.resolved_database_url)
        db = Database.from_settings(settings)
        with db.session() as s, s.begin():
            registry.ensure_loaded(s)
        load_before = round(os.getloadavg()[0], 2)
        got = intake_demo.ingest_month(settings=settings, synth_dir=synth_dir, console=Console(stderr=True))
        lake = Lake(settings.resolved_lake_dir)
        with db.session() as s, s.begin():
            quality.import_statistics_file(s, path=synth_dir / "statistics_report.csv")
        t1 = time.perf_counter()
        with db.session() as s, s.begin():
            fig = figures.month_figures(s, lake=lake, month=MONTH)
        figures_seconds = time.perf_counter() - t1
        t2 = time.perf_counter()
        with db.session() as s, s.begin():
            disagree = verify.differences(s, lake=lake, month=MONTH)
        recount_seconds = time.perf_counter() - t2
        db.dispose()
        truth = json.loads((synth_dir / "ground_truth" / "institutions.json").read_text(encoding="utf-8"))
        targets = {t.name: t for t in calibration.targets(MONTH, args.scale)}
        mismatches: list[dict[str, Any]] = []
        vs_seed: list[dict[str, Any]] = []
        units = 0
        totals = {"visits": [0, 0], "discharges": [0, 0]}
        for t in truth["institutions"]:
            u = next((x for x in fig.units if x.code == t["org_code"]), None)
            if u is None:
                mismatches.append(
                    {"unit": t["org_code"], "figure": "unit", "bulletin": None, "truth": "present"}
                )
                continue
            units += 1
            valid = t["valid"]
            checks = {name: (read(u), valid[field]) for name, (field, read) in FIGURES.items()}
            checks["upload_days"] = (u.upload_days, t["realtime_upload_days_count"])
            checks["forms"] = (u.forms, len(t["realtime_forms"]))
            for name, (ours, theirs) in checks.items():
                if ours != theirs:
                    mismatches.append(
                        {"unit": u.code, "name": u.name, "figure": name, "bulletin": ours, "truth": theirs}
                    )
            for key in totals:
                totals[key][0] += checks[key][0]
                totals[key][1] += checks[key][1]
            target = targets.get(t["name"])
            if target is not None:
                for name, want in (
                    ("visits", target.visits),
                    ("discharges", target.discharges),
                    ("visit_revenue_fen", target.visit_revenue),
                    ("inpatient_revenue_fen", target.inpatient_revenue),
                ):
                    if checks[name][1] != want:
                        vs_seed.append(
                            {"unit": u.code, "figure": name, "truth": checks[name][1], "seed_x_scale": want}
                        )
        out = {
            "benchmark": "quality.round_trip",
            "month": MONTH,
            "scale": args.scale,
            "at": datetime.now(UTC).isoformat(),
            "synth_seconds": round(made, 1),
            "records_received": got["totals"].received,
            "ingest_seconds": round(got["seconds"], 1),
            "ingest_records_per_s": round(got["totals"].received / got["seconds"])
            if got["seconds"]
            else None,
            "figures_seconds": round(figures_seconds, 3),
            "recount_and_compare_seconds": round(recount_seconds, 2),
            "rollups_agree_with_recount": not disagree,
            "units_compared": units,
            "mismatches": mismatches,
            "truth_vs_seed_times_scale": vs_seed,
            "visits_bulletin_vs_truth": totals["visits"],
            "discharges_bulletin_vs_truth": totals["discharges"],
            "load_average_before": load_before,
            "load_average_after": round(os.getloadavg()[0], 2),
        }
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            shutil.rmtree(work / "data", ignore_errors=True)
    print(
        f"scale {args.scale}: {out['records_received']:,} records ingested in {out['ingest_seconds']} s "
        f"({out['ingest_records_per_s']:,}/s); {units} units compared: {len(mismatches)} mismatches "
        f"between the bulletin and the ground truth; ground truth vs s × seed: {len(vs_seed)} differences; "
        f"门急诊 "
        f"{totals['visits'][0]:,} (truth {totals['visits'][1]:,}), 出院 {totals['discharges'][0]:,} "
        f"(truth {totals['discharges'][1]:,}); figures {figures_seconds:.3f} s; rollups agree with the "
        f"recount: {not disagree}"
    )
    for m in mismatches[:20]:
        print("  mismatch:", m)
    for m in vs_seed[:20]:
        print("  truth vs seed:", m)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "round_trip.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"written {path}")


if __name__ == "__main__":
    main()
