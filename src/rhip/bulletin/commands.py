"""`rhip bulletin --month YYYY-MM --out DIR`: build the issue, write HTML, PDF and XLSX (progress bar)."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rhip import months
from rhip.bulletin import providers, render, service
from rhip.bulletin.sections import Bulletin
from rhip.config import Settings
from rhip.db.engine import Database
from rhip.lake.store import Lake


def run(
    *,
    settings: Settings,
    month: str,
    out: Path,
    console: Console,
    formats: tuple[str, ...] = render.FORMATS,
    layout: str | None = None,
) -> tuple[Bulletin, dict[str, Path], float]:
    """Build and write one issue; returns it, the written paths and the seconds taken."""
    months.check(month)
    if layout is not None and layout not in service.LAYOUTS:
        from rhip.errors import Invalid

        raise Invalid(f"未知的表格版式：{layout}（可选：{'、'.join(service.LAYOUTS)}）", code="bad-layout")
    started = time.perf_counter()
    if "pdf" in formats:
        render.preload()
    modules = providers.provider_modules()
    db = Database.from_settings(settings)
    lake = Lake.from_settings(settings)
    try:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("汇总栏目", total=len(modules) + len(formats))

            def step(name: str) -> None:
                bar.update(task, description=f"汇总栏目：{name}")

            with db.session() as s, s.begin():
                bulletin = service.build(
                    session=s, lake=lake, month=month, modules=modules, progress=step, layout=layout
                )
            bar.update(task, completed=len(modules))
            paths: dict[str, Path] = {}
            for fmt in formats:
                bar.update(task, description=f"生成 {fmt.upper()}")
                paths.update(render.write(bulletin, out, formats=(fmt,)))
                bar.advance(task)
            bar.update(task, description="完成")
    finally:
        db.dispose()
    elapsed = time.perf_counter() - started
    for e in bulletin.errors:
        console.print(f"[yellow]栏目暂缺：[/]{e}")
    return bulletin, paths, elapsed
