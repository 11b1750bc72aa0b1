# ruff: noqa: E501
"""The telemedicine step of `rhip demo`: connections, the month's activity at the demo's scale (a few
hundred small DICOM studies through a real Orthanc when it is installed), the month's paragraphs."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.telemed import stats, synth


def run(*, settings: Settings, synth_dir: Path, console: Console) -> list[tuple[str, str]]:
    """Demo step: generate and report the month's telemedicine activity; summary rows."""
    manifest = json.loads((synth_dir / "manifest.json").read_text(encoding="utf-8"))
    month, scale = str(manifest["month"]), float(manifest.get("scale", 0.01))
    db = Database.from_settings(settings)
    started = time.perf_counter()
    try:
        with db.session() as s, s.begin():
            plan = synth.generate(s, month=month, scale=scale, seed=int(manifest.get("seed", 42)))
        with db.session() as s, s.begin():
            fig = stats.month_figures(s, month=month)
    finally:
        db.dispose()
    seconds = time.perf_counter() - started
    e, i, lab = fig.centres["ecg"].volumes, fig.centres["imaging"].volumes, fig.centres["lab"].volumes
    console.print(f"远程医疗：{sum(plan.requests.values())} 个申请，{seconds:.1f} 秒")
    return [
        (
            "远程医疗",
            f"{month}（按 {plan.calibrated_to} 校准 × {scale}）：心电病例 {e['cases']} 份，影像报告 {i['reports']} 份"
            f"（图像 {i['images']} 份），检验报告 {lab['reports']} 份，流转标本 {lab['specimens']} 份；用时 {seconds:.1f} 秒",
        )
    ]
