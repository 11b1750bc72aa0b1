"""`rhip intake …`: `upload FILE... --institution CODE` (one batch, with a progress bar) and `compact`.

`rhip intake FILE...` (no subcommand) still uploads, and `rhip intake-compact` still compacts (hidden).
The lake and pipeline modules load only when a command runs, so `rhip --help` stays fast.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rhip.config import Settings
from rhip.errors import Invalid, RhipError

if TYPE_CHECKING:
    from rhip.intake import service

app = typer.Typer(help="Intake (采集): batch uploads from files, lake compaction", no_args_is_help=True)
COMMANDS = ("upload", "compact", "rebuild-rollups")
console = Console()


def _ready() -> Settings:
    from rhip.registry import service as registry

    settings = Settings()
    registry.prepare(settings.resolved_database_url)
    return settings


@app.command("upload")
def upload(
    files: Annotated[list[Path], typer.Argument(help="CSV (UTF-8/GBK), Parquet or JSON Lines files")],
    institution: Annotated[str, typer.Option(help="机构代码 of the uploading institution")],
    table: Annotated[str | None, typer.Option(help="Catalogue table (default: from the file name)")] = None,
    encoding: Annotated[str | None, typer.Option(help="utf-8, gbk or gb18030 (default: detected)")] = None,
) -> None:
    """Upload files as one batch (定时上传) and print the receipt."""
    settings = _ready()
    try:
        run_files(
            settings=settings,
            files=files,
            institution=institution,
            table=table,
            encoding=encoding,
            console=console,
        )
    except RhipError as exc:
        Console(stderr=True).print(f"[bold red]错误：[/]{exc.detail}")
        raise typer.Exit(2) from None


_WORKERS = typer.Option(help="Run on a local cluster of N worker processes")
_SCHEDULER = typer.Option(help="Run on a Dask cluster: tcp://host:8786 (default RHIP_DASK_SCHEDULER)")


@app.command("compact")
def compact(
    month: Annotated[str | None, typer.Option(help="Only this month's partitions, YYYY-MM")] = None,
    workers: Annotated[int | None, _WORKERS] = None,
    scheduler: Annotated[str | None, _SCHEDULER] = None,
) -> None:
    """Merge the intake lake tables' small files (Delta OPTIMIZE compact) so later reads open few files."""
    from rhip.lake.cluster import scheduler_address

    address = scheduler_address(scheduler)
    if month is None and address is None and workers is None:
        compact_lake(settings=_ready(), console=console)
        return
    from rhip.intake import clustercmd

    try:
        clustercmd.compact(_ready(), month=month, scheduler=address, workers=workers, console=console)
    except RhipError as exc:
        Console(stderr=True).print(f"[bold red]错误：[/]{exc.detail}")
        raise typer.Exit(2) from None


@app.command("rebuild-rollups")
def rebuild_rollups(
    month: Annotated[str | None, typer.Option(help="Only this month, YYYY-MM (default: every month)")] = None,
    workers: Annotated[int | None, _WORKERS] = None,
    scheduler: Annotated[str | None, _SCHEDULER] = None,
) -> None:
    """Rebuild intake's rollups (the figures' monthly counts) from the lake's records, in one transaction."""
    from rhip.intake import clustercmd
    from rhip.lake.cluster import scheduler_address

    try:
        clustercmd.rebuild_rollups(
            _ready(), month=month, scheduler=scheduler_address(scheduler), workers=workers, console=console
        )
    except RhipError as exc:
        Console(stderr=True).print(f"[bold red]错误：[/]{exc.detail}")
        raise typer.Exit(2) from None


def legacy_argv(argv: list[str]) -> list[str]:
    """`rhip intake FILE...` (the command before it became a group) is `rhip intake upload FILE...`."""
    if len(argv) > 2 and argv[1] == "intake" and argv[2] not in (*COMMANDS, "--help", "-h"):
        return [*argv[:2], "upload", *argv[2:]]
    return argv


def run_files(
    *,
    settings: Settings,
    files: list[Path],
    institution: str,
    table: str | None = None,
    encoding: str | None = None,
    console: Console,
    submitted_by: str = "cli",
) -> service.Receipt:
    """Ingest files as one batch for an institution and print the receipt."""
    from rhip.db.engine import Database
    from rhip.intake import reading, service
    from rhip.lake.store import Lake

    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise Invalid(f"文件不存在：{'、'.join(missing)}", code="file-not-found")
    if table and len(files) > 1:
        raise Invalid("多个文件时不能用 --table；请用文件名标明数据表", code="table-ambiguous")
    db = Database.from_settings(settings)
    lake = Lake.from_settings(settings)
    work = settings.data_dir / "intake" / "incoming"
    work.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="cli_", dir=work))
    try:
        with db.session() as s, s.begin():
            recovered = service.recover(s, lake=lake)
        if recovered:
            console.print(f"已清理 {len(recovered)} 个中断批次：{'、'.join(recovered)}")
        ups = [reading.Upload(path=f, filename=f.name, table=table, encoding=encoding) for f in files]
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task("读取与校验", total=len(files))
            tables_seen: set[str] = set()

            def progress(name: str, rows: int) -> None:
                tables_seen.add(name)
                bar.update(
                    task,
                    description=f"校验 {name}（{rows:,} 条）",
                    completed=min(len(tables_seen), len(files)),
                )

            receipt = service.ingest(
                db,
                lake,
                institution_code=institution,
                submitted_by=submitted_by,
                channel="batch",
                uploads=ups,
                workdir=workdir,
                progress=progress,
            )
            bar.update(task, description="已提交", completed=len(files))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        db.dispose()
    out = Table(title=f"回执 {receipt.batch_id}（{institution}）")
    for col in ("数据表", "接收", "新增", "更新", "撤销", "重复", "拒收"):
        out.add_column(col, justify="right" if col != "数据表" else "left")
    for name, c in receipt.outcome.tables.items():
        out.add_row(
            name, *(f"{v:,}" for v in (c.received, c.accepted, c.updated, c.revoked, c.duplicate, c.rejected))
        )
    console.print(out)
    return receipt


def compact_lake(*, settings: Settings, console: Console) -> dict[str, tuple[int, int]]:
    """Merge the small files of every intake lake table (Delta OPTIMIZE compact) and print what changed."""
    import time

    from rhip.db.engine import Database
    from rhip.intake import service, store
    from rhip.lake.store import Lake

    lake = Lake.from_settings(settings)
    db = Database.from_settings(settings)
    try:
        with db.session() as s, s.begin():
            recovered = service.recover(s, lake=lake)  # a pending batch's rows must go before they merge
    finally:
        db.dispose()
    if recovered:
        console.print(f"已清理 {len(recovered)} 个中断批次：{'、'.join(recovered)}")
    from rhip.intake.clustercmd import print_compaction

    t0 = time.perf_counter()
    done = store.compact(lake)
    print_compaction(console, done, time.perf_counter() - t0)
    return done
