"""`rhip quality …`: import the statistics report (卫统), print a month's figures, declare tables."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from rhip.config import Settings
from rhip.errors import RhipError

if TYPE_CHECKING:
    from rhip.db.engine import Database

app = typer.Typer(
    help="Data quality (质控): statistics report, monthly figures, declarations", no_args_is_help=True
)
console = Console()


def _db() -> tuple[Settings, Database]:
    # the database and lake modules load only when a command runs, so `rhip --help` stays fast
    from rhip.db.engine import Database, upgrade

    settings = Settings()
    upgrade(settings.resolved_database_url)
    return settings, Database.from_settings(settings)


def _fail(exc: RhipError) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]错误：[/]{exc.detail}")
    return typer.Exit(2)


@app.command("import-statistics")
def import_statistics(
    file: Annotated[Path, typer.Argument(help="CSV: month, institution (code or name), visits, discharges")],
    month: Annotated[str | None, typer.Option(help="YYYY-MM when the file has no month column")] = None,
) -> None:
    """Import the official monthly statistics report (卫统) the upload rate compares against."""
    from rhip.quality import service

    _settings, db = _db()
    try:
        with db.session() as s, s.begin():
            n = service.import_statistics_file(s, path=file, month=month)
    except RhipError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    console.print(f"已导入卫统数据 {n} 家机构（{file.name}）")


@app.command("import-usage")
def import_usage(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV: month, institution, browser_deployed, browser_calls, reminder_deployed, reminder_calls"
        ),
    ],
    month: Annotated[str | None, typer.Option(help="YYYY-MM when the file has no month column")] = None,
) -> None:
    """Import the reported 健康档案浏览器 and 智能提示 deployments and calls of a month."""
    from rhip.quality import usage

    _settings, db = _db()
    try:
        with db.session() as s, s.begin():
            n = usage.import_usage_file(s, path=file, month=month)
    except RhipError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    console.print(f"已导入健康档案浏览器与智能提示使用情况 {n} 家机构（{file.name}）")


@app.command("figures")
def figures(
    month: Annotated[str, typer.Option(help="Month, YYYY-MM")],
    kind: Annotated[str, typer.Option(help="district or hospital")] = "hospital",
) -> None:
    """Print a month's data-collection table (区 or 医院)."""
    from rhip import months
    from rhip.lake.store import Lake
    from rhip.quality import figures as quality_figures, layouts

    settings, db = _db()
    try:
        with db.session() as s, s.begin():
            fig = quality_figures.month_figures(s, lake=Lake(settings.resolved_lake_dir), month=month)
    except RhipError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    label = "区" if kind == "district" else "医院"
    out = Table(title=f"{months.label(month)}数据采集情况（{label}）")
    for c in layouts.COLUMNS_2025:
        out.add_column(
            (c.get("group", "") + c["title"]), justify="left" if c.get("kind") is None else "right"
        )
    for u in fig.of_kind(kind):
        out.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in layouts.collection_row(u)))
    console.print(out)
    console.print(
        f"（截止 {months.label(month)}，区及医院累计校验入库数据 {layouts.cumulative_text(fig.cumulative)}）"
    )


@app.command("verify")
def verify(month: Annotated[str, typer.Option(help="Month, YYYY-MM")]) -> None:
    """Recount the month's figures from the lake and compare them with intake's rollups."""
    from rhip import months
    from rhip.lake.store import Lake
    from rhip.quality.verify import differences

    settings, db = _db()
    try:
        with db.session() as s, s.begin():
            diff = differences(s, lake=Lake(settings.resolved_lake_dir), month=month)
    except RhipError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    if not diff:
        console.print(f"{months.label(month)}：汇总表与数据湖重新计数一致")
        return
    out = Table(title=f"{months.label(month)}：汇总表与数据湖重新计数不一致（{len(diff)} 项）")
    for title in ("单位代码", "单位", "指标", "汇总表", "重新计数"):
        out.add_column(title)
    for d in diff:
        out.add_row(d.unit, d.name, d.figure, str(d.rollups), str(d.recount))
    console.print(out)
    raise typer.Exit(1)


@app.command("declare")
def declare(
    institution: Annotated[str, typer.Option(help="机构代码")],
    tables: Annotated[list[str], typer.Argument(help="Catalogue tables the institution produces")],
) -> None:
    """Record the tables an institution declares it uploads (声明上传表)."""
    from rhip.quality import service

    _settings, db = _db()
    try:
        with db.session() as s, s.begin():
            got = service.declare(s, institution_code=institution, tables=tables, declared_by="cli")
    except RhipError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    console.print(f"{institution} 声明上传 {len(got)} 张表")
