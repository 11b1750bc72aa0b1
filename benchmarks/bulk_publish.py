"""`$bulk-publish` (SMART Scheduling Links) before and after the feed was streamed, in process, on SQLite.

The claim (issue 12): the manifest is cheap (it used to build the whole feed, every free slot of 14 days,
before answering: a CI run timed out on it), and each NDJSON file is built when asked for, a page at a time,
with memory bounded by a page. This script publishes a few thousand sessions of 5-minute slots through the
schedule service into a fresh SQLite database, then measures, with the clock frozen:

- before: the feed built whole, as `fhir_api._feed` did (reproduced here from the code it replaced);
- after: the manifest through the app, and each file read from `bulkpub.lines`;

CPU seconds (time.process_time) and peak Python memory (tracemalloc, a separate pass), and checks that the
streamed files hold exactly the lines the whole feed held.

    .venv/bin/python benchmarks/bulk_publish.py --doctors 40
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SECRET = "bench-bulk-publish-secret-key-0123456789-abcdefghijkl"
HOSPITALS = ("H020", "H029", "H001", "H002", "H003", "H004", "H005", "H006")
T0 = datetime.fromisoformat("2025-03-03T09:00:00+08:00")


def whole_feed(db: Any, t: datetime) -> dict[str, str]:
    """The three files as the code before the change built them: every free slot read at once."""
    from rhip.booking import schedules as rota
    from rhip.booking.fhir_map import location_resource, schedule_resource, slot_resource
    from rhip.registry import data as reg_data

    with db.session() as s, s.begin():
        slots = rota.find_slots(
            s, start_from=t, start_to=t + timedelta(days=14), free_only=True, limit=200_000
        )
        scheds = {x.id: x for x in rota.get_all_schedules_by_ids(s, ids={x.schedule_id for x in slots})}
    used = sorted(scheds.values(), key=lambda x: x.id)
    locations = [
        location_resource(c, inst)
        for c in sorted({x.hospital_code for x in used})
        if (inst := reg_data.get(c)) is not None
    ]
    files = {
        "Location": [json.dumps(r, ensure_ascii=False) for r in locations],
        "Schedule": [json.dumps(schedule_resource(x), ensure_ascii=False) for x in used],
        "Slot": [json.dumps(slot_resource(x, scheds[x.schedule_id], t), ensure_ascii=False) for x in slots],
    }
    return {k: "".join(line + "\n" for line in v) for k, v in files.items()}


def cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    """CPU seconds of one call, and its result."""
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def peak(fn: Callable[[], Any]) -> float:
    """Peak Python memory (MiB) allocated during one call (tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def main() -> None:
    """Publish, measure, print the figures beside their targets and write results/bulk_publish.json."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--doctors", type=int, default=40, help="doctors publishing 5-minute slots")
    args = parser.parse_args()
    os.environ.setdefault("RHIP_LOG_LEVEL", "WARNING")
    from fastapi.testclient import TestClient

    from rhip import clock
    from rhip.booking import bulkpub, schedules as rota
    from rhip.config import Settings
    from rhip.security.roles import Role
    from rhip.security.service import Principal
    from rhip.web.app import create_app

    data_dir = Path(tempfile.mkdtemp(prefix="rhip-bulkpub-"))
    app = create_app(Settings(data_dir=data_dir, secret_key=SECRET))
    db = app.state.db
    staff = Principal(subject="bench", role=Role.manager)
    with clock.frozen(T0):
        t = clock.now()
        started = time.perf_counter()
        for n in range(args.doctors):
            template = rota.ScheduleSpec(
                hospital_code=HOSPITALS[n % len(HOSPITALS)],
                department_code="03.04",
                doctor_name=f"医生{n:03d}",
                doctor_title="主治医师",
                service_date=date(2025, 3, 4),
                session="am",
                slot_minutes=5,
                capacity_per_slot=2,
            )
            with db.session() as s, s.begin():
                rota.create_schedules(
                    s, template=template, start=date(2025, 3, 4), end=date(2025, 3, 16), actor=staff
                )
        setup_s = time.perf_counter() - started

        before_s, before = cpu(lambda: whole_feed(db, t))
        client = TestClient(app)
        client.get("/livez")  # the app's first request pays its one-time costs: not the manifest's
        manifest_s, r = cpu(lambda: client.get("/fhir/r4/$bulk-publish"))
        assert r.status_code == 200, r.text
        after: dict[str, float] = {}
        for kind in bulkpub.KINDS:
            after[kind], got = cpu(lambda k=kind: b"".join(bulkpub.lines(db, k, t)).decode())
            assert got == before[kind], f"{kind}.ndjson differs from the whole feed"
        mem_before = peak(lambda: whole_feed(db, t))
        mem_after = peak(lambda: [None for _ in bulkpub.lines(db, "Slot", t)])
    slots = before["Slot"].count("\n")
    with open("/proc/loadavg", encoding="ascii") as fh:
        load = fh.read().split()[:3]
    figures = {
        "free_slots": slots,
        "schedules": before["Schedule"].count("\n"),
        "setup_wall_s": round(setup_s, 1),
        "manifest_cpu_s_before": round(before_s, 3),  # the first request built the whole feed
        "manifest_cpu_s_after": round(manifest_s, 4),
        "files_cpu_s_after": {k: round(v, 3) for k, v in after.items()},
        "slot_file_peak_mib_before": round(mem_before, 1),
        "slot_file_peak_mib_after": round(mem_after, 1),
        "page_rows": bulkpub.PAGE,
        "loadavg": load,
    }
    print(f"{slots} free slots in {figures['schedules']} schedules (published in {setup_s:.1f} s wall)")
    print(f"manifest CPU: before {before_s:.3f} s (whole feed), after {manifest_s:.4f} s (target: < 0.05 s)")
    print("files CPU after: " + ", ".join(f"{k} {v:.3f} s" for k, v in after.items()))
    print(
        f"Slot file peak memory: before {mem_before:.1f} MiB, after {mem_after:.1f} MiB "
        f"(target: after ≤ 1/5 of before, bounded by a page of {bulkpub.PAGE} rows)"
    )
    print(f"streamed files equal the whole feed: yes; load average {' '.join(load)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bulk_publish.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
