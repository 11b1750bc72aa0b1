# mypy: disable-error-code="no-untyped-call"
"""Running the lake's batch jobs on Dask distributed: a client for the job, tasks mapped over it, and the
check that a Delta table is one every reader of the cluster can read.

Three ways to run a job, chosen by the entry point: `RHIP_DASK_SCHEDULER` or `--scheduler tcp://host:8786`
(an existing cluster: `dask scheduler` and `dask worker` processes on any machines that see the lake),
`--workers N` (a local cluster of N single-threaded worker processes, for this job only) or neither (the
embedded default: every task runs in this process, one after the other, as before the cluster existed).
A job's tasks are plain module-level functions of picklable arguments and return small results (counts,
rollup rows); they read the lake themselves, so nothing large crosses the network.
"""

from __future__ import annotations

import os
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from deltalake import DeltaTable

from rhip.errors import Invalid, RhipError, Unavailable
from rhip.lake.store import Lake

if TYPE_CHECKING:
    from distributed import Client

T = TypeVar("T")

# what deltalake (Rust) and DuckDB's and PyArrow's Parquet readers on the workers all read: protocol
# reader version 1, or 3 with no reader feature beyond these (deletion vectors and column mapping would
# need the Delta kernel's own scan on every worker, which dask-deltatable and DuckDB do not do)
READER_FEATURES: frozenset[str] = frozenset({"timestampNtz", "v2Checkpoint", "vacuumProtocolCheck"})
TASKS_PER_WORKER = 4  # smaller tasks balance better and lose less when a worker dies
OrgRange = tuple[str | None, str | None]  # institution codes from the first (inclusive) to the second
TASK_RETRIES = 2  # a task whose worker died is re-run this many times before the job fails
# a local cluster's worker processes: one thread each for the task and for every library pool under it
# (DuckDB through RHIP_TASK_THREADS, Polars, PyArrow's CPU pool through OMP_NUM_THREADS as Dask's own
# pre-spawn environment sets it, PyArrow's I/O pool, 8 threads by default, through ARROW_IO_THREADS):
# one worker is then one core, so a job on N workers is N times one worker's work, and one worker does not
# borrow an idle core through its libraries' helper threads (which N workers on N cores cannot)
WORKER_ENV: dict[str, str] = {
    "RHIP_TASK_THREADS": "1",
    "POLARS_MAX_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "ARROW_IO_THREADS": "1",
}


class ClusterError(Unavailable):
    """The cluster could not run the job (scheduler unreachable, a task failing after its retries)."""

    code = "cluster-unavailable"


def check_readable(dt: DeltaTable, name: str) -> None:
    """Refuse a Delta table whose protocol needs reader features the cluster's readers lack."""
    proto = dt.protocol()
    features = set(proto.reader_features or ())
    mode = dt.metadata().configuration.get("delta.columnMapping.mode", "none")
    beyond = sorted(features - READER_FEATURES)
    if proto.min_reader_version > 3 or beyond or mode != "none":
        what = "、".join(beyond or ([f"columnMapping={mode}"] if mode != "none" else [])) or (
            f"readerVersion={proto.min_reader_version}"
        )
        raise Invalid(
            f"数据湖表 {name} 使用了集群读取不支持的 Delta 特性（{what}）；"
            "请先用 deltalake 重写该表（不启用删除向量与列映射）",
            code="unsupported-delta-feature",
        )


def tables_of(lake: Lake, names: list[str]) -> list[DeltaTable]:
    """The lake tables of these names that exist, each checked readable by the cluster."""
    out = []
    for name in names:
        if lake.exists(name):
            dt = lake.dataset(name)
            check_readable(dt, name)
            out.append(dt)
    return out


def dataframe(lake: Lake, table: str, *, columns: list[str] | None = None) -> Any:
    """A lake table as a Dask dataframe through dask-deltatable (ad-hoc analysis on the cluster: computed on
    the active client's workers), with the lake's storage options; refused like any job's table."""
    import dask_deltatable

    check_readable(lake.dataset(table), table)
    if lake.remote:
        # dask-deltatable reads object storage through fsspec's s3fs, which is not a dependency here
        raise Invalid(
            "对象存储上的数据湖表暂不能用 dask-deltatable 读取（需要 s3fs）；集群作业照常可用",
            code="dask-deltatable-s3",
        )
    with lake.guard():
        return dask_deltatable.read_deltalake(
            lake.uri_of(table), columns=columns, storage_options=lake.storage_options or None
        )


def org_ranges(tables: list[DeltaTable], parts: int, *, codes: Iterable[str] = ()) -> list[OrgRange]:
    """At most `parts` ranges of institution codes covering every code, of about equal rows in `tables`
    (cut between the first codes of their files, from the Delta log's statistics: an upload batch is one
    institution's, so a range's task opens only its institutions' files; `codes`, the registry's, are the
    places a file of several institutions may be cut too)."""
    return [r for r, _rows in weighted_ranges(tables, parts, inside_files=True, codes=codes)]


def weighted_ranges(
    tables: list[DeltaTable], parts: int, *, inside_files: bool = False, codes: Iterable[str] = ()
) -> list[tuple[OrgRange, int]]:
    """`org_ranges` with each range's rows (from the same statistics: a file counted at its first code).

    Without `inside_files` a range is only cut at a file's first code, never inside a file: a file of
    several institutions (as a compaction sorted by institution writes) is often one row group, and a
    reader that prunes by row group (a PyArrow dataset) would decode all of it in both tasks. DuckDB skips
    the other institutions' rows of a sorted row group cheaply, so the recount also cuts at files' last codes.
    """
    weight: dict[str, float] = {}
    files: list[tuple[str, str, int]] = []
    for dt in tables:
        actions = dt.get_add_actions(flatten=True)
        if "min.org_code" not in actions.column_names:
            continue
        counts = actions.column("num_records").to_pylist()
        lows, highs = actions.column("min.org_code").to_pylist(), actions.column("max.org_code").to_pylist()
        for lo, hi, n in zip(lows, highs, counts, strict=True):
            if lo is not None:
                weight[str(lo)] = weight.get(str(lo), 0) + int(n or 0)
                files.append((str(lo), str(hi if hi is not None else lo), int(n or 0)))
            if hi is not None and inside_files:
                weight.setdefault(str(hi), 0)
    if inside_files and weight:
        # a sorted file of several institutions: its rows spread evenly over the known codes within its range
        # (the registry's and any file's bounds: a guess, but one that lets a large file be cut; counted at
        # its first code, a compacted table's first file held 89% of the rows in the first of only 4 ranges at
        # the benchmark's scale 0.03, and 2 workers waited on that task)
        known = sorted({*weight, *codes})
        weight = dict.fromkeys(known, 0.0)
        for lo, hi, n in files:
            inside = known[bisect_left(known, lo) : bisect_right(known, hi)]
            for code in inside:
                weight[code] += n / len(inside)
        weight = {c: w for c, w in weight.items() if w > 0}
    codes = sorted(weight)
    if parts <= 1 or len(codes) <= 1:
        return [((None, None), round(sum(weight.values())))]
    sizes = {c: max(1, weight[c]) for c in codes}
    total = sum(sizes.values())
    cuts: list[str] = []
    rows = [0.0]
    acc = 0.0
    for code in codes:
        # a cut before `code` when the next share of the total ends in its first half
        if acc and len(cuts) < parts - 1 and acc + sizes[code] / 2 >= total * (len(cuts) + 1) / parts:
            cuts.append(code)
            rows.append(0.0)
        acc += sizes[code]
        rows[-1] += weight[code]
    bounds: list[str | None] = [None, *cuts, None]
    return [((bounds[i], bounds[i + 1]), round(rows[i])) for i in range(len(bounds) - 1)]


def scheduler_address(option: str | None) -> str | None:
    """The scheduler a job should use: the `--scheduler` option, else `RHIP_DASK_SCHEDULER`, else none."""
    if option:
        return option
    from rhip.config import Settings

    return Settings().dask_scheduler


@contextmanager
def client(*, scheduler: str | None = None, workers: int | None = None) -> Iterator[Client | None]:
    """A Dask client for one job: on `scheduler`, on a local cluster of `workers` processes, or None (run
    in this process)."""
    if scheduler and workers:
        raise Invalid("--scheduler 与 --workers 只能选一个", code="cluster-options")
    if workers is not None and workers < 1:
        raise Invalid(f"--workers 必须至少为 1：{workers}", code="cluster-options")
    if not scheduler and not workers:
        yield None
        return
    from distributed import Client

    if scheduler:
        try:
            c = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"无法连接 Dask 调度器 {scheduler}：{exc}") from None
        try:
            yield c
        finally:
            c.close()
        return
    with local_client(workers or 1) as c:
        yield c


@contextmanager
def local_client(workers: int) -> Iterator[Client]:
    """A client of a new local cluster of `workers` processes, closed (with its processes) on exit."""
    import dask
    from distributed import Client, LocalCluster

    # set before each worker process is spawned, not after it (LocalCluster's `env`): a spawned process
    # re-imports the parent's main module, which imports Polars and PyArrow, and they read their thread counts
    # on import (with `env` alone a rebuild worker still ran 2 Polars threads and 1.5 cores)
    pre = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **WORKER_ENV}

    # one thread per process, and its libraries' pools too (`WORKER_ENV`): N workers use N cores and the
    # speed-up over one worker is the cluster's, not the libraries'
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ": pre}),
        LocalCluster(
            n_workers=workers,
            processes=True,
            threads_per_worker=1,
            dashboard_address=":0",
            env=dict(WORKER_ENV),
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def worker_threads() -> int | None:
    """How many threads a task's DuckDB or Polars may use (1 on a local cluster's workers; else theirs)."""
    value = os.environ.get("RHIP_TASK_THREADS")
    return int(value) if value else None


def task_threads() -> int | None:
    """`worker_threads`, with PyArrow's CPU and I/O pools sized to it in this process (a task's first step: a
    worker started with only RHIP_TASK_THREADS in its environment gets the same one core per worker)."""
    n = worker_threads()
    if n:
        import pyarrow as pa

        if pa.cpu_count() != n:
            pa.set_cpu_count(n)
        if pa.io_thread_count() != n:
            pa.set_io_thread_count(n)
    return n


@dataclass
class Job:
    """One job's way of running its tasks: on `client` (None: here, one after the other), reporting each
    finished task to `progress(done, total)` (totals grow as the job maps more tasks)."""

    client: Client | None = None
    progress: Callable[[int, int], None] | None = None
    done: int = 0
    total: int = 0

    @property
    def workers(self) -> int:
        """How many worker processes the tasks may spread over (1 in-process)."""
        if self.client is None:
            return 1
        return max(1, len(self.client.scheduler_info(n_workers=-1).get("workers", {})))

    def _tick(self) -> None:
        self.done += 1
        if self.progress:
            self.progress(self.done, self.total)

    def run(self, fn: Callable[..., T], items: Sequence[Any], **kwargs: Any) -> list[T]:
        """`fn(item, **kwargs)` for every item, on the cluster (retried when a worker dies) or here; the
        results in the items' order, whatever order they finished in."""
        self.total += len(items)
        if self.client is None:
            out = []
            for item in items:
                out.append(fn(item, **kwargs))
                self._tick()
            return out
        from distributed import as_completed

        futures = [self.client.submit(fn, item, **kwargs, retries=TASK_RETRIES, pure=False) for item in items]
        try:
            # gathered after the last task (fetching each result as it finished, `as_completed(...,
            # with_results=True)` with each future released, saved a 2.2–6.5 s tail at scale 0.3 but hung
            # twice, once in CI: the client waited for results the idle workers had finished)
            for _ in as_completed(futures):
                self._tick()
            return list(self.client.gather(futures))
        except RhipError:
            raise
        except Exception as exc:  # a task's own error, or a worker lost more often than the retries allow
            raise ClusterError(
                f"集群任务失败（{type(exc).__name__}：{exc}）；本次作业未写入任何结果"
            ) from exc
        finally:
            self.client.cancel(futures)
