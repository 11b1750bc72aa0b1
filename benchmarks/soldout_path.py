"""Where a sold-out answer spends its CPU, in process, beside /livez through the same app and middleware.

The claim it serves (docs/booking.md, issue 13): a request for a sold-out slot is answered ≥ 5× faster
than a real booking. `benchmarks/booking.py` measures it over HTTP; at 64 clients both a sold-out answer
and /livez are bound by the same HTTP stack, so this script takes the stack apart: it calls the ASGI app
directly (no uvicorn, no sockets) with a sold-out booking (the slot remembered full in this process) and
with /livez, times each, and profiles the sold-out answer (cProfile, functions by own time). The slot is
never in the database: a sold-out answer must be decided before any database work.

    .venv/bin/python benchmarks/soldout_path.py --n 20000
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SECRET = "bench-soldout-secret-key-0123456789-abcdefghijklmnop"
SLOT = 987_654_321  # no such slot in the database: only the sold-out memory can answer it


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def call(app: Any, scope: dict[str, Any], body: bytes) -> int:
    """One request through the ASGI app; returns the status."""
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def timed(app: Any, scope: dict[str, Any], body: bytes, n: int) -> tuple[float, int]:
    """Mean CPU µs per request over n sequential requests (after a warm-up), and the last status: CPU
    time of this process, not wall time, so that the neighbours' load does not count."""
    for _ in range(200):
        status = await call(app, dict(scope), body)
    t = time.process_time()
    for _ in range(n):
        status = await call(app, dict(scope), body)
    return (time.process_time() - t) / n * 1e6, status


def main() -> None:
    """Measure and print; write results/soldout_path.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="requests per measurement")
    ap.add_argument("--sort", default="tottime", help="cProfile order: tottime or cumulative")
    ap.add_argument("--top", type=int, default=14, help="functions shown")
    args = ap.parse_args()

    from rhip.booking import soldout
    from rhip.config import Settings
    from rhip.registry.idnumber import make_id
    from rhip.security.service import issue_token
    from rhip.web.app import create_app

    data_dir = Path(tempfile.mkdtemp(prefix="rhip-soldout-"))
    app = create_app(Settings(data_dir=data_dir, secret_key=SECRET))
    db = app.state.db
    token = issue_token(SECRET, subject="bench-agent", role="agent")
    soldout.remember_full(id(db.engine), SLOT, "public", [], ttl=3600.0)

    person = make_id("320102", date(1980, 1, 1), 123)  # valid: the checks' fast path, as wrk's are
    book_body = json.dumps({"slot_id": SLOT, "person_id": person, "person_name": "张三"}).encode()
    book_headers = [
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(book_body)).encode()),
        (b"user-agent", b"wrk"),
    ]
    sold = _scope("POST", "/api/v1/booking/appointments", book_headers)
    live = _scope("GET", "/livez", [(b"user-agent", b"wrk")])

    async def run() -> dict[str, Any]:
        rounds = []
        for _ in range(3):  # alternating, the median kept: the machine's speed drifts
            lv, lstatus = await timed(app, live, b"", args.n)
            so, sstatus = await timed(app, sold, book_body, args.n)
            rounds.append((lv, so))
        assert lstatus == 200 and sstatus == 409, (lstatus, sstatus)
        lv, so = sorted(rounds, key=lambda r: r[1] / r[0])[1]
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(min(args.n, 5000)):
            await call(app, dict(sold), book_body)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(args.sort).print_stats(args.top)
        return {
            "livez_us": round(lv, 1),
            "soldout_us": round(so, 1),
            "rounds": rounds,
            "profile": out.getvalue(),
        }

    got = asyncio.run(run())
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(got["profile"])
    print(
        f"in process, CPU per request (n={args.n}, load {' '.join(load)}): /livez {got['livez_us']} µs, "
        f"sold-out answer {got['soldout_us']} µs → {got['soldout_us'] / got['livez_us']:.2f} × /livez "
        f"(the HTTP server's own share comes on top of both)"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soldout_path.json").write_text(
        json.dumps(
            {k: v for k, v in got.items() if k != "profile"} | {"load": load, "pid": os.getpid()}, indent=2
        )
    )


if __name__ == "__main__":
    main()
