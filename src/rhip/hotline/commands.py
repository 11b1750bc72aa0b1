"""`rhip hotline …`: import call-detail records and 12345 orders, run the SLA job, print a month."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from rhip.config import Settings
from rhip.errors import RhipError

if TYPE_CHECKING:
    from rich.progress import TaskID

    from rhip.db.engine import Database

app = typer.Typer(help="12320 hotline: calls, work orders, SLA, monthly figures", no_args_is_help=True)
console = Console()
SYSTEM = "cli"


def _db() -> Database:
    from rhip.db.engine import Database, upgrade
    from rhip.registry import service as registry

    settings = Settings()
    upgrade(settings.resolved_database_url)
    db = Database.from_settings(settings)
    with db.session() as s, s.begin():
        registry.ensure_loaded(s)  # orders name their institutions
    return db


def _fail(exc: RhipError) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]错误：[/]{exc.detail}")
    return typer.Exit(2)


def _errors(errors: list[object]) -> None:
    if not errors:
        return
    table = Table(title=f"被拒绝的行（{len(errors)}）")
    for col in ("行", "字段", "原因"):
        table.add_column(col)
    for e in errors[:50]:
        table.add_row(str(e.line), e.field, e.message)  # type: ignore[attr-defined]
    console.print(table)


@app.command("import-cdr")
def import_cdr(file: Annotated[Path, typer.Argument(help="FreeSWITCH cdr_csv file (Master.csv)")]) -> None:
    """Import call-detail records; bad lines are listed with their numbers."""
    from rhip.hotline import service as svc
    from rhip.security.roles import Role
    from rhip.security.service import Principal

    db = _db()
    try:
        with db.session() as s, s.begin():
            r = svc.import_cdr(s, data=file.read_bytes(), actor=Principal(SYSTEM, Role.agent))
    except RhipError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    console.print(
        f"话单 {r.lines} 行：导入 {r.imported}，已有 {r.duplicates}，"
        f"生成工单 {r.orders}，错误 {len(r.errors)} 行"
    )
    _errors(list(r.errors))


@app.command("import-orders")
def import_orders(
    file: Annotated[Path, typer.Argument(help="CSV: 工单编号,受理时间,办理期限,标题,内容,承办机构代码")],
    source: Annotated[str, typer.Option(help="wo_city_12345 or wo_province_12345")] = "wo_city_12345",
) -> None:
    """Import 12345 work orders from a file."""
    from rhip.hotline import service as svc
    from rhip.security.roles import Role
    from rhip.security.service import Principal

    db = _db()
    try:
        with db.session() as s, s.begin():
            r = svc.import_orders(
                s, source=source, data=file.read_bytes(), actor=Principal(SYSTEM, Role.agent)
            )
    except RhipError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    console.print(f"工单 {r.lines} 行：新建 {r.created}，已有 {r.duplicates}，错误 {len(r.errors)} 行")
    _errors(list(r.errors))


@app.command("sla")
def sla(
    every: Annotated[float, typer.Option(help="Run every N seconds (0: once)")] = 0,
    runs: Annotated[int, typer.Option(help="Stop after N runs (0: forever when --every is set)")] = 0,
    chunk: Annotated[int, typer.Option(min=100, help="Orders per transaction")] = 20_000,
) -> None:
    """The SLA job: warnings at 50% / 75% of each open order's limit, breach at 100% (in chunks)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from rhip.hotline import jobs, sla as sla_rules

    db = _db()

    def report(changed: dict[str, int]) -> None:
        console.print(
            f"时限检查：超时 {changed['breach']}，预警 {changed['warn75']}，过半 {changed['warn50']} 件"
        )

    try:
        if every > 0:
            jobs.run_every(db, seconds=every, report=report, runs=runs)
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            tasks: dict[str, TaskID] = {}

            def step(level: str, done: int, total: int) -> None:
                if level not in tasks:
                    tasks[level] = bar.add_task(f"时限检查 · {sla_rules.LEVEL_LABELS[level]}", total=total)
                bar.update(tasks[level], completed=done, total=total)

            changed = jobs.run_once(db, chunk=chunk, progress=step)
        report(changed)
    finally:
        db.dispose()


@app.command("month")
def month(month: Annotated[str, typer.Option(help="YYYY-MM")]) -> None:
    """Print the month's bulletin paragraph (and the province and assistant sentences)."""
    from rhip.hotline import stats

    db = _db()
    try:
        with db.session() as s, s.begin():
            fig = stats.month_figures(s, month=month)
    except RhipError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    for text in (stats.paragraph(fig), stats.province_sentence(fig), stats.assistant_sentence(fig)):
        if text:
            console.print(text)
