"""The quality step of `rhip demo`: import 卫统, compute and score the month, open problems."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.lake.store import Lake
from rhip.quality import dimensions, service, usage, verify


def synth_month(synth_dir: Path) -> str:
    """The month the synthetic city made (manifest.json)."""
    return str(json.loads((synth_dir / "manifest.json").read_text(encoding="utf-8"))["month"])


def run(*, settings: Settings, synth_dir: Path, console: Console) -> list[tuple[str, str]]:
    """Demo step: 卫统 import, the month's figures and dimensions, problems raised; summary rows."""
    month = synth_month(synth_dir)
    db = Database.from_settings(settings)
    started = time.perf_counter()
    try:
        with db.session() as s, s.begin():
            report = synth_dir / "statistics_report.csv"
            imported = service.import_statistics_file(s, path=report) if report.is_file() else 0
            used = synth_dir / "record_usage.csv"
            if used.is_file():
                usage.import_usage_file(s, path=used)
            fig, assessed = dimensions.assess_month(s, lake=Lake.from_settings(settings), month=month)
            raised = dimensions.raise_items(s, assessments=assessed, month=month, created_by="demo")
            # the figures came from intake's rollups: recount them from the lake and compare
            disagree = verify.differences(s, lake=Lake.from_settings(settings), month=month)
    finally:
        db.dispose()
    seconds = time.perf_counter() - started
    scores = [a.score for a in assessed if a.score is not None]
    mean = sum(scores) / len(scores) if scores else 0.0
    visits = sum(u.visits for u in fig.units)
    discharges = sum(u.discharges for u in fig.units)
    checked = "一致" if not disagree else f"不一致 {len(disagree)} 项"
    console.print(f"数据质控：{len(fig.units)} 个接入单位，{seconds:.1f} 秒")
    return [
        (
            "数据质控",
            f"{month}：{len(fig.units)} 个接入单位，门急诊 {visits:,} 人次，出院 {discharges:,} 人次；"
            f"导入卫统 {imported} 家；平均质量评分 {mean:.1f}；新开问题 {raised} 条；"
            f"汇总表与数据湖核对{checked}；用时 {seconds:.1f} 秒",
        )
    ]
