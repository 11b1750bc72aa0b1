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
    from rhip.quality.verify import Difference

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
            fig = quality_figures.month_figures(s, lake=Lake.from_settings(settings), month=month)
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
    from rhip.lake.store import Lake
    from rhip.quality.verify import differences

    settings, db = _db()
    try:
        with db.session() as s, s.begin():
            diff = differences(s, lake=Lake.from_settings(settings), month=month)
    except RhipError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    if _print_differences(month, diff):
        raise typer.Exit(1)


def _print_differences(month: str, diff: list[Difference]) -> bool:
    """Print whether the rollups and the recount agree; True when they do not."""
    from rhip import months

    if not diff:
        console.print(f"{months.label(month)}：汇总表与数据湖重新计数一致")
        return False
    out = Table(title=f"{months.label(month)}：汇总表与数据湖重新计数不一致（{len(diff)} 项）")
    for title in ("单位代码", "单位", "指标", "汇总表", "重新计数"):
        out.add_column(title)
    for d in diff:
        out.add_row(d.unit, d.name, d.figure, str(d.rollups), str(d.recount))
    console.print(out)
    return True


@app.command("recount")
def recount(
    month: Annotated[str | None, typer.Option(help="Month, YYYY-MM")] = None,
    year: Annotated[int | None, typer.Option(help="Every month of a year, YYYY")] = None,
    workers: Annotated[int | None, typer.Option(help="Run on a local cluster of N worker processes")] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Run on a Dask cluster: tcp://host:8786 (default RHIP_DASK_SCHEDULER)")
    ] = None,
) -> None:
    """Recount a month's (or a year's) figures from the lake on a Dask cluster and compare them with the
    rollups, as `verify` does."""
    from rhip.lake.cluster import scheduler_address

    settings, db = _db()
    try:
        periods = recount_months(month=month, year=year)
        found = recount_job(
            settings, db, months_=periods, scheduler=scheduler_address(scheduler), workers=workers
        )
    except RhipError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    bad = [m for m, (_totals, diff) in found.items() if _print_differences(m, diff)]
    out = Table(title="汇总表数字（与数据湖重新计数核对）")
    for title in ("月份", "门急诊人次", "门急诊收入（元）", "出院人次", "住院收入（元）", "核对"):
        out.add_column(title, justify="right")
    for m, (totals, diff) in found.items():
        visits, visit_rev, discharges, inpatient_rev = totals
        out.add_row(
            m,
            f"{visits:,}",
            f"{visit_rev:,.2f}",
            f"{discharges:,}",
            f"{inpatient_rev:,.2f}",
            "一致" if not diff else f"{len(diff)} 项不一致",
        )
    console.print(out)
    if bad:
        raise typer.Exit(1)


def recount_months(*, month: str | None, year: int | None) -> list[str]:
    """The months a recount covers: one month, or the twelve of a year."""
    from rhip import months
    from rhip.errors import Invalid

    if (month is None) == (year is None):
        raise Invalid("请给出 --month 或 --year 之一", code="recount-period")
    if month is not None:
        months.check(month)
        return [month]
    assert year is not None
    if not 2000 <= year <= 2100:
        raise Invalid(f"年份超出范围：{year}", code="recount-period")
    return [f"{year:04d}-{m:02d}" for m in range(1, 13)]


def recount_job(
    settings: Settings,
    db: Database,
    *,
    months_: list[str],
    scheduler: str | None = None,
    workers: int | None = None,
    show: Console | None = None,
) -> dict[str, tuple[tuple[int, float, int, float], list[Difference]]]:
    """Per month: the rollups' totals (visits, their revenue, discharges, theirs) and every difference from
    the recount on the cluster (a local one of `workers` processes, `scheduler`'s, or this process)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from rhip.lake.cluster import Job, client
    from rhip.lake.store import Lake
    from rhip.quality.figures import month_figures
    from rhip.quality.verify import differences

    lake = Lake.from_settings(settings)
    out: dict[str, tuple[tuple[int, float, int, float], list[Difference]]] = {}
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with (
        Progress(*columns, console=show or console, transient=False) as bar,
        client(scheduler=scheduler, workers=workers) as c,
    ):
        task = bar.add_task("重新计数", total=None)
        job = Job(c, lambda done, total: bar.update(task, completed=done, total=total))
        for m in months_:
            bar.update(task, description=f"重新计数 {m}")
            with db.session() as s, s.begin():
                diff = differences(s, lake=lake, month=m, job=job)
                fig = month_figures(s, lake=lake, month=m)
            out[m] = (
                (
                    sum(u.visits for u in fig.units),
                    round(sum(u.visit_revenue for u in fig.units), 2),
                    sum(u.discharges for u in fig.units),
                    round(sum(u.inpatient_revenue for u in fig.units), 2),
                ),
                diff,
            )
    return out


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
