"""`rhip identity …`: the full re-link, the counts, a person, training the model from a records file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from rhip.config import Settings
from rhip.errors import RhipError

if TYPE_CHECKING:
    from rhip.db.engine import Database

app = typer.Typer(help="Identity (主索引 EMPI): link, counts, persons, model", no_args_is_help=True)
console = Console()


def _db() -> Database:
    from rhip.db.engine import Database, upgrade

    settings = Settings()
    upgrade(settings.resolved_database_url)
    return Database.from_settings(settings)


@app.command()
def link(
    full: Annotated[bool, typer.Option("--full", help="Re-link every stored record with splink")] = False,
) -> None:
    """Re-link every stored patient record (a job: splink scores, clusters, writes back)."""
    from rhip.identity import fulllink

    if not full:
        console.print("新记录在入库时已实时关联；全量重新关联请加 --full")
        raise typer.Exit(0)
    db = _db()
    stages = ["读取记录", "打分", "聚类", "写回"]
    try:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("全量关联", total=len(stages))

            def tick(stage: str, done: int, total: int) -> None:
                progress.update(task, advance=1, description=f"全量关联 · {stage} {done:,} 条")

            with db.session() as s, s.begin():
                summary = fulllink.relink_all(s, progress=tick)
    except RhipError as exc:
        Console(stderr=True).print(f"[bold red]错误：[/]{exc.detail}")
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    console.print(
        f"记录 {summary.records:,} 条，人员 {summary.persons:,} 人；自动关联 {summary.auto:,}，"
        f"待审核 {summary.review:,}，新建 {summary.new:,}；审核队列 {summary.review_queue:,} 项；"
        f"用时 {summary.seconds:.1f} 秒"
    )


@app.command()
def stats() -> None:
    """Records, persons, bands and the review queue."""
    from rhip.identity import fulllink

    db = _db()
    try:
        with db.session() as s, s.begin():
            c = fulllink.counts(s)
    finally:
        db.dispose()
    console.print(
        f"记录 {c.records:,} 条，人员 {c.persons:,} 人；自动关联 {c.auto:,}，待审核 {c.review:,}，"
        f"新建 {c.new:,}；审核队列 {c.review_queue:,} 项"
    )


@app.command()
def train(
    records: Annotated[
        Path, typer.Argument(help="Parquet: id_number, name, birth_date, sex, phone, district")
    ],
    out: Annotated[Path | None, typer.Option(help="Model file (default: the packaged one)")] = None,
) -> None:
    """Estimate the model's parameters from a records file with splink (EM) and save the model file."""
    import pyarrow.parquet as pq

    from rhip.identity import train as trainer
    from rhip.identity.scoring import MODEL_FILE

    cols = ["id_number", "name", "birth_date", "sex", "phone", "district"]
    table = trainer.feature_rows(pq.read_table(records, columns=cols).to_pylist())
    path = trainer.save(trainer.train(table), out or MODEL_FILE)
    console.print(f"已用 {table.num_rows:,} 条记录训练模型：{path}")
