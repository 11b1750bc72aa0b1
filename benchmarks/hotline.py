"""The hotline's performance targets, each beside its limit in the same run. Writes results/hotline.json.

1. The assistant without the LLM: 50 concurrent conversations against POST /api/v1/assistant/chat (uvicorn,
   loopback, an asyncio httpx client), p99 under 50 ms; answers per second beside the trivial endpoint /livez
   driven the same way in the same run.
2. The work-order list filtered and paged with 1 million orders (PostgreSQL): p99 under 100 ms, through
   `service.get_all_orders` as the route calls it (page of 50 with its total).
3. The SLA job over 1 million open orders: under 10 s — a steady run (marks crossed since the last run) and
   a catch-up run where every order crosses a mark at once.

    .venv/bin/python benchmarks/hotline.py                 # everything (PostgreSQL at 127.0.0.1:5432)
    .venv/bin/python benchmarks/hotline.py --orders 200000 --seconds 5
"""

# ruff: noqa: E501  (the SQL that fills the table is kept on long lines)

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from booking import start_server, stop_server  # the same uvicorn settings as the booking benchmark
from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.hotline import evalset, service as svc
from rhip.registry import service as registry
from rhip.security.roles import Role
from rhip.security.service import Principal

RESULTS = Path(__file__).with_name("results")
ADMIN_URL = os.environ.get("RHIP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) in milliseconds."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] * 1000, 2)


async def drive(
    base: str, *, path: str, bodies: list[dict[str, Any]] | None, clients: int, seconds: float
) -> dict[str, float]:
    """`clients` concurrent loops for `seconds`: requests/s and latency percentiles."""
    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def loop(i: int) -> None:
            nonlocal errors
            rng = random.Random(i)
            conversation = None
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                if bodies is None:
                    r = await client.get(path)
                else:
                    body = dict(rng.choice(bodies))
                    body["conversation"] = conversation
                    r = await client.post(path, json=body)
                    if r.status_code == 200:
                        conversation = r.json()["conversation"]
                lat.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(loop(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "requests": len(lat),
        "per_second": round(len(lat) / elapsed, 1),
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "mean_ms": round(statistics.fmean(lat) * 1000, 2),
        "errors": errors,
    }


def assistant_load(url: str, data_dir: Path, seconds: float, clients: int) -> dict[str, Any]:
    """The chat route and /livez under the same load, same server."""
    questions = [{"message": it.question} for it in evalset.load() if it.answer]  # knowledge-base questions
    port = 18000 + random.randrange(1000)
    proc = start_server(url, data_dir, port, workers=1)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(
            drive(base, path="/api/v1/assistant/chat", bodies=questions, clients=8, seconds=2)
        )  # warm-up
        chat = asyncio.run(
            drive(base, path="/api/v1/assistant/chat", bodies=questions, clients=clients, seconds=seconds)
        )
        livez = asyncio.run(drive(base, path="/livez", bodies=None, clients=clients, seconds=seconds))
    finally:
        stop_server(proc)
    return {
        "clients": clients,
        "chat": chat,
        "livez": livez,
        "chat_vs_livez_per_second": round(chat["per_second"] / livez["per_second"], 3),
        "p99_target_ms": 50,
        "p99_ok": chat["p99_ms"] < 50,
    }


def fill_orders(url: str, n: int) -> float:
    """n open work orders in one INSERT … SELECT generate_series (spread over a year); seconds taken."""
    eng = create_engine(url)
    t0 = time.perf_counter()
    with eng.begin() as c:
        c.execute(
            text(
                """
INSERT INTO hotline_work_orders (number, source, external_no, order_type, priority, title, content, caller_masked,
  institution_code, state, received_at, due_at, warn50_at, warn75_at, sla_level, reply, callback_note, created_by, updated_at)
SELECT 'B' || g, (ARRAY['wo_city_12345','wo_province_12345','wo_self'])[1 + g % 3], NULL, 'complaint', 'P2',
  '工单 ' || g, '', '138****0000',
  (ARRAY['H020','H029','H001','H002','H003','H004','H005','H006'])[1 + g % 8],
  (ARRAY['new','assigned','in_progress','reopened','escalated'])[1 + (g / 7) % 5],
  t, t + interval '7 days', t + interval '3 days 12 hours', t + interval '5 days 6 hours', 'ok', '', '', 'bench', t
FROM (SELECT g, timestamptz '2025-01-01 00:00+08' + (g % 525600) * interval '1 minute' AS t
      FROM generate_series(1, :n) AS g) s
"""
            ),
            {"n": n},
        )
        c.execute(text("ANALYZE hotline_work_orders"))
    eng.dispose()
    return time.perf_counter() - t0


def list_p99(db: Database, queries: int) -> dict[str, Any]:
    """Filtered, paged lists as the route asks them (with the total), p99."""
    me = Principal("bench", Role.manager)
    rng = random.Random(7)
    shapes = [
        {"open_only": True},
        {"state": "new"},
        {"state": "assigned", "institution_code": "H020"},
        {"source": "wo_city_12345", "open_only": True},
        {"sla_level": "breach"},
        {"state": "in_progress", "source": "wo_self"},
    ]
    lat: list[float] = []
    per_shape: dict[str, list[float]] = {}
    with db.session() as s:
        for i in range(queries):
            shape = shapes[i % len(shapes)]
            t0 = time.perf_counter()
            with s.begin():
                _rows, _total = svc.get_all_orders(
                    s, actor=me, limit=50, offset=rng.choice([0, 50, 500]), **shape
                )
            dt = time.perf_counter() - t0
            lat.append(dt)
            per_shape.setdefault(json.dumps(shape, ensure_ascii=False), []).append(dt)
    return {
        "queries": queries,
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "p99_by_filter_ms": {k: pct(v, 99) for k, v in per_shape.items()},
        "p99_target_ms": 100,
        "p99_ok": pct(lat, 99) < 100,
    }


def sla_runs(db: Database, url: str) -> dict[str, Any]:
    """The SLA job over every open order: first the catch-up (every mark of a year's orders passes at once,
    as after a long outage), then a steady run (the marks of one day, as when the job runs on schedule)."""
    with db.session() as s, s.begin():
        open_orders = sum(svc.sla_summary(s).values())
    t0 = time.perf_counter()
    with db.session() as s, s.begin():
        catch_up = svc.run_sla(s, at=datetime(2025, 12, 20, tzinfo=UTC))
    catch_s = time.perf_counter() - t0
    eng = create_engine(url)
    with eng.begin() as c:  # the statistics a running system has (autovacuum would do this in a while)
        c.execute(text("ANALYZE hotline_work_orders"))
    eng.dispose()
    t0 = time.perf_counter()
    with db.session() as s, s.begin():
        steady = svc.run_sla(s, at=datetime(2025, 12, 21, tzinfo=UTC))
    steady_s = time.perf_counter() - t0
    return {
        "open_orders": open_orders,
        "steady": {"seconds": round(steady_s, 3), "changed": steady},
        "catch_up_all": {"seconds": round(catch_s, 3), "changed": catch_up},
        "target_s": 10,
        "ok": steady_s < 10,
        "catch_up_ok": catch_s < 10,
    }


def main() -> None:
    """Run the three measurements and write results/hotline.json."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--parts", default="assistant,list,sla", help="which measurements to run")
    args = ap.parse_args()
    name = f"rhip_bench_hotline_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    out: dict[str, Any] = {
        "machine": f"{platform.node()} {os.cpu_count()} cores (shared with other work during the run)",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    try:
        upgrade(url)
        db = Database.from_settings(
            Settings(database_url=url, secret_key="bench-secret-key-0123456789abcdef0")
        )
        with db.session() as s, s.begin():
            registry.ensure_loaded(s)
        parts = set(args.parts.split(","))
        if "assistant" in parts:
            with tempfile.TemporaryDirectory() as tmp:
                out["assistant"] = assistant_load(url, Path(tmp), args.seconds, args.clients)
            print("assistant:", json.dumps(out["assistant"], ensure_ascii=False), flush=True)
        if parts & {"list", "sla"}:
            out["fill_seconds"] = round(fill_orders(url, args.orders), 1)
            out["orders"] = args.orders
        if "list" in parts:
            out["list"] = list_p99(db, args.queries)
            print("list:", json.dumps(out["list"], ensure_ascii=False), flush=True)
        if "sla" in parts:
            out["sla"] = sla_runs(db, url)
            print("sla:", json.dumps(out["sla"], ensure_ascii=False), flush=True)
        db.dispose()
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"hotline{'' if len(parts) == 3 else '-' + '-'.join(sorted(parts))}.json").write_text(
        json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    if "assistant" in out:
        a = out["assistant"]
        print(
            f"assistant p99 {a['chat']['p99_ms']} ms at {a['clients']} conversations (target < 50): "
            f"{a['chat']['per_second']}/s vs /livez {a['livez']['per_second']}/s = {a['chat_vs_livez_per_second']}"
        )
    if "list" in out:
        print(f"work-order list p99 {out['list']['p99_ms']} ms over {args.orders:,} orders (target < 100)")
    if "sla" in out:
        sl = out["sla"]
        print(
            f"SLA job over {sl['open_orders']:,} open orders: steady {sl['steady']['seconds']} s, "
            f"catch-up of every mark {sl['catch_up_all']['seconds']} s (target < 10)"
        )
    sys.exit(0)


if __name__ == "__main__":
    main()
