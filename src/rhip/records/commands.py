"""`rhip records build` (absorb intake's committed batches into the serving store) and `rhip audit verify`
(walk the record-access log's hash chain and report the first broken link)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console

from rhip.config import Settings

if TYPE_CHECKING:
    from rhip.db.engine import Database

app = typer.Typer(help="The shared health record (健康档案)", no_args_is_help=True)
audit_app = typer.Typer(help="The record-access audit log", no_args_is_help=True)
console = Console()


def _db() -> tuple[Settings, Database]:
    from rhip.db.engine import Database, upgrade

    settings = Settings()
    upgrade(settings.resolved_database_url)
    return settings, Database.from_settings(settings)


@app.command("build")
def build() -> None:
    """Absorb every committed intake batch not yet in the serving store."""
    from rhip.lake.store import Lake
    from rhip.records import demo

    settings, db = _db()
    try:
        n = demo.build(db, Lake.from_settings(settings), console)
    finally:
        db.dispose()
    console.print(f"健康档案：写入 {n:,} 条")


@audit_app.command("verify")
def verify() -> None:
    """Check the hash chain of the record-access log; exit 1 at the first broken link."""
    from rhip.records import audit

    _settings, db = _db()
    try:
        with db.session() as s, s.begin():
            v = audit.verify(s)
    finally:
        db.dispose()
    if v.broken_at is None:
        console.print(f"审计链完好：已校验 {v.checked:,} 条记录")
        return
    Console(stderr=True).print(
        f"[bold red]审计链断开[/]：第 {v.broken_at} 条，{v.reason}（此前 {v.checked:,} 条完好）"
    )
    raise typer.Exit(1)
