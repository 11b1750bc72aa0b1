"""`rhip telemed …`: the month's paragraphs, one pass over the PACS change feed, a managed Orthanc."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console

from rhip.config import Settings
from rhip.db.engine import Database, upgrade

app = typer.Typer(
    help="远程医疗 telemedicine: paragraphs, the PACS feed, the report outbox", no_args_is_help=True
)
console = Console()


@app.command("paragraphs")
def paragraphs(month: Annotated[str, typer.Option(help="YYYY-MM")]) -> None:
    """Print the month's 远程医疗系统数据统计 paragraphs."""
    from rhip.telemed import stats

    settings = Settings()
    upgrade(settings.resolved_database_url)
    db = Database.from_settings(settings)
    try:
        with db.session() as s, s.begin():
            for p in stats.paragraphs(stats.month_figures(s, month=month)):
                console.print(p)
    finally:
        db.dispose()


@app.command("follow")
def follow(
    url: Annotated[str | None, typer.Option(help="Orthanc URL (default RHIP_ORTHANC_URL)")] = None,
) -> None:
    """Read the PACS change feed once and record the new stable studies."""
    from rhip.telemed import imaging, pacs

    settings = Settings()
    upgrade(settings.resolved_database_url)
    client = pacs.client_for(settings.data_dir, url or settings.orthanc_url)
    if client is None:
        raise typer.BadParameter("没有运行中的 Orthanc：请给出 --url 或设置 RHIP_ORTHANC_URL")
    db = Database.from_settings(settings)
    try:
        with db.session() as s, s.begin():
            res = imaging.follow(s, pacs=client)
    finally:
        db.dispose()
    console.print(f"记录检查 {len(res.recorded)} 个，问题 {len(res.problems)} 个，变更序号 {res.last_seq}")
    for sid, msg in res.problems:
        console.print(f"  {sid}：{msg}")


@app.command("pacs")
def pacs_run() -> None:
    """Run rhip's own Orthanc (configuration and storage under the data folder) until Ctrl-C, following it."""
    from rhip.telemed import jobs

    settings = Settings()
    upgrade(settings.resolved_database_url)
    with jobs.pacs_for_serving(settings) as client:
        if client is None:
            raise typer.BadParameter("未安装 Orthanc：请运行 scripts/bootstrap.sh --system")
        console.print(f"Orthanc：{client.url}（DICOM 端口 {client.dicom_port}，AE RHIP）；Ctrl-C 停止")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


@app.command("outbox")
def outbox() -> None:
    """Send the reports waiting in the outbox to intake (the shared record) now; list the refused ones."""
    from rhip.lake.store import Lake
    from rhip.telemed import delivery

    settings = Settings()
    upgrade(settings.resolved_database_url)
    db = Database.from_settings(settings)
    try:
        res = delivery.drain(db, Lake.from_settings(settings))
        console.print(
            f"已发送 {len(res.sent)} 份，稍后重试 {len(res.retried)} 份，被拒收 {len(res.failed)} 份"
            f"（回执 {'、'.join(res.receipts) or '—'}）"
        )
        with db.session() as s:
            for o in delivery.pending(s, states=("failed",)):
                console.print(
                    f"  拒收：报告 {o.report_id} 第 {o.version} 版 → {o.table_name}：{o.last_error}"
                )
    finally:
        db.dispose()
