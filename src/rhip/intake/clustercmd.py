"""The cluster jobs behind `rhip intake rebuild-rollups` and `rhip intake compact --workers/--scheduler`:
open the job's cluster, run it with a progress bar, and (for the rebuild) write the result in one
transaction. `run` is the demo's lake-job step (the month's rollups rebuilt and checked, nothing replaced)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.intake import compactjob, rebuild, service
from rhip.lake.cluster import Job, client
from rhip.lake.store import Lake


@contextmanager
def _job(title: str, *, scheduler: str | None, workers: int | None, console: Console | None) -> Iterator[Job]:
    """A job on its cluster with a progress bar of its tasks."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with (
        Progress(*columns, console=console or Console(quiet=True), disable=console is None) as bar,
        client(scheduler=scheduler, workers=workers) as c,
    ):
        task = bar.add_task(title, total=None)
        yield Job(c, lambda done, total: bar.update(task, completed=done, total=total))


def _recover(db: Database, lake: Lake, console: Console | None) -> list[str]:
    # a pending batch whose process is gone is aborted first: its rows must be neither counted nor merged
    with db.session() as s, s.begin():
        recovered = service.recover(s, lake=lake)
    if recovered and console:
        console.print(f"已清理 {len(recovered)} 个中断批次：{'、'.join(recovered)}")
    return recovered


def rebuild_rollups(
    settings: Settings,
    *,
    month: str | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    console: Console | None = None,
) -> rebuild.Rebuilt:
    """Rebuild intake's rollups of a month (None: of every month) from the lake; the old rows are replaced
    in one transaction only after every task has succeeded."""
    lake = Lake.from_settings(settings)
    db = Database.from_settings(settings)
    try:
        _recover(db, lake, console)
        with db.session() as s, s.begin():
            pending = rebuild.pending_batches(s)
        t0 = time.perf_counter()
        with _job("重建汇总表", scheduler=scheduler, workers=workers, console=console) as job:
            got = rebuild.compute(job, lake=lake, months=[month] if month else None, pending=pending)
        with db.session() as s, s.begin():
            rebuild.replace(s, got)
    finally:
        db.dispose()
    if console:
        out = Table(title=f"汇总表重建（{month or '全部月份'}，{time.perf_counter() - t0:.1f} 秒）")
        for col in ("汇总表", "行数"):
            out.add_column(col, justify="right" if col == "行数" else "left")
        out.add_row("intake_activity", f"{len(got.activity):,}")
        out.add_row("intake_realtime_days", f"{len(got.days):,}")
        out.add_row("intake_people_months", f"{len(got.people):,}")
        console.print(out)
    return got


def compact(
    settings: Settings,
    *,
    month: str | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    console: Console | None = None,
) -> dict[str, tuple[int, int]]:
    """Compact the intake lake tables' crowded partitions (of `month` only, when given) on a cluster."""
    lake = Lake.from_settings(settings)
    db = Database.from_settings(settings)
    try:
        _recover(db, lake, console)
    finally:
        db.dispose()
    t0 = time.perf_counter()
    with _job("合并小文件", scheduler=scheduler, workers=workers, console=console) as job:
        done = compactjob.compact(job, lake=lake, month=month)
    if console:
        print_compaction(console, done, time.perf_counter() - t0)
    return done


def print_compaction(console: Console, done: dict[str, tuple[int, int]], seconds: float) -> None:
    """The files each table had before and after a compaction."""
    out = Table(title=f"数据湖小文件合并（{seconds:.1f} 秒）")
    for col in ("数据表", "合并前文件", "合并后文件"):
        out.add_column(col, justify="right" if col != "数据表" else "left")
    for name, (removed, added) in sorted(done.items()):
        out.add_row(name, f"{removed:,}", f"{added:,}")
    console.print(out if done else "没有需要合并的小文件")


def check_rollups(
    settings: Settings, *, month: str | None, scheduler: str | None = None, workers: int | None = None
) -> tuple[rebuild.Rebuilt, dict[str, int], float]:
    """The month's rollups rebuilt from the lake as a lake job and compared with the ones kept (nothing
    replaced): the rebuilt rows, the differing rows per table, the seconds it took."""
    lake = Lake.from_settings(settings)
    db = Database.from_settings(settings)
    t0 = time.perf_counter()
    try:
        with db.session() as s, s.begin():
            pending = rebuild.pending_batches(s)
        with client(scheduler=scheduler, workers=workers) as c:
            got = rebuild.compute(Job(c), lake=lake, months=[month] if month else None, pending=pending)
        with db.session() as s, s.begin():
            differ = rebuild.mismatches(s, got)
    finally:
        db.dispose()
    return got, differ, time.perf_counter() - t0


def run(*, settings: Settings, synth_dir: Path, console: Console) -> list[tuple[str, str]]:
    """Demo step: one lake job — the month's rollups rebuilt from the lake and compared with the ones the
    commit path kept — in this process, or on `RHIP_DASK_WORKERS` local processes / `RHIP_DASK_SCHEDULER`."""
    manifest = json.loads((synth_dir / "manifest.json").read_text(encoding="utf-8"))
    month = str(manifest["month"])
    where = (
        f"集群 {settings.dask_scheduler}"
        if settings.dask_scheduler
        else f"{settings.dask_workers} 个工作进程"
        if settings.dask_workers
        else "本进程"
    )
    got, differ, seconds = check_rollups(
        settings, month=month, scheduler=settings.dask_scheduler, workers=settings.dask_workers
    )
    bad = {t: n for t, n in differ.items() if n}
    verdict = (
        "与提交时维护的汇总表一致"
        if not bad
        else "不一致：" + "、".join(f"{t} {n} 行" for t, n in bad.items())
    )
    console.print(f"数据湖作业：{month} 汇总表重建核对（{where}），{seconds:.1f} 秒")
    return [
        (
            "数据湖作业",
            f"{month} 汇总表从数据湖重建（{where}）：{got.activity.height:,} 行业务量、"
            f"{got.days.height:,} 行上传天数、{got.people.height:,} 行人员月份，{verdict}；"
            f"用时 {seconds:.1f} 秒",
        )
    ]
