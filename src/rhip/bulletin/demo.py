"""The bulletin step of `rhip demo`: write the month's issue (HTML, PDF, XLSX) under data_dir/bulletin."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from rhip.bulletin.commands import run as write_bulletin
from rhip.config import Settings


def run(*, settings: Settings, synth_dir: Path, console: Console) -> list[tuple[str, str]]:
    """Demo step: the bulletin of the synthetic month; one summary row with the files and the time."""
    month = str(json.loads((synth_dir / "manifest.json").read_text(encoding="utf-8"))["month"])
    out = settings.data_dir / "bulletin" / month
    bulletin, paths, seconds = write_bulletin(settings=settings, month=month, out=out, console=console)
    names = "、".join(p.name for p in paths.values())
    note = f"；暂缺栏目 {len(bulletin.errors)} 个" if bulletin.errors else ""
    return [("信息化简报", f"{bulletin.issue_label}：{names}（{out}），用时 {seconds:.1f} 秒{note}")]
