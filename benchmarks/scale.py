"""Benchmark: the lake's batch jobs on 1 and 2 Dask worker processes in the same run (issue 21).

A month of records is written in intake's storage layout by benchmarks/quality.py's `write_lake` (the
tables the figures read, with 1% corrections and revocations, and intake's rollups of them made by
intake's own code), then sorted by institution (Delta OPTIMIZE Z-order on `org_code`, as a compaction
would lay a large lake out) so that each task of a job opens only its institutions' files. On a local
cluster of 1 and then 2 single-threaded worker processes it times:

- the recount: the month's figures from the lake's records (`quality.distrib.counts`, what
  `rhip quality recount` runs), and
- the rollup rebuild: the month's rollup rows from the lake (`intake.rebuild.compute`, what
  `rhip intake rebuild-rollups --month` runs before its one SQL transaction),

and prints the speed-up (target ≥ 1.6× with 2 workers on 2 cores), records per second per worker and the
extrapolated time of a full Nanjing month (330 million records) and of a year on 8 and 32 workers (linear
in workers, from the 1-worker and from the 2-worker rate per worker: a range). The load average is printed
beside every figure: the machine is shared. Results in benchmarks/results/scale.json.

It also times `rhip synth` (the synthetic city's month at --synth-scale) in one process and on 1 and 2
worker processes, checks the outputs are the same bytes (the manifests list every file's sha256), and
prints its speed-up and rows per second per worker.

Each job also runs in this process (no cluster, every library's threads) in every round, and every run
prints its CPU seconds — each worker's, this process's (the client and the local scheduler) and the rest of
the machine's as cores (from /proc/stat: other sessions) — and, on a cluster, Dask's task stream: how many
tasks, the longest, the client's time before the first and after the last (planning, gathering, combining)
and each worker's busy seconds. A run during which other sessions used more than 0.3 of a core is marked
SPOILED; the speed-up is then also given by CPU (1 worker's CPU over the busier of 2 workers', client added).
`--keep DIR` writes the lake there once and reuses it (0.3 takes ~11 min to write and sort).

Both clusters (1 and 2 workers) stay up for the whole run, their workers warmed (the jobs' modules imported,
as on a long-lived cluster), and each of the `--repeat` rounds times every job on 1 worker and then on 2,
cold: the speed-up reported per job is the median of the rounds' ratios (a pair measured seconds apart,
so a burst of load from elsewhere spoils one round, not the figure); every round's ratio is printed and
saved beside it.

With `--pin` each worker process (all its threads) is bound to a core of its own: one worker is then one
core, as the sizing model counts it. Unpinned, a single worker's PyArrow I/O and Polars helper threads run on
the idle second core (the rebuild's 1-worker run used 6.5 CPU seconds in 5.1 s of wall clock at scale 0.03),
which two workers cannot, so the unpinned ratio understates what a second core adds.

    .venv/bin/python benchmarks/scale.py --scale 0.01 [--synth-scale 0.005] [--repeat 3] [--pin] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deltalake import DeltaTable, WriterProperties

from rhip import months
from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.intake import rebuild
from rhip.lake.cluster import Job, client
from rhip.lake.store import Lake
from rhip.quality import distrib, figures, lakeread, units as quality_units

sys.path.insert(0, str(Path(__file__).parent))
from quality import FULL_MONTH_ROWS, MONTH, write_lake

if TYPE_CHECKING:
    from distributed import Client

RESULTS = Path(__file__).parent / "results"
YEAR_ROWS = 12 * FULL_MONTH_ROWS
ROW_GROUPS = WriterProperties(max_row_group_size=1 << 16)


def _load() -> str:
    return Path("/proc/loadavg").read_text().split(" ")[0]


def _busy() -> float:
    """CPU seconds every process on the machine has used (all cores, from /proc/stat; other sessions' too)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(v) for v in fields]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _cpu() -> float:
    """This process's CPU seconds, all its threads (run on each worker through `Client.run`)."""
    return time.process_time()


class Usage:
    """The CPU seconds of one timed run: each worker's, this process's (the client and, on a local cluster,
    the scheduler) and the rest of the machine's (other sessions: what spoils a wall-clock ratio)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.workers0 = job.client.run(_cpu) if job.client is not None else {}
        self.mine0, self.busy0, self.t0 = time.process_time(), _busy(), time.perf_counter()
        self.start = time.time()

    def stop(self) -> dict[str, Any]:
        """Wall clock, CPU seconds per worker and of this process, the others' as cores."""
        wall = time.perf_counter() - self.t0
        busy, mine = _busy() - self.busy0, time.process_time() - self.mine0
        after = self.job.client.run(_cpu) if self.job.client is not None else {}
        workers = sorted((after[w] - self.workers0.get(w, 0.0) for w in after), reverse=True)
        others = max(0.0, busy - mine - sum(workers))
        out: dict[str, Any] = {
            "seconds": round(wall, 3),
            "worker_cpu": [round(w, 2) for w in workers],
            "client_cpu": round(mine, 2),
            "others_cores": round(others / wall, 2),
        }
        if self.job.client is not None:
            out.update(_tasks(self.job.client.get_task_stream(start=self.start), self.start, wall))
        return out


def _tasks(stream: list[dict[str, Any]], start: float, wall: float) -> dict[str, Any]:
    """From Dask's task stream: how many tasks, their seconds (sum, longest), when the first began and the
    last ended (the time before and after them is the client's: planning, gathering, combining), and each
    worker's busy seconds (the spread between the workers is the imbalance)."""
    spans = [
        (t["worker"], s["start"] - start, s["stop"] - start)
        for t in stream
        for s in t.get("startstops", ())
        if s["action"] == "compute"
    ]
    if not spans:
        return {}
    busy: dict[str, float] = {}
    for w, a, b in spans:
        busy[w] = busy.get(w, 0.0) + b - a
    first, last = min(a for _, a, _ in spans), max(b for _, _, b in spans)
    return {
        "tasks": len(spans),
        "task_seconds": round(sum(b - a for _, a, b in spans), 2),
        "longest_task": round(max(b - a for _, a, b in spans), 2),
        "before_tasks": round(first, 2),
        "after_tasks": round(wall - last, 2),
        "worker_busy": sorted((round(v, 2) for v in busy.values()), reverse=True),
    }


def _recount(job: Job, lake: Lake) -> Any:
    first, last = months.day_bounds(MONTH)
    records = {what: (table, what != "basic") for what, table in figures.RECORD_TABLES.items()}
    return distrib.counts(
        job,
        lake=lake,
        month=MONTH,
        first=first,
        last=last,
        forms=quality_units.realtime_tables(),
        activity=figures.ACTIVITY,
        records=records,
        pending=[],
    )


def _rebuild(job: Job, lake: Lake) -> Any:
    return rebuild.compute(job, lake=lake, months=[MONTH], pending=[])


JOBS = {"recount": _recount, "rebuild": _rebuild}


def _pin(core: int) -> None:
    """Every thread of this (worker) process on one core, and the threads it starts later too."""
    for tid in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(tid), {core})


def pin_workers(c: Client) -> None:
    """Each worker process of the cluster on a core of its own (worker k on core k): one worker is one core,
    its libraries' helper threads (PyArrow's I/O pool, Polars') included."""
    cores = sorted(os.sched_getaffinity(0))
    for k, address in enumerate(sorted(c.scheduler_info(n_workers=-1)["workers"])):
        c.run(_pin, cores[k % len(cores)], workers=[address])


def _warm_synth(work: str) -> None:
    """A tiny synth run in this (worker) process: the job's modules imported and their tables built."""
    from rhip.synth import service as synth

    out = Path(work) / f"warm-{os.getpid()}"
    synth.generate(month="2025-03", scale=0.0005, seed=1, out=out, institutions=["H005"])
    shutil.rmtree(out, ignore_errors=True)


def _synth_cold() -> None:
    """Forget the residents a worker kept from an earlier run of the same seed (each run makes its own)."""
    from rhip.synth import service as synth

    synth._population.cache_clear()


def synth_speedup(scale: float, work: Path, clients: dict[int, Client], repeat: int) -> dict[str, Any]:
    """`rhip synth` in one process, then on the warmed clusters of 1 and 2 workers, `repeat` rounds:
    seconds (medians), the median of the rounds' speed-ups, same bytes in every run."""
    from rhip.synth import service as synth

    _warm_synth(str(work))
    for c in clients.values():
        c.run(_warm_synth, str(work))
    took: dict[int, list[float]] = {0: [], 1: [], 2: []}
    manifests: set[bytes] = set()
    rows = 0
    for _ in range(repeat):
        for workers in (0, 1, 2):
            out = work / f"synth-{workers}"
            c = clients.get(workers)
            if c is not None:
                c.run(_synth_cold)
            t0 = time.perf_counter()
            got = synth.generate(month="2025-03", scale=scale, seed=42, out=out, job=Job(c))
            took[workers].append(time.perf_counter() - t0)
            rows = got.rows
            manifests.add((out / "manifest.json").read_bytes())
            print(
                f"synth    {workers or 'in-process'} worker(s): {took[workers][-1]:6.2f} s, "
                f"{rows / took[workers][-1] / max(workers, 1):,.0f} rows/s per worker (load {_load()})",
                flush=True,
            )
            shutil.rmtree(out, ignore_errors=True)
    assert len(manifests) == 1, "synth output differs between the runs (in-process, 1 and 2 workers)"
    ratios = [a / b for a, b in zip(took[1], took[2], strict=True)]
    speedup = statistics.median(ratios)
    med = {w: statistics.median(t) for w, t in took.items()}
    print(
        f"synth: speed-up ×{speedup:.2f} with 2 workers (median of {_ratios(ratios)}; target ×1.6), "
        "the same bytes in every run"
    )
    return {
        "scale": scale,
        "rows": rows,
        "seconds_in_process": round(med[0], 2),
        "seconds_1_worker": round(med[1], 2),
        "seconds_2_workers": round(med[2], 2),
        "speedup_2_workers": round(speedup, 2),
        "speedups": [round(r, 3) for r in ratios],
        "rows_per_second_per_worker_1": round(rows / med[1]),
        "rows_per_second_per_worker_2": round(rows / med[2] / 2),
        "same_bytes": True,
        "load_after": _load(),
    }


def _ratios(ratios: list[float]) -> str:
    return " ".join(f"×{r:.2f}" for r in ratios)


def _time(fn: Any, job: Job, lake: Lake) -> tuple[dict[str, Any], Any]:
    # cold: the recount's per-process result cache (keyed by Delta version) would answer a repeat
    if job.client is not None:
        job.client.run(lakeread.clear_cache)
    lakeread.clear_cache()
    usage = Usage(job)
    got = fn(job, lake)
    return usage.stop(), got


SPOILED = 0.3  # other sessions' CPU, in cores, above which a run's wall clock is not this job's alone


def _line(name: str, workers: int, rows: int, u: dict[str, Any], before: str) -> str:
    who = f"{workers} worker(s)" if workers else "in-process"
    cpu = " + ".join(f"{c:.2f}" for c in u["worker_cpu"]) or f"{u['client_cpu']:.2f}"
    spoiled = "  SPOILED by other load" if u["others_cores"] > SPOILED else ""
    if "tasks" in u:
        spoiled = (
            f"; {u['tasks']} tasks (longest {u['longest_task']:.2f} s), client before/after them "
            f"{u['before_tasks']:.2f}/{u['after_tasks']:.2f} s, busy {'/'.join(map(str, u['worker_busy']))} s"
            + spoiled
        )
    return (
        f"{name:8s} {who:12s}: {u['seconds']:6.2f} s, {rows / u['seconds'] / max(workers, 1):,.0f} records/s"
        f" per worker; CPU s {cpu} (client {u['client_cpu']:.2f}); others {u['others_cores']:.2f} cores"
        f" (load {before} → {_load()}){spoiled}"
    )


def main() -> None:
    """Write the lake, time both jobs on 1 and 2 workers, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=0.01, help="share of a full month (330 M records)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each job's speed-up is their median")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="each worker process on a core of its own (one worker = one core, helper threads included)",
    )
    parser.add_argument("--synth-scale", type=float, default=0.005, help="scale of the synth run (0: skip)")
    parser.add_argument(
        "--keep", help="folder for the lake, kept and reused by the next run of the same --scale"
    )
    args = parser.parse_args()
    keep = Path(args.keep) if args.keep else None
    work = keep or Path(tempfile.mkdtemp(prefix="rhip-scale-bench-"))
    try:
        settings = Settings(data_dir=work, secret_key="bench")
        upgrade(settings.resolved_database_url)
        db = Database.from_settings(settings)
        lake = Lake(settings.resolved_lake_dir)
        rows = int(FULL_MONTH_ROWS * args.scale)
        marker = work / "scale-records.txt"
        t0 = time.perf_counter()
        if keep is not None and marker.exists() and int(marker.read_text()) == rows:
            print(f"lake: reusing {lake.root}", flush=True)
        else:
            write_lake(lake.root, db, rows=rows)
            for name in lake.tables():
                # sorted by institution in row groups of 64 Ki rows: a task of a range of codes skips a file's
                # other row groups on their statistics (one row group per file made every task overlapping a
                # file decode all of it: at scale 0.03 a task of one code cost 40% of the whole month's)
                DeltaTable(str(lake.path(name))).optimize.z_order(
                    ["org_code"], target_size=16 << 20, writer_properties=ROW_GROUPS
                )
            marker.write_text(str(rows))
        written = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in lake.root.rglob("*.parquet"))
        print(
            f"lake: {rows:,} records, {size / 1e6:.0f} MB, ready in {written:.0f} s (load {_load()})",
            flush=True,
        )
        runs: dict[str, dict[int, list[float]]] = {name: {0: [], 1: [], 2: []} for name in JOBS}
        usages: dict[str, list[dict[str, Any]]] = {}
        loads: dict[str, list[str]] = {}
        answers: dict[str, list[Any]] = {name: [] for name in JOBS}
        with client(workers=1) as one, client(workers=2) as two:
            assert one is not None and two is not None
            clients = {1: one, 2: two}
            if args.pin:
                for c in clients.values():
                    pin_workers(c)
            for c in clients.values():
                c.get_task_stream()  # the scheduler records tasks from the first call on
            jobs = {0: Job(None), **{w: Job(c) for w, c in clients.items()}}
            for job in (jobs[1], jobs[2]):
                _recount(job, lake)  # warm-up: the workers import the jobs' modules once
                _rebuild(job, lake)
            for _ in range(args.repeat):
                for name, fn in JOBS.items():
                    for workers, job in jobs.items():
                        before = _load()
                        usage, got = _time(fn, job, lake)
                        loads.setdefault(f"{name}_{workers}", []).append(f"{before}→{_load()}")
                        usages.setdefault(f"{name}_{workers}", []).append(usage)
                        runs[name][workers].append(usage["seconds"])
                        answers[name].append(got)
                        print(_line(name, workers, rows, usage, before), flush=True)
            synth_out = (
                synth_speedup(args.synth_scale, work, clients, args.repeat) if args.synth_scale > 0 else None
            )
        results = {name: {w: statistics.median(t) for w, t in by.items()} for name, by in runs.items()}
        ratios = {name: [a / b for a, b in zip(by[1], by[2], strict=True)] for name, by in runs.items()}
        # what the ratio would be with each worker on a core of its own: the 1-worker run's worker CPU over
        # the busier worker's of the 2-worker run, plus the client's share of each (planning, combining)
        cpu_ratios = {
            name: [
                (a["worker_cpu"][0] + a["client_cpu"]) / (b["worker_cpu"][0] + b["client_cpu"])
                for a, b in zip(usages[f"{name}_1"], usages[f"{name}_2"], strict=True)
            ]
            for name in JOBS
        }
        assert all(a == answers["recount"][0] for a in answers["recount"]), "the recount differs between runs"
        first = answers["rebuild"][0]
        for got in answers["rebuild"][1:]:  # the same rows in-process, on 1 and on 2 workers
            for part in ("activity", "days", "people"):
                a, b = getattr(got, part), getattr(first, part)
                assert a.sort(a.columns).equals(b.sort(b.columns)), f"the rebuild's {part} rows differ"
        out: dict[str, Any] = {
            "scale": args.scale,
            "records": rows,
            "lake_mb": round(size / 1e6),
            "repeats": args.repeat,
            "pinned": args.pin,
            "cpus": os.cpu_count(),
            "loads": loads,
            "target_speedup_2_workers": 1.6,
            "extrapolation": "linear in workers from each measured rate per worker; a month = 330 M records",
        }
        for name, t in results.items():
            rate = {w: rows / t[w] / w for w in (1, 2)}  # records per second per worker
            speedup = statistics.median(ratios[name])
            out[name] = {
                "seconds_in_process": round(t[0], 3),
                "seconds_1_worker": round(t[1], 3),
                "seconds_2_workers": round(t[2], 3),
                "speedup_2_workers": round(speedup, 2),
                "speedups": [round(r, 3) for r in ratios[name]],
                "cpu_speedups": [round(r, 3) for r in cpu_ratios[name]],
                "runs": {w: usages[f"{name}_{w}"] for w in (0, 1, 2)},
                "records_per_second_per_worker_1": round(rate[1]),
                "records_per_second_per_worker_2": round(rate[2]),
                # from each measured rate: the 1-worker one is the optimistic bound, the 2-worker one (the two
                # workers sharing this machine's cores with every other session) the pessimistic one
                "month_hours": {
                    f"{n}_workers_rate_{w}": round(FULL_MONTH_ROWS / rate[w] / n / 3600, 3)
                    for n in (8, 32)
                    for w in (1, 2)
                },
                "year_hours": {
                    f"{n}_workers_rate_{w}": round(YEAR_ROWS / rate[w] / n / 3600, 2)
                    for n in (8, 32)
                    for w in (1, 2)
                },
            }
            m, y = out[name]["month_hours"], out[name]["year_hours"]
            print(
                f"{name}: speed-up ×{speedup:.2f} with 2 workers (median of {_ratios(ratios[name])}; "
                f"target ×1.6, load above); by CPU ×{statistics.median(cpu_ratios[name]):.2f}; "
                f"in-process {t[0]:.2f} s; "
                f"a full month on 8 / 32 workers {m['8_workers_rate_1']}–{m['8_workers_rate_2']} / "
                f"{m['32_workers_rate_1']}–{m['32_workers_rate_2']} h, "
                f"a year {y['8_workers_rate_1']}–{y['8_workers_rate_2']} / "
                f"{y['32_workers_rate_1']}–{y['32_workers_rate_2']} h"
            )
        if synth_out is not None:
            out["synth"] = synth_out
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / "scale.json"
        path.write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")
        print(f"written {path}")
        db.dispose()
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
