"""FHIR intake throughput: resources/s end to end through `POST /fhir/r4` (a real uvicorn server over HTTP:
JSON parsing, mapping, every intake rule, dedup, Delta commit, receipt), for transaction and batch Bundles,
against the target (20,000 resources/s) and HAPI FHIR's reported figure (~2,200 resources/s), in the same
run. Writes results/intake_fhir.json.

    .venv/bin/python benchmarks/intake_fhir.py --bundles 20 --groups 1000

Each group is one outpatient encounter as a hospital system sends it: Patient, Encounter, Condition, a lab
DiagnosticReport with four Observations, an imaging DiagnosticReport (9 resources, 7 catalogue tables).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from rhip.clock import local_now
from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.fhir import samples
from rhip.registry import data as registry_data, service as registry
from rhip.security.service import issue_token

HERE = Path(__file__).parent
TARGET = 20_000
HAPI_REPORTED = 2_200
SECRET = "f" * 40


def group(n: int, tag: str, at: str) -> list[dict[str, Any]]:
    """The resources of one outpatient encounter (all valid and linked)."""
    pid, vid, lab, rad = f"P{tag}{n}", f"V{tag}{n}", f"L{tag}{n}", f"R{tag}{n}"
    obs = [
        {
            "resourceType": "Observation",
            "id": f"O{tag}{n}-{k}",
            "status": "final",
            "code": {"coding": [{"code": code, "display": name}], "text": name},
            "valueQuantity": {"value": 4.2 + k, "unit": "mmol/L"},
            "issued": at,
        }
        for k, (code, name) in enumerate(
            [("GLU", "葡萄糖"), ("TC", "总胆固醇"), ("TG", "甘油三酯"), ("UA", "尿酸")]
        )
    ]
    return [
        samples.patient(pid),
        samples.encounter(vid, pid, at),
        samples.condition(f"C{tag}{n}", pid, vid, at),
        {
            "resourceType": "DiagnosticReport",
            "id": lab,
            "status": "final",
            "category": [{"coding": [{"code": "LAB"}]}],
            "code": {"text": "生化全套"},
            "subject": {"reference": f"Patient/{pid}"},
            "encounter": {"reference": f"Encounter/{vid}"},
            "issued": at,
            "result": [{"reference": f"Observation/{o['id']}"} for o in obs],
        },
        *obs,
        {
            "resourceType": "DiagnosticReport",
            "id": rad,
            "status": "final",
            "category": [{"coding": [{"code": "CT"}]}],
            "code": {"text": "胸部CT平扫"},
            "subject": {"reference": f"Patient/{pid}"},
            "encounter": {"reference": f"Encounter/{vid}"},
            "issued": at,
            "conclusion": "未见明显异常",
        },
    ]


def make_bundle(kind: str, groups: int, tag: str) -> bytes:
    """A transaction/batch Bundle of `groups` encounters, serialised."""
    at = (local_now() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+08:00")
    resources = [r for n in range(groups) for r in group(n, tag, at)]
    body = samples.bundle(kind, resources)
    return orjson.dumps(body)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundles", type=int, default=20, help="bundles per kind")
    ap.add_argument("--groups", type=int, default=1000, help="encounters (9 resources each) per bundle")
    args = ap.parse_args()
    load_start = round(os.getloadavg()[0], 2)
    work = Path(tempfile.mkdtemp(prefix="rhip-fhir-bench-"))
    settings = Settings(data_dir=work / "var", secret_key=SECRET)
    upgrade(settings.resolved_database_url)
    db = Database.from_settings(settings)
    with db.session() as s, s.begin():
        registry.ensure_loaded(s)
    db.dispose()
    # the server runs in its own process (as deployed), so the client's work does not share its GIL
    port = _free_port()
    env = {**os.environ, "RHIP_DATA_DIR": str(settings.data_dir), "RHIP_SECRET_KEY": SECRET}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "rhip.web.app:create_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    deadline = time.time() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/fhir/r4/metadata").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.time() > deadline:
            server.kill()
            raise SystemExit("server did not start")
        time.sleep(0.2)
    inst = registry_data.institutions()[0].code
    bearer = issue_token(SECRET, subject="bench", role="uploader", institution_code=inst)
    headers = {
        "Authorization": f"Bearer {bearer}",
        "Content-Type": "application/fhir+json",
    }
    per_bundle = args.groups * 9
    result: dict[str, Any] = {
        "load_average_at_start": load_start,
        "resources_per_bundle": per_bundle,
        "bundles_per_kind": args.bundles,
        "target_resources_per_s": TARGET,
        "hapi_reported_resources_per_s": HAPI_REPORTED,
    }
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
        for kind in ("transaction", "batch"):
            # bodies are built before the clock starts: the client's serialisation is not the server's work
            bodies = [make_bundle(kind, args.groups, f"{kind[0]}{b}x") for b in range(args.bundles)]
            warm = client.post("/fhir/r4", content=make_bundle(kind, 10, f"{kind[0]}w"), headers=headers)
            assert warm.status_code == 200, warm.text[:500]
            t0 = time.perf_counter()
            for body in bodies:
                r = client.post("/fhir/r4", content=body, headers=headers)
                assert r.status_code == 200, r.text[:500]
                statuses = {e["response"]["status"] for e in orjson.loads(r.content)["entry"]}
                assert statuses == {"201 Created"}, statuses
            secs = time.perf_counter() - t0
            rate = per_bundle * args.bundles / secs
            result[kind] = {
                "seconds": round(secs, 3),
                "resources_per_s": round(rate),
                "vs_target": round(rate / TARGET, 2),
                "vs_hapi_reported": round(rate / HAPI_REPORTED, 1),
            }
    result["load_average_at_end"] = round(os.getloadavg()[0], 2)
    server.terminate()
    server.wait(timeout=30)
    for k, v in result.items():
        print(f"{k:32s} {v}")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "intake_fhir.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
