"""Telemedicine: DICOM intake through rhip against Orthanc receiving the same studies directly, and the
expert's worklist with 100,000 open tasks, both through HTTP against a real server in the same run.

1. DICOM intake (target: rhip's path ≥ 80 % of direct). One Orthanc (Debian's package, its own ports and
   storage) behind one rhip server (uvicorn, loopback, RHIP_ORTHANC_URL). Fresh small studies (4 images of
   64×64, 16-bit) are sent by `CLIENTS` threads, one study per request or association, in alternating rounds:
   - direct C-STORE: pynetdicom straight to Orthanc (one association per study, like a modality),
   - direct STOW-RS: straight to Orthanc's DICOMweb plugin (one multipart request per study),
   - rhip: STOW-RS to /api/v1/telemed/imaging/studies (rhip checks every part, forwards it to Orthanc and
     records the study and its reading task in its database before answering).
   The issue names the peer "storescu/pynetdicom straight to Orthanc": the target is checked against direct
   C-STORE; the ratio to direct STOW-RS (the same protocol as rhip's path, Orthanc's C++ alone) is printed too.
2. DICOM ECG upload (a peer, no target in the issue): a cart's General ECG object (8 leads, 10 s at 500 Hz)
   POSTed as application/dicom to /api/v1/telemed/requests/{id}/ecg (rhip parses the waveform, checks SOP
   class, leads, rate, units and patient against the request, stores it in Orthanc unchanged and records the
   attachment) against the same kind of file POSTed straight to Orthanc's /instances, alternating rounds.
3. Worklist (target: p99 < 100 ms). 100,000 open ECG tasks; wrk GETs the hub's first page
   (/api/v1/telemed/centres/ecg/worklist?limit=50) for a few seconds; p99 from wrk's latency distribution.
   Its floor on the same stack, in alternating rounds of the same length: GET /api/v1/auth/me (a trivial
   authenticated route: token check, one session). The ratio worklist / floor is what a loaded machine can
   still show; /proc/loadavg is printed beside the figures.

The machine is shared by 8 helpers on 2 cores: runs are kept short and every figure is measured in the same
run as its peer. Writes benchmarks/results/telemed.json.

    .venv/bin/python benchmarks/telemed.py                 # SQLite
    .venv/bin/python benchmarks/telemed.py --backend postgres
    .venv/bin/python benchmarks/telemed.py --only worklist --rounds 3 --seconds 5
    .venv/bin/python benchmarks/telemed.py --only ecg --tasks 1000
"""

# ruff: noqa: E501

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, insert, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rhip.config import Settings  # noqa: E402
from rhip.db.engine import Database, upgrade  # noqa: E402
from rhip.security.service import issue_token  # noqa: E402
from rhip.telemed import imaging, pacs, service as svc  # noqa: E402
from rhip.telemed.models import Request  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SECRET = "bench-telemed-secret-key-0123456789-abcdefghijklmnop"
UPLOADER = "C32011501"  # 江宁区东山社区卫生服务中心
PG_ADMIN = os.environ.get("RHIP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def studies(n: int, per: int = 4) -> list[list[bytes]]:
    """n fresh studies of `per` images each, as Part 10 bytes."""
    out = []
    for _ in range(n):
        ds = imaging.make_study(
            institution="江宁区东山社区卫生服务中心",
            modality="CT",
            instances=per,
            patient_id="320102198001011238",
            patient_name="测试^病人",
            sex="1",
            at=datetime.now(UTC),
        )
        for d in ds:
            d.Rows = d.Columns = 64
            d.PixelData = bytes(64 * 64 * 2)
        out.append([imaging.to_bytes(d) for d in ds])
    return out


def multipart(parts: list[bytes]) -> tuple[bytes, str]:
    b = uuid.uuid4().hex
    body = b"".join(
        b"--" + b.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n" for p in parts
    )
    return body + b"--" + b.encode() + b"--\r\n", f'multipart/related; type="application/dicom"; boundary={b}'


def run_threads(items: list[Any], clients: int, fn: Any) -> float:
    """Call fn on every item from `clients` threads; the wall time."""
    lock = threading.Lock()
    queue = list(items)
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                item = queue.pop()
            try:
                fn(item)
            except BaseException as exc:  # surfaced below
                errors.append(exc)
                return

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - t0


def free_port() -> int:
    return pacs.free_port()


def start_server(data_dir: Path, url: str, orthanc_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RHIP_DATA_DIR": str(data_dir),
        "RHIP_DATABASE_URL": url,
        "RHIP_SECRET_KEY": SECRET,
        "RHIP_ORTHANC_URL": orthanc_url,
        "RHIP_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "rhip.web.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("rhip did not start")


def wrk_p99(url: str, token: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "requests_per_s": rps,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--studies", type=int, default=40, help="studies per round and path")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--connections", type=int, default=4, help="wrk connections for the worklist")
    ap.add_argument("--ecgs", type=int, default=40, help="DICOM ECGs per round and path")
    ap.add_argument("--only", choices=["all", "dicom", "ecg", "worklist"], default="all")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rhip-bench-telemed-"))
    if args.backend == "postgres":
        name = f"rhip_bench_tm_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:///{work / 'rhip.db'}"
    upgrade(url)
    settings = Settings(data_dir=work, database_url=url, secret_key=SECRET)
    db = Database.from_settings(settings)
    from rhip.registry import service as registry

    with db.session() as s, s.begin():
        registry.ensure_loaded(s)
        svc.ensure_limits(s)
        svc.connect(s, centre_code="imaging", institution_code=UPLOADER, connected_on=date(2020, 1, 1))
        svc.connect(s, centre_code="ecg", institution_code=UPLOADER, connected_on=date(2020, 1, 1))
    # 100,000 open ECG tasks (plus as many closed ones the worklist must not walk)
    t0 = time.perf_counter()
    now = datetime.now(UTC)
    rows = [
        {
            "centre_code": "ecg",
            "service_type": "resting",
            "priority": "routine",
            "requester_code": UPLOADER,
            "performer_code": "H001",
            "patient_id_number": "320102198001011238",
            "patient_name": "测试",
            "status": "requested" if i < args.tasks else "completed",
            "requested_at": now - timedelta(minutes=(2 * args.tasks - i)),
            "source": "bench",
        }
        for i in range(2 * args.tasks)
    ]
    with db.session() as s, s.begin():
        for k in range(0, len(rows), 20_000):
            s.execute(insert(Request), rows[k : k + 20_000])
    fill_s = time.perf_counter() - t0
    db.dispose()
    # the steady state of a server, not the minute after a bulk load: SQLite's WAL folded back into the
    # database (else the first writes pay for checkpointing 200,000 rows), PostgreSQL's statistics and
    # visibility map up to date (what autovacuum would have done)
    with create_engine(url, isolation_level="AUTOCOMMIT").connect() as c:
        if args.backend == "sqlite":
            c.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        else:
            c.execute(text("VACUUM ANALYZE telemed_requests"))

    server = pacs.orthanc_in(work / "orthanc")
    server.start()
    port = free_port()
    proc = start_server(work, url, server.url, port)
    result: dict[str, Any] = {
        "backend": args.backend,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores shared by 8 helpers",
        "clients": args.clients,
    }
    try:
        uploader = issue_token(SECRET, subject="bench", role="uploader", institution_code=UPLOADER)
        hub = issue_token(SECRET, subject="bench-ecg", role="doctor", institution_code="H001")
        rhip_http = httpx.Client(timeout=60)
        orth_http = httpx.Client(timeout=60)

        def via_rhip(study: list[bytes]) -> None:
            body, ctype = multipart(study)
            r = rhip_http.post(
                f"http://127.0.0.1:{port}/api/v1/telemed/imaging/studies",
                content=body,
                headers={"Content-Type": ctype, "Authorization": f"Bearer {uploader}"},
            )
            assert r.status_code == 201, r.text

        def direct_stow(study: list[bytes]) -> None:
            body, ctype = multipart(study)
            r = orth_http.post(
                f"{server.url}/dicom-web/studies",
                content=body,
                headers={"Content-Type": ctype, "Accept": "application/dicom+json"},
            )
            assert r.status_code == 200, r.text

        def direct_cstore(study: list[bytes]) -> None:
            import io

            from pydicom import dcmread

            n = imaging.send_cstore(
                [dcmread(io.BytesIO(p)) for p in study],
                host="127.0.0.1",
                port=server.dicom_port,
                calling_aet=UPLOADER,
            )
            assert n == len(study)

        if args.only in ("all", "dicom"):
            paths = {"direct_cstore": direct_cstore, "direct_stow": direct_stow, "rhip_stow": via_rhip}
            per_round: dict[str, list[float]] = {k: [] for k in paths}
            via_rhip(studies(1)[0])  # warm-up
            for _ in range(args.rounds):
                for name, fn in paths.items():
                    batch = studies(args.studies)
                    per_round[name].append(args.studies / run_threads(batch, args.clients, fn))
            med = {k: statistics.median(v) for k, v in per_round.items()}
            best_direct = max(med["direct_cstore"], med["direct_stow"])
            result["dicom_intake"] = {
                "studies_per_round": args.studies, "instances_per_study": 4, "rounds": args.rounds,
                "studies_per_s": {k: round(v, 1) for k, v in med.items()}, "rounds_studies_per_s": {k: [round(x, 1) for x in v] for k, v in per_round.items()},
                "ratio_rhip_to_best_direct": round(med["rhip_stow"] / best_direct, 3),
                "ratio_rhip_to_cstore": round(med["rhip_stow"] / med["direct_cstore"], 3),
                "target": 0.8,
            }  # fmt: skip
        if args.only in ("all", "ecg"):
            result["ecg_dicom"] = ecg_rounds(port, server.url, uploader, args, url)
        if args.only in ("all", "worklist"):
            result["worklist"] = worklist_rounds(port, hub, args, fill_s)
    finally:
        proc.terminate()
        proc.wait(20)
        server.stop()
        if args.backend == "postgres":
            with create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT").connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    ok = True
    load = Path("/proc/loadavg").read_text().split()[:3]
    result["loadavg"] = load
    if "dicom_intake" in result:
        di = result["dicom_intake"]
        report(
            f"DICOM intake ({args.backend}, {args.clients} clients, studies of 4 images)",
            di["studies_per_s"],
            f"rhip / direct C-STORE = {di['ratio_rhip_to_cstore']:.2f} (target ≥ 0.80, the issue's peer); "
            f"rhip / direct STOW-RS = {di['ratio_rhip_to_best_direct']:.2f}",
        )
        ok = ok and di["ratio_rhip_to_cstore"] >= 0.8
    if "ecg_dicom" in result:
        ed = result["ecg_dicom"]
        report(
            f"DICOM ECG upload ({args.backend}, {args.clients} clients, General ECG of 8 leads × 10 s)",
            ed["ecgs_per_s"],
            f"rhip / straight to Orthanc = {ed['ratio_rhip_to_direct']:.2f} (peer; no target in the issue: rhip "
            "parses the waveform, checks leads, rate, units and patient, stores it and records the attachment)",
        )
    if "worklist" in result:
        wl = result["worklist"]
        print(
            f"Worklist ({args.backend}) with {wl['open_tasks']:,} open tasks, {wl['rounds']} rounds of {wl['seconds']} s alternating with its floor (medians):"
        )
        print(
            f"  worklist  p50 {wl['p50_ms']:.1f} ms, p99 {wl['p99_ms']:.1f} ms (target < 100 ms), {wl['requests_per_s']:.0f} req/s, non-2xx {wl['non_2xx']}"
        )
        fl, un = wl["floor"], wl["unaudited"]
        print(
            f"  unaudited p50 {un['p50_ms']:.1f} ms, p99 {un['p99_ms']:.1f} ms, {un['requests_per_s']:.0f} req/s (a manager's masked page: no audit row)"
        )
        print(
            f"  floor     p50 {fl['p50_ms']:.1f} ms, p99 {fl['p99_ms']:.1f} ms, {fl['requests_per_s']:.0f} req/s (GET /api/v1/auth/me)"
        )
        print(
            f"  worklist / floor: p50 {wl['ratio_p50']:.2f}, p99 {wl['ratio_p99']:.2f}; throughput {wl['ratio_rps']:.2f}"
        )
        ok = ok and wl["p99_ms"] < 100 and wl["non_2xx"] == 0
    print(f"load average (1, 5, 15 min): {' '.join(load)} on {os.cpu_count()} cores")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"telemed_{args.backend}.json").write_text(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if ok else 1


def report(title: str, per_s: dict[str, float], ratio: str) -> None:
    """Print a throughput figure per path and the ratio line under it."""
    print(f"{title}: " + ", ".join(f"{k} {v}/s" for k, v in per_s.items()))
    print(f"  {ratio}")


def ecg_rounds(
    port: int, orthanc_url: str, token: str, args: argparse.Namespace, db_url: str
) -> dict[str, Any]:
    """DICOM ECGs as a cart sends them: POST /api/v1/telemed/requests/{id}/ecg (application/dicom) against
    POST /instances straight to Orthanc, fresh instances, alternating rounds."""
    from rhip.telemed import ecg, ecg_dicom

    need = args.ecgs * args.rounds + 1
    with create_engine(db_url).connect() as c:
        ids = [
            int(r[0])
            for r in c.execute(
                text("SELECT id FROM telemed_requests WHERE status = 'requested' ORDER BY id LIMIT :n"),
                {"n": need},
            )
        ]
    signal = ecg.synth_signal(seed=1)
    eight = [i for i, lead in enumerate(ecg.LEADS) if lead not in ecg_dicom.DERIVABLE]

    def cart() -> bytes:
        ds = ecg_dicom.to_dicom(
            signal[:, eight], 500, [ecg.LEADS[i] for i in eight], patient_id="320102198001011238",
            patient_name="测试", institution="江宁区东山社区卫生服务中心", at=datetime.now(UTC),
            sop_class=ecg_dicom.GENERAL_ECG,
        )  # fmt: skip
        return ecg_dicom.to_bytes(ds)

    rhip_http, orth_http = httpx.Client(timeout=60), httpx.Client(timeout=60)
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/dicom"}

    def via_rhip(item: tuple[int, bytes]) -> None:
        r = rhip_http.post(
            f"http://127.0.0.1:{port}/api/v1/telemed/requests/{item[0]}/ecg", content=item[1], headers=auth
        )
        assert r.status_code == 201, r.text

    def direct(item: tuple[int, bytes]) -> None:
        r = orth_http.post(
            f"{orthanc_url}/instances", content=item[1], headers={"Content-Type": "application/dicom"}
        )
        assert r.status_code == 200, r.text

    queue = iter(ids)
    via_rhip((next(queue), cart()))  # warm-up
    paths = {"direct_orthanc": direct, "rhip": via_rhip}
    per_round: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(args.rounds):
        for name, fn in paths.items():
            batch = [(next(queue) if name == "rhip" else 0, cart()) for _ in range(args.ecgs)]
            per_round[name].append(args.ecgs / run_threads(batch, args.clients, fn))
    med = {k: statistics.median(v) for k, v in per_round.items()}
    return {
        "ecgs_per_round": args.ecgs, "rounds": args.rounds, "bytes_per_ecg": len(cart()),
        "ecgs_per_s": {k: round(v, 1) for k, v in med.items()},
        "rounds_ecgs_per_s": {k: [round(x, 1) for x in v] for k, v in per_round.items()},
        "ratio_rhip_to_direct": round(med["rhip"] / med["direct_orthanc"], 3),
    }  # fmt: skip


def worklist_rounds(port: int, hub: str, args: argparse.Namespace, fill_s: float) -> dict[str, Any]:
    """The worklist's first page and the floor, wrk in alternating rounds; medians over the rounds."""
    base = f"http://127.0.0.1:{port}"
    r = httpx.get(
        f"{base}/api/v1/telemed/centres/ecg/worklist?limit=50",
        headers={"Authorization": f"Bearer {hub}"},
        timeout=30,
    )
    assert r.status_code == 200 and len(r.json()) == 50, r.text
    # the clinician's page (in full, each read audited: one INSERT and commit), the manager's (masked, no
    # audit row: the read alone), and the floor
    staff = issue_token(SECRET, subject="bench-manager", role="manager", institution_code=None)
    page = f"{base}/api/v1/telemed/centres/ecg/worklist?limit=50"
    runs: dict[str, list[dict[str, float]]] = {"worklist": [], "worklist_unaudited": [], "floor": []}
    for _ in range(args.rounds):
        runs["worklist"].append(wrk_p99(page, hub, args.seconds, args.connections))
        runs["worklist_unaudited"].append(wrk_p99(page, staff, args.seconds, args.connections))
        runs["floor"].append(wrk_p99(f"{base}/api/v1/auth/me", hub, args.seconds, args.connections))
    med = {k: {m: statistics.median(x[m] for x in v) for m in v[0]} for k, v in runs.items()}
    wl, fl = med["worklist"], med["floor"]
    return {
        "open_tasks": args.tasks,
        "closed_tasks": args.tasks,
        "fill_seconds": round(fill_s, 1),
        "connections": args.connections,
        "seconds": args.seconds,
        "rounds": args.rounds,
        **wl,
        "non_2xx": int(sum(x["non_2xx"] for x in runs["worklist"])),
        "floor": fl,
        "unaudited": med["worklist_unaudited"],
        "ratio_p50": wl["p50_ms"] / fl["p50_ms"],
        "ratio_p99": wl["p99_ms"] / fl["p99_ms"],
        "ratio_rps": wl["requests_per_s"] / fl["requests_per_s"],
        "rounds_detail": runs,
        "target_p99_ms": 100,
    }


if __name__ == "__main__":
    sys.exit(main())
