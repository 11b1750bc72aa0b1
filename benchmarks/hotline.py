"""The hotline's performance targets, each beside its limit in the same run. Writes results/hotline.json.

1. The assistant without the LLM, 50 concurrent conversations against POST /api/v1/assistant/chat (one uvicorn
   worker, loopback, driven by wrk so that the load generator is not the bottleneck), p99 under 50 ms:
   - paced (the target): 50 people, each sending a message, waiting for the answer, thinking (uniform
     `--think` seconds, default 1–5: a quick reader on a phone; longer thinking only lowers the load) and
     sending the next, `--turns` messages per conversation, for `--paced-seconds`; offered and answered rate,
     chat p50/p99, and /livez asked by 4 more connections every 50–150 ms in the same run;
   - saturated (the capacity): the same 50 connections without thinking, answers per second;
   - CPU ms per answer of the server, PostgreSQL and wrk (from /proc), and `assistant.chat` in-process.
2. The work-order list filtered and paged with 1 million orders (PostgreSQL): p99 under 100 ms — in-process
   through `service.get_all_orders` (first pages with their capped count, and later pages by cursor), and over
   HTTP (GET /api/v1/hotline/work-orders) beside the floor GET /api/v1/auth/me (same server, same token, same
   clients, same run): the ratio is the comparable figure on a shared machine.
3. The SLA job over 1 million open orders: under 10 s — printed separately for the catch-up (`jobs.run_once` as
   cron runs it, every order crossing every mark at once: ~1M events), the same run again (writes nothing) and
   a steady day (one day's marks); docs/hotline.md says which the target means.
Every part prints /proc/loadavg before and after.

    .venv/bin/python benchmarks/hotline.py                 # everything (PostgreSQL at 127.0.0.1:5432)
    .venv/bin/python benchmarks/hotline.py --orders 200000 --seconds 5
    .venv/bin/python benchmarks/hotline.py --parts assistant --seconds 10 --paced-seconds 60 --think 1-5
    .venv/bin/python benchmarks/hotline.py --parts list,sla --no-http
"""

# ruff: noqa: E501  (the SQL that fills the table is kept on long lines)

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text

from booking import (  # the same uvicorn settings and CPU accounting as the booking benchmark
    SECRET,
    CpuMeter,
    _cpu_seconds,
    free_port,
    start_server,
    stop_server,
)
from rhip import clock
from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.hotline import assistant, evalset, jobs, service as svc, sla
from rhip.hotline.models import WorkOrder
from rhip.registry import service as registry
from rhip.security.roles import Role
from rhip.security.service import Principal, issue_token

RESULTS = Path(__file__).with_name("results")
# a kind of request: GET one of these paths, or POST one of these bodies to a path (carrying a conversation)
Kinds = dict[str, list[str] | tuple[str, list[dict[str, Any]]]]
ADMIN_URL = os.environ.get("RHIP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) in milliseconds (NaN when nothing was measured)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] * 1000, 2)


def loadavg() -> str:
    """The machine's load (1, 5, 15 minutes), reported beside every figure."""
    return " ".join(Path("/proc/loadavg").read_text(encoding="ascii").split()[:3])


def served_mixed(
    url: str,
    data_dir: Path,
    kinds: Kinds,
    *,
    clients: int,
    seconds: float,
    headers: dict[str, str] | None = None,
    check: list[str] | None = None,
) -> dict[str, dict[str, float]]:
    """Serve the app (uvicorn, one worker), check that the `check` paths answer (a 4xx would make the figures
    meaningless), warm up, then `drive_mixed` the kinds; the server is stopped whatever happens."""
    port = 18000 + random.randrange(1000)
    proc = start_server(url, data_dir, port, workers=1)
    base = f"http://127.0.0.1:{port}"
    try:
        for path in check or []:
            httpx.get(base + path, headers=headers, timeout=60).raise_for_status()
        asyncio.run(drive_mixed(base, kinds, clients=min(clients, 8), seconds=5, headers=headers))
        return asyncio.run(drive_mixed(base, kinds, clients=clients, seconds=seconds, headers=headers))
    finally:
        stop_server(proc)


def assistant_in_process(
    db: Database, questions: list[dict[str, Any]], conversations: int, answers: int
) -> dict[str, Any]:
    """`assistant.chat` as the route calls it (each answer its own transaction), without HTTP: `conversations`
    conversations taken in turn; latency and this process's CPU per answer."""
    tokens: list[str | None] = [None] * conversations
    rng = random.Random(3)
    lat: list[float] = []
    cpu0 = time.process_time()
    with db.session() as s:
        for i in range(answers):
            k = i % conversations
            t0 = time.perf_counter()
            with s.begin():
                reply = assistant.chat(
                    s,
                    message=rng.choice(questions)["message"],
                    conversation=tokens[k],
                    actor=None,
                    settings=None,
                )
            lat.append(time.perf_counter() - t0)
            tokens[k] = reply.conversation
    return {
        "answers": answers,
        "conversations": conversations,
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "cpu_ms_per_answer": round((time.process_time() - cpu0) / answers * 1000, 3),
    }


# One wrk connection is one person at a time. A person sends a message, waits for the answer, thinks (wrk's
# delay(), uniform between the bounds; 0 = no thinking: the saturated run) and sends the next. wrk's Lua cannot
# tell which connection a request() is for, so conversations wait in a queue: an answer puts its conversation
# at the back (until it has had its turns), a person's next message continues the conversation at the front or
# starts a new one. Every conversation therefore has at most one message in flight, each connection has one
# person, and no request is ever sent while its connection waits for an answer (wrk's latency is the answer
# time alone; the think time is not in it).
CHAT_LUA = r"""
local msgs = {%(msgs)s}
local turns, lo, hi = %(turns)d, %(lo)d, %(hi)d
local threads, next_tid = {}, 0
local queue, head, tail, seen = {}, 1, 0, {}
answered, other, started = 0, 0, 0
function setup(thread) thread:set("tid", next_tid); next_tid = next_tid + 1; table.insert(threads, thread) end
function init(args) math.randomseed(%(seed)d + tid * 7919) end
function request()
  local conv = "null"
  if head <= tail then conv = '"' .. queue[head] .. '"'; queue[head] = nil; head = head + 1 else started = started + 1 end
  local body = '{"message":' .. msgs[math.random(#msgs)] .. ',"conversation":' .. conv .. '}'
  return wrk.format("POST", "/api/v1/assistant/chat", {["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  if status ~= 200 then other = other + 1; return end
  answered = answered + 1
  local tok = body:match('"conversation":"(%%x+)"')
  if tok then
    local n = (seen[tok] or 0) + 1
    if n < turns then seen[tok] = n; tail = tail + 1; queue[tail] = tok else seen[tok] = nil end
  end
end
%(delay)s
function done(summary, latency, requests)
  local a, o, s = 0, 0, 0
  for _, t in ipairs(threads) do a = a + t:get("answered"); o = o + t:get("other"); s = s + t:get("started") end
  io.write(string.format('RESULT {"requests": %%d, "seconds": %%f, "created": %%d, "other": %%d, "conversations_started": %%d, "errors": %%d, "p50_ms": %%f, "p90_ms": %%f, "p99_ms": %%f, "max_ms": %%f}\n',
    summary.requests, summary.duration / 1e6, a, o, s,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""
LIVEZ_LUA = r"""
local threads = {}
created = 0
function setup(thread) table.insert(threads, thread) end
function response(status) if status == 200 then created = created + 1 end end
%(delay)s
function done(summary, latency, requests)
  local c = 0
  for _, t in ipairs(threads) do c = c + t:get("created") end
  io.write(string.format('RESULT {"requests": %%d, "seconds": %%f, "created": %%d, "errors": %%d, "p50_ms": %%f, "p90_ms": %%f, "p99_ms": %%f, "max_ms": %%f}\n',
    summary.requests, summary.duration / 1e6, c,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""
LIVEZ_PROBES = 4  # connections asking /livez beside the paced chat, each every 50–150 ms (~40 requests/s)


class ServerMeter(CpuMeter):
    """booking's CpuMeter counting the uvicorn process itself too (one worker runs in it, no children)."""

    def start(self) -> None:
        """Take the first reading, the server's own process included."""
        super().start()
        self.workers.update(_cpu_seconds([self.server_pid]))


def think(bounds: tuple[float, float] | None) -> str:
    """wrk's delay(): milliseconds to wait before a connection's next request (uniform), or nothing."""
    if bounds is None:
        return ""
    return f"function delay() return math.random({round(bounds[0] * 1000)}, {round(bounds[1] * 1000)}) end"


def chat_lua(
    questions: list[dict[str, Any]], *, turns: int, bounds: tuple[float, float] | None, seed: int
) -> str:
    """The chat script: the questions as JSON strings (in Lua long brackets), turns per conversation, think."""
    msgs = ",".join("[==[" + json.dumps(q["message"]) + "]==]" for q in questions)
    lo, hi = (round(b * 1000) for b in bounds) if bounds else (0, 0)
    return CHAT_LUA % {"msgs": msgs, "turns": turns, "lo": lo, "hi": hi, "seed": seed, "delay": think(bounds)}


def wrk_together(
    base: str, runs: list[tuple[str, str, int]], seconds: float, meter: CpuMeter | None
) -> list[dict[str, Any]]:
    """Run several wrk processes at once for `seconds` (each a (path, Lua script, connections)); the RESULT of
    each, and the CPU each side spent over the whole phase (per answer of the first run)."""
    scripts, procs = [], []
    try:
        if meter:
            meter.start()
        for path, lua, connections in runs:
            with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
                f.write(lua)
            scripts.append(f.name)
            threads = 2 if connections % 2 == 0 else 1
            cmd = [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(int(seconds), 1)}s",
                "--timeout",
                "10s",
                "-s",
                f.name,
                base + path,
            ]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outs = [p.communicate(timeout=seconds + 60) for p in procs]
        cpu = meter.stop() if meter else {}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for name in scripts:
            os.unlink(name)
    results = []
    for (out, err), p in zip(outs, procs, strict=True):
        m = re.search(r"^RESULT (\{.*\})$", out, re.M)
        if p.returncode or not m:
            raise RuntimeError(f"wrk failed ({p.returncode}):\n{out}\n{err}")
        r: dict[str, Any] = json.loads(m.group(1))
        r["per_second"] = round(r["created"] / r["seconds"], 1)
        results.append(r)
    if cpu:
        n = max(results[0]["created"], 1)
        results[0]["cpu_ms_per_answer"] = {
            side: round(cpu[f"cpu_{side}_s"] / n * 1000, 3) for side in ("workers", "postgres", "wrk")
        }
        results[0]["cores_used"] = {
            side: round(cpu[f"cpu_{side}_s"] / cpu["seconds"], 2) for side in ("workers", "postgres", "wrk")
        }
        results[0]["load_avg_1m_at_start"] = cpu["load_avg_1m_at_start"]
    return results


def assistant_load(
    db: Database,
    url: str,
    data_dir: Path,
    *,
    seconds: float,
    paced_seconds: float,
    clients: int,
    bounds: tuple[float, float],
    turns: int,
) -> dict[str, Any]:
    """The chat in-process; then over HTTP (uvicorn, one worker, driven by wrk): saturated (every person asks
    again at once: the capacity) and paced (people who think between messages: the target), /livez paced
    beside the paced chat in the same run."""
    questions = [{"message": it.question} for it in evalset.load() if it.answer]  # knowledge-base questions
    load_before = loadavg()
    assistant_in_process(db, questions, clients, 100)  # warm-up (the index, the dictionaries)
    in_process = assistant_in_process(db, questions, clients, 1000)
    port = free_port()
    proc = start_server(url, data_dir, port, workers=1, wait=300)
    base = f"http://127.0.0.1:{port}"
    meter = ServerMeter(proc.pid, url)
    try:
        # the first answer builds the knowledge base's index and loads the dictionaries in the worker
        httpx.post(base + "/api/v1/assistant/chat", json=questions[0], timeout=300).raise_for_status()
        wrk_together(
            base, [("/", chat_lua(questions, turns=turns, bounds=None, seed=1), 8)], 3, None
        )  # warm-up
        (saturated,) = wrk_together(
            base, [("/", chat_lua(questions, turns=turns, bounds=None, seed=2), clients)], seconds, meter
        )
        probe = LIVEZ_LUA % {"delay": think((0.05, 0.15))}
        paced, livez = wrk_together(
            base,
            [
                ("/", chat_lua(questions, turns=turns, bounds=bounds, seed=3), clients),
                ("/livez", probe, LIVEZ_PROBES),
            ],
            paced_seconds,
            meter,
        )
    finally:
        stop_server(proc)
    mean_think = sum(bounds) / 2
    paced["offered_per_second"] = round(clients / (mean_think + paced["p50_ms"] / 1000), 1)
    return {
        "clients": clients,
        "think_s": list(bounds),
        "turns_per_conversation": turns,
        "in_process": in_process,
        "saturated": saturated,
        "paced": paced,
        "livez_paced": livez,
        "paced_chat_p99_vs_livez_p99": round(paced["p99_ms"] / max(livez["p99_ms"], 0.01), 2),
        "p99_target_ms": 50,
        "p99_ok": paced["p99_ms"] < 50 and paced["other"] == 0 and paced["errors"] == 0,
        "load_before": load_before,
        "load_after": loadavg(),
    }


def fill_orders(url: str, n: int, closed_pct: int = 0) -> float:
    """n work orders in one INSERT … SELECT generate_series (spread over a year), `closed_pct` % of them
    closed (a live system's mix) and the rest open; seconds taken."""
    eng = create_engine(url)
    t0 = time.perf_counter()
    with eng.begin() as c:
        c.execute(
            text(
                """
INSERT INTO hotline_work_orders (number, source, external_no, order_type, priority, title, content, caller_masked,
  institution_code, state, received_at, due_at, warn50_at, warn75_at, sla_stopped_level, reply, callback_note, created_by, updated_at)
SELECT 'B' || g, (ARRAY['wo_city_12345','wo_province_12345','wo_self'])[1 + g % 3], NULL, 'complaint', 'P2',
  '工单 ' || g, '', '138****0000',
  (ARRAY['H020','H029','H001','H002','H003','H004','H005','H006'])[1 + g % 8],
  CASE WHEN g % 100 < :closed THEN 'closed' ELSE (ARRAY['new','assigned','in_progress','reopened','escalated'])[1 + (g / 7) % 5] END,
  t, t + interval '7 days', t + interval '3 days 12 hours', t + interval '5 days 6 hours',
  CASE WHEN g % 100 < :closed THEN 'ok' END, '', '', 'bench', t
FROM (SELECT g, timestamptz '2025-01-01 00:00+08' + (g % 525600) * interval '1 minute' AS t
      FROM generate_series(1, :n) AS g) s
"""
            ),
            {"n": n, "closed": closed_pct},
        )
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        # what autovacuum does to an insert-only table soon after (PostgreSQL 13+): statistics and the
        # visibility map, without which no scan is index-only
        c.execute(text("VACUUM ANALYZE hotline_work_orders"))
    eng.dispose()
    return time.perf_counter() - t0


SHAPES: list[dict[str, Any]] = [
    {"open_only": True},
    {"state": "new"},
    {"state": "assigned", "institution_code": "H020"},
    {"institution_code": "H029", "open_only": True},  # an institution's inbox
    {"source": "wo_city_12345", "open_only": True},
    {"sla_level": "breach"},
    {"state": "in_progress", "source": "wo_self"},
]
API_PARAMS = {"institution_code": "institution"}


def cursors(db: Database, me: Principal, pages: int = 12) -> list[tuple[dict[str, Any], str | None]]:
    """(shape, cursor) pairs: each shape's first page (None) and cursors up to `pages` pages deep."""
    out: list[tuple[dict[str, Any], str | None]] = []
    with db.session() as s, s.begin():
        for shape in SHAPES:
            out.append((shape, None))
            cursor = None
            for depth in range(pages):
                page = svc.get_all_orders(s, actor=me, limit=50, cursor=cursor, with_count=False, **shape)
                cursor = page.next_cursor
                if cursor is None:
                    break
                if depth in (0, 1, pages - 1):
                    out.append((shape, cursor))
    return out


def list_in_process(
    db: Database, queries: int, me: Principal, work: list[tuple[dict[str, Any], str | None]]
) -> dict[str, Any]:
    """Pages as the route asks them (the first with its capped count), p99 per shape and overall."""
    lat: list[float] = []
    per_shape: dict[str, list[float]] = {}
    with db.session() as s:
        for i in range(queries):
            shape, cursor = work[i % len(work)]
            t0 = time.perf_counter()
            with s.begin():
                svc.get_all_orders(s, actor=me, limit=50, cursor=cursor, **shape)
            dt = time.perf_counter() - t0
            lat.append(dt)
            key = json.dumps(shape, ensure_ascii=False) + (" next" if cursor else " first")
            per_shape.setdefault(key, []).append(dt)
    return {
        "queries": queries,
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "p99_by_filter_ms": {k: pct(v, 99) for k, v in per_shape.items()},
    }


def list_http(
    url: str, data_dir: Path, work: list[tuple[dict[str, Any], str | None]], seconds: float, clients: int
) -> dict[str, Any]:
    """GET /api/v1/hotline/work-orders (the same pages) and the floor GET /api/v1/auth/me, same server, token
    and clients, interleaved request by request so both see the same load."""
    paths = []
    for shape, cursor in work:
        q = {API_PARAMS.get(k, k): str(v).lower() if isinstance(v, bool) else v for k, v in shape.items()}
        if cursor:
            q["cursor"] = cursor
        paths.append(
            "/api/v1/hotline/work-orders?" + "&".join(f"{k}={v}" for k, v in q.items()) + "&limit=50"
        )
    headers = {"Authorization": f"Bearer {issue_token(SECRET, subject='bench', role='manager')}"}
    kinds: Kinds = {"list": paths, "floor": ["/api/v1/auth/me"]}
    mixed = served_mixed(url, data_dir, kinds, clients=clients, seconds=seconds, headers=headers, check=paths)
    listed, floor = mixed["list"], mixed["floor"]
    return {
        "clients": clients,
        "list": listed,
        "floor_auth_me": floor,
        "list_p50_vs_floor_p50": round(listed["p50_ms"] / max(floor["p50_ms"], 0.01), 2),
        "list_p99_vs_floor_p99": round(listed["p99_ms"] / max(floor["p99_ms"], 0.01), 2),
    }


async def drive_mixed(
    base: str,
    kinds: Kinds,
    *,
    clients: int,
    seconds: float,
    headers: dict[str, str] | None = None,
) -> dict[str, dict[str, float]]:
    """`clients` concurrent loops for `seconds`, each taking the kinds in turn, so every kind is timed under
    the same load: a list of paths is a GET of one of them, (path, bodies) a POST of one body carrying on the
    client's conversation. Latency percentiles per kind."""
    lat: dict[str, list[float]] = {k: [] for k in kinds}
    errors = dict.fromkeys(kinds, 0)
    order = list(kinds)
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60, headers=headers) as client:

        async def loop(i: int) -> None:
            rng = random.Random(i)
            n = i
            conversation = None
            while time.perf_counter() < stop:
                kind = order[n % len(order)]
                n += 1
                spec = kinds[kind]
                t0 = time.perf_counter()
                if isinstance(spec, tuple):
                    body = {**rng.choice(spec[1]), "conversation": conversation}
                    r = await client.post(spec[0], json=body)
                    if r.status_code == 200:
                        conversation = r.json()["conversation"]
                else:
                    r = await client.get(rng.choice(spec))
                lat[kind].append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors[kind] += 1

        started = time.perf_counter()
        await asyncio.gather(*(loop(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        k: {
            "requests": len(v),
            "per_second": round(len(v) / elapsed, 1),
            "p50_ms": pct(v, 50),
            "p99_ms": pct(v, 99),
            "mean_ms": round(statistics.fmean(v) * 1000, 2) if v else float("nan"),
            "errors": errors[k],
        }
        for k, v in lat.items()
    }


LEVEL_AT = datetime(2025, 7, 1, tzinfo=UTC)  # inside the filled year: orders at every SLA level
LEVEL_SHAPES: list[dict[str, Any]] = [
    {"sla_level": level, **extra}
    for level in sla.LEVELS
    for extra in ({"open_only": True}, {}, {"state": "new"})
]


def plan_nodes(node: dict[str, Any]) -> list[str]:
    """A plan's nodes, depth first, as "Node Type" or "Node Type on index"."""
    here = node["Node Type"] + (f" on {node['Index Name']}" if "Index Name" in node else "")
    return [here] + [n for child in node.get("Plans", []) for n in plan_nodes(child)]


def explain(session: Any, q: Any) -> list[str]:
    """EXPLAIN a statement on PostgreSQL: its plan's nodes."""
    bind = session.get_bind()
    compiled = q.compile(dialect=bind.dialect, compile_kwargs={"render_postcompile": True})
    plan = session.connection().exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled.string}", compiled.params)
    return plan_nodes(plan.scalar_one()[0]["Plan"])


def level_list(db: Database, me: Principal, rounds: int = 10) -> dict[str, Any]:
    """The list filtered by SLA level (derived from the marks at LEVEL_AT, the clock frozen there): each level
    alone, with open_only and with a state, first pages with their capped count and second pages; the plans of
    the page and of the count (no sequential scan)."""
    lat: list[float] = []
    plans: dict[str, dict[str, list[str]]] = {}
    with clock.frozen(LEVEL_AT), db.session() as s:
        for shape in LEVEL_SHAPES:
            key = json.dumps(shape)
            with s.begin():
                branches = svc.filtered_orders(
                    me,
                    **{k: shape.get(k) for k in ("state", "sla_level")},
                    source=None,
                    institution_code=None,
                    open_only=bool(shape.get("open_only")),
                )  # one query per index-ordered branch (running and stopped orders), each explained
                plans[key] = {"page": [], "count": []}
                for q in branches:
                    page = q.order_by(WorkOrder.due_at, WorkOrder.id).limit(51)
                    ids = q.with_only_columns(WorkOrder.id).order_by(None).limit(svc.COUNT_CAP + 1).subquery()
                    plans[key]["page"] += explain(s, page)
                    plans[key]["count"] += explain(s, select(func.count()).select_from(ids))
            for _ in range(rounds):
                t0 = time.perf_counter()
                with s.begin():
                    first = svc.get_all_orders(s, actor=me, limit=50, **shape)
                lat.append(time.perf_counter() - t0)
                if first.next_cursor:
                    t0 = time.perf_counter()
                    with s.begin():
                        svc.get_all_orders(s, actor=me, limit=50, cursor=first.next_cursor, **shape)
                    lat.append(time.perf_counter() - t0)
    seq = sorted(k for k, p in plans.items() if any(n.startswith("Seq Scan") for n in p["page"] + p["count"]))
    return {
        "at": LEVEL_AT.isoformat(),
        "pages": len(lat),
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "plans": plans,
        "sequential_scans": seq,
    }


def list_p99(
    db: Database, url: str, queries: int, seconds: float, clients: int, *, http: bool = True
) -> dict[str, Any]:
    """The list in-process and (unless `http` is false) over HTTP beside its floor."""
    me = Principal("bench", Role.manager)
    work = cursors(db, me)
    out: dict[str, Any] = {"load_before": loadavg(), "pages": len(work)}
    out["in_process"] = list_in_process(db, queries, me, work)
    out["by_level"] = level_list(db, me)
    if http:
        with tempfile.TemporaryDirectory() as tmp:
            out["http"] = list_http(url, Path(tmp), work, seconds, clients)
    out["load_after"] = loadavg()
    out["p99_target_ms"] = 100
    out["p99_ok"] = out["in_process"]["p99_ms"] < 100 and (not http or out["http"]["list"]["p99_ms"] < 100)
    return out


def backend_cpu(dbname: str) -> float:
    """CPU seconds (user + system) used so far by the PostgreSQL backends connected to `dbname` (autovacuum aside):
    the database's side of the work, which the client's process time does not see."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
            if dbname.encode() not in cmd or b"autovacuum" in cmd:
                continue
            fields = (d / "stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of /proc/PID/stat)
    return total / tick


def measured(fn: Any, dbname: str) -> tuple[Any, dict[str, Any]]:
    """Run fn(); its result and wall seconds, client CPU seconds, database backends' CPU seconds, load."""
    load, cpu0, db0, t0 = loadavg(), time.process_time(), backend_cpu(dbname), time.perf_counter()
    result = fn()
    return result, {
        "seconds": round(time.perf_counter() - t0, 3),
        "client_cpu_s": round(time.process_time() - cpu0, 3),
        "db_cpu_s": round(backend_cpu(dbname) - db0, 3),
        "load_before": load,
        "load_after": loadavg(),
    }


def sla_runs(db: Database, url: str, chunk: int, dbname: str) -> dict[str, Any]:
    """The SLA job over every open order: first the chunked catch-up (every mark of a year's orders passes at
    once, as after a long outage; no run before it), the same run again (idempotent: nothing to write), then a
    steady run (the marks of one day, as when the job runs on schedule). Checks one event per announced order."""
    out: dict[str, Any] = {"load_before": loadavg(), "chunk": chunk}
    with db.session() as s, s.begin():
        out["open_orders"] = sum(svc.sla_summary(s).values())
    chunks: list[float] = []
    last = [time.perf_counter()]

    def tick(_level: str, _done: int, _total: int) -> None:
        now_ = time.perf_counter()
        chunks.append(now_ - last[0])
        last[0] = now_

    catch_at, steady_at = datetime(2025, 12, 20, tzinfo=UTC), datetime(2025, 12, 21, tzinfo=UTC)
    # as cron runs it: no progress bar, so no count of the pending orders first (the chunks are timed)
    catch_up, catch = measured(
        lambda: jobs.run_once(db, at=catch_at, chunk=chunk, progress=tick, totals=False), dbname
    )
    again, rerun = measured(lambda: jobs.run_once(db, at=catch_at, chunk=chunk), dbname)
    eng = create_engine(url)
    with eng.connect() as c:
        events = c.execute(
            text(
                "SELECT count(*), count(DISTINCT order_id) FROM hotline_work_order_events WHERE action LIKE 'sla_%'"
            )
        ).one()
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(
            text("VACUUM ANALYZE hotline_work_order_events")
        )  # what autovacuum does after a mass insert
    eng.dispose()
    with db.session() as s, s.begin():
        expected = svc.sla_summary(s, at=catch_at)
    steady, steady_m = measured(lambda: jobs.run_once(db, at=steady_at, chunk=chunk), dbname)
    out.update(
        {
            "catch_up_all": {
                **catch,
                "changed": catch_up,
                "chunks": len(chunks),
                "longest_chunk_s": round(max(chunks), 3) if chunks else None,
                "median_chunk_s": round(statistics.median(chunks), 3) if chunks else None,
                "orders_per_second": round(sum(catch_up.values()) / catch["seconds"], 1),
            },
            "rerun_same_instant": {**rerun, "changed": again},
            "steady": {**steady_m, "changed": steady},
            "events_written": int(events[0]),
            "orders_with_events": int(events[1]),
            "levels_at_catch_up": expected,
            "one_event_per_order": int(events[0]) == int(events[1]) == sum(catch_up.values())
            and all(catch_up[lv] == expected[lv] for lv in catch_up)
            and not any(again.values()),
            "target_s": 10,
            "ok": steady_m["seconds"] < 10,
            "catch_up_ok": catch["seconds"] < 10,
            "load_after": loadavg(),
        }
    )
    return out


def think_bounds(spec: str) -> tuple[float, float]:
    """ "1-5" → (1.0, 5.0): a person's think time between messages, in seconds."""
    lo, _, hi = spec.partition("-")
    bounds = (float(lo), float(hi or lo))
    if not 0 <= bounds[0] <= bounds[1]:
        raise SystemExit(f"--think {spec}: want LOW-HIGH seconds")
    return bounds


def main() -> None:
    """Run the three measurements and write results/hotline.json."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--paced-seconds", type=float, default=40, help="length of the paced assistant run")
    ap.add_argument(
        "--think", default="1-5", help="seconds a person thinks between messages (uniform), e.g. 1-5"
    )
    ap.add_argument("--turns", type=int, default=6, help="messages per conversation")
    ap.add_argument("--queries", type=int, default=350)
    ap.add_argument("--list-clients", type=int, default=4, help="concurrent clients for the list over HTTP")
    ap.add_argument("--closed-pct", type=int, default=0, help="percentage of the orders filled as closed")
    ap.add_argument("--chunk", type=int, default=svc.CHUNK, help="orders per SLA transaction")
    ap.add_argument("--no-http", action="store_true", help="the list in-process only (no server)")
    ap.add_argument("--parts", default="assistant,list,sla", help="which measurements to run")
    args = ap.parse_args()
    name = f"rhip_bench_hotline_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    out: dict[str, Any] = {
        "machine": f"{platform.node()} {os.cpu_count()} cores (shared with other work during the run)",
        "load_at_start": loadavg(),
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
                out["assistant"] = assistant_load(
                    db,
                    url,
                    Path(tmp),
                    seconds=args.seconds,
                    paced_seconds=args.paced_seconds,
                    clients=args.clients,
                    bounds=think_bounds(args.think),
                    turns=args.turns,
                )
            print("assistant:", json.dumps(out["assistant"], ensure_ascii=False), flush=True)
        if parts & {"list", "sla"}:
            out["fill_seconds"] = round(fill_orders(url, args.orders, args.closed_pct), 1)
            out["orders"] = args.orders
            out["closed_pct"] = args.closed_pct
        if "list" in parts:
            out["list"] = list_p99(
                db, url, args.queries, args.seconds, args.list_clients, http=not args.no_http
            )
            print("list:", json.dumps(out["list"], ensure_ascii=False), flush=True)
        if "sla" in parts:
            out["sla"] = sla_runs(db, url, args.chunk, name)
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
        sat, pa, lz = a["saturated"], a["paced"], a["livez_paced"]
        print(
            f"assistant at {a['clients']} conversations (target p99 < 50 ms), one uvicorn worker, wrk:\n"
            f"  paced (think {a['think_s'][0]:g}–{a['think_s'][1]:g} s, {a['turns_per_conversation']} turns each): "
            f"offered ~{pa['offered_per_second']}/s, answered {pa['per_second']}/s ({pa['created']} answers, "
            f"{pa['other']} non-200, {pa['errors']} socket errors); chat p50 {pa['p50_ms']:.1f} ms, "
            f"p99 {pa['p99_ms']:.1f} ms → {'MET' if a['p99_ok'] else 'NOT MET'}; /livez in the same run p50 "
            f"{lz['p50_ms']:.1f} ms, p99 {lz['p99_ms']:.1f} ms ({lz['per_second']}/s); "
            f"CPU ms per answer {pa.get('cpu_ms_per_answer')}\n"
            f"  saturated capacity (no thinking): {sat['per_second']} answers/s, p50 {sat['p50_ms']:.0f} ms, "
            f"p99 {sat['p99_ms']:.0f} ms; CPU ms per answer {sat.get('cpu_ms_per_answer')}, cores used "
            f"{sat.get('cores_used')}\n"
            f"  in-process (assistant.chat alone): p50 {a['in_process']['p50_ms']} ms, p99 "
            f"{a['in_process']['p99_ms']} ms, CPU {a['in_process']['cpu_ms_per_answer']} ms/answer; "
            f"load {a['load_before']} → {a['load_after']}"
        )
    if "list" in out:
        li, h = out["list"], out["list"].get("http")
        print(
            f"work-order list over {args.orders:,} orders (target p99 < 100 ms): in-process p99 "
            f"{li['in_process']['p99_ms']} ms (p50 {li['in_process']['p50_ms']}); load {li['load_before']} → {li['load_after']}"
        )
        if h:
            print(
                f"  over HTTP p99 {h['list']['p99_ms']} ms (p50 {h['list']['p50_ms']}) vs /auth/me interleaved p99 "
                f"{h['floor_auth_me']['p99_ms']} ms (p50 {h['floor_auth_me']['p50_ms']}): p99 {h['list_p99_vs_floor_p99']}x, "
                f"p50 {h['list_p50_vs_floor_p50']}x the floor at {h['clients']} clients"
            )
        lv = li["by_level"]
        print(
            f"  by SLA level at {lv['at']} ({lv['pages']} pages): p50 {lv['p50_ms']} ms, p99 {lv['p99_ms']} ms; "
            f"sequential scans: {lv['sequential_scans'] or 'none'}"
        )
    if "sla" in out:
        sl = out["sla"]
        c, r, st = sl["catch_up_all"], sl["rerun_same_instant"], sl["steady"]

        def verdict(seconds: float) -> str:
            return "MET" if seconds < sl["target_s"] else "NOT MET"

        print(
            f"SLA job over {sl['open_orders']:,} open orders (target < {sl['target_s']} s; one event per announced "
            f"order: {sl['one_event_per_order']}):\n"
            f"  catch-up (every mark of a year crossed at once, {sum(c['changed'].values()):,} events): "
            f"{c['seconds']} s wall → {verdict(c['seconds'])}; CPU {c['client_cpu_s']} s client + {c['db_cpu_s']} s "
            f"database; {c['chunks']} chunks of {sl['chunk']:,} (longest {c['longest_chunk_s']} s); load "
            f"{c['load_before']} → {c['load_after']}\n"
            f"  the same run again: {r['seconds']} s → {verdict(r['seconds'])} (wrote {sum(r['changed'].values())})\n"
            f"  steady day (one day's marks, {sum(st['changed'].values()):,} events): {st['seconds']} s → "
            f"{verdict(st['seconds'])} (CPU {st['client_cpu_s']} + {st['db_cpu_s']} s database)"
        )
    sys.exit(0)


if __name__ == "__main__":
    main()
