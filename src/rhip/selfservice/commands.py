"""`rhip selfservice …`: register terminals, issue their keys, import a transactions file, print the
month's tables."""

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
    from rhip.security.service import Principal

app = typer.Typer(help="Self-service terminals (自助终端) and cards (开卡、电子健康卡)", no_args_is_help=True)
console = Console()


def _db() -> Database:
    from rhip.db.engine import Database, upgrade

    settings = Settings()
    upgrade(settings.resolved_database_url)
    return Database.from_settings(settings)


def _admin() -> Principal:
    from rhip.security.roles import Role
    from rhip.security.service import Principal

    return Principal(subject="cli", role=Role.admin)


def _fail(exc: RhipError) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]错误：[/]{exc.detail}")
    return typer.Exit(2)


@app.command("add-terminal")
def add_terminal(
    institution: Annotated[str, typer.Option(help="Institution code, e.g. H020")],
    code: Annotated[str | None, typer.Option(help="Terminal code (generated when omitted)")] = None,
    location: Annotated[str, typer.Option(help="Where it stands")] = "",
    key: Annotated[bool, typer.Option("--key/--no-key", help="Also issue its key (printed once)")] = True,
) -> None:
    """Register a terminal at an institution and print its key."""
    from rhip.selfservice import service as svc

    db = _db()
    try:
        with db.session() as s, s.begin():
            term = svc.create_terminal(s, institution_code=institution, code=code, location=location)
            plain = svc.issue_key(s, code=term.code, actor=_admin()) if key else None
            console.print(f"终端 {term.code}（{term.institution_code}）已登记")
            if plain:
                console.print(f"终端密钥（只显示这一次）：{plain}")
    except RhipError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="CSV (UTF-8 or GBK) with terminal_code, txn_no, kind, …")],
    institution: Annotated[str, typer.Option(help="The institution whose terminals posted the file")],
) -> None:
    """Import a file of terminal transactions; bad lines are listed with their line numbers."""
    from rhip.security.roles import Role
    from rhip.security.service import Principal
    from rhip.selfservice import service as svc

    db = _db()
    actor = Principal(subject="cli", role=Role.uploader, institution_code=institution, via="cli")
    try:
        with db.session() as s, s.begin():
            r = svc.import_csv(s, raw=file.read_bytes(), actor=actor)
    except RhipError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    console.print(f"{r.lines} 行：新增 {r.created}，重复提交 {r.replayed}，错误 {len(r.errors)}")
    for e in r.errors[:50]:
        console.print(f"  第 {e.line} 行 {e.field or ''}：{e.detail}")


@app.command("tables")
def tables(
    month: Annotated[str, typer.Option(help="Month, YYYY-MM")],
    layout: Annotated[str | None, typer.Option(help="2018 or 2020 (default: the month's era)")] = None,
) -> None:
    """Print the month's terminal table and card issuance table as the bulletin shows them."""
    from rhip.selfservice import stats

    db = _db()
    try:
        with db.session() as s:
            for section in stats.bulletin_sections(session=s, lake=None, month=month, layout=layout):
                for t in section["tables"]:
                    table = Table(title=t["title"])
                    for c in t["columns"]:
                        table.add_column(c["title"] or " ")
                    for row in t["rows"]:
                        table.add_row(*(str(x) for x in row))
                    console.print(table)
                    for note in t.get("notes", []):
                        console.print(note)
    except RhipError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
