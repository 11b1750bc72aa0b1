"""`rhip mch …`: the reminder job, a month's district table, a report year's indicators."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from rhip.config import Settings
from rhip.errors import RhipError

if TYPE_CHECKING:
    from rhip.db.engine import Database

app = typer.Typer(
    help="Maternal and child health (妇幼保健): reminders, usage table, indicators", no_args_is_help=True
)
console = Console()


def _db() -> Database:
    from rhip.db.engine import Database, upgrade

    settings = Settings()
    upgrade(settings.resolved_database_url)
    return Database.from_settings(settings)


def _fail(exc: RhipError) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]错误：[/]{exc.detail}")
    return typer.Exit(2)


@app.command("remind")
def remind(
    on: Annotated[str | None, typer.Option(help="Day to run for, YYYY-MM-DD (default: today)")] = None,
    lead_days: Annotated[int, typer.Option(help="Remind this many days before the due date")] = 3,
) -> None:
    """Write follow-up reminders for orange, red and purple cases due soon or overdue."""
    from rhip.mch import jobs

    db = _db()
    try:
        with db.session() as s, s.begin():
            result = jobs.remind(s, on=date.fromisoformat(on) if on else None, lead_days=lead_days)
    except (RhipError, ValueError) as exc:
        raise _fail(
            exc if isinstance(exc, RhipError) else RhipError(f"日期格式应为 YYYY-MM-DD：{on}")
        ) from None
    finally:
        db.dispose()
    console.print(f"提醒：即将到期 {result.due} 条，逾期 {result.overdue} 条，已提醒过 {result.already} 条")


@app.command("usage")
def usage(month: Annotated[str, typer.Option(help="Month, YYYY-MM")]) -> None:
    """Print 妇幼保健信息系统各区使用情况 for a month."""
    from rhip.mch import stats

    db = _db()
    try:
        with db.session() as s, s.begin():
            table = stats.usage_table(s, month=month)
    except RhipError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    out = Table(title=table["title"])
    for c in table["columns"]:
        out.add_column(c)
    for row in table["rows"]:
        out.add_row(*(str(x) for x in row))
    console.print(out)
    console.print(table["note"])


@app.command("indicators")
def indicators_cmd(
    year: Annotated[int, typer.Option(help="Report year, named by its end (October–September)")],
    district: Annotated[str | None, typer.Option(help="District code, e.g. 320102")] = None,
) -> None:
    """Print a report year's MCH indicators."""
    from rhip.mch import indicators

    db = _db()
    try:
        with db.session() as s, s.begin():
            rep = indicators.report(s, year=year, district=district)
    except RhipError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    out = Table(title=f"{year} 年度妇幼健康指标（{rep.start} 至 {rep.end}）· {rep.total.name}")
    for c in ("指标", "分子", "分母", "数值"):
        out.add_column(c)
    for d in indicators.DEFINITIONS:
        v = rep.total.value(d)
        out.add_row(
            d.name,
            str(rep.total.counts[d.numerator]),
            str(rep.total.counts[d.denominator]),
            "—" if v is None else f"{v:.2f}",
        )
    console.print(out)
