"""The `rhip demo` step: the month's MCH activity calibrated to the 2018-03 district table at the demo's
scale (through the services), the last complete report year's cohorts for the indicators, and one institute's
records of the month before sent through intake as the MCH catalogue tables; prints the district table and the
year's indicators. Run again, it replaces its own synthetic records."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table as RichTable

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.lake.store import Lake
from rhip.mch import indicators, rules, stats, synth, synth_upload


def scale_of(synth_dir: Path) -> float:
    """The synthetic city's scale, from its manifest (0.01 without one)."""
    path = synth_dir / "manifest.json"
    if path.exists():
        value = json.loads(path.read_text(encoding="utf-8")).get("scale")
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return 0.01


def last_complete_year(month: str) -> int:
    """The last report year (October–September) that ended before the month."""
    y, m = (int(x) for x in month.split("-"))
    return y if m >= 10 else y - 1


def run(*, settings: Settings, synth_dir: Path, console: Console) -> list[tuple[str, str]]:
    """Demo step: generate, compute, print; returns summary rows (Chinese)."""
    month = synth_dir.name if re.fullmatch(r"\d{4}-\d{2}", synth_dir.name) else "2025-03"
    scale = scale_of(synth_dir)
    year = last_complete_year(month)
    started = time.perf_counter()
    db = Database.from_settings(settings)
    try:
        with db.session() as s, s.begin():
            synth.clear(s)
            plan = synth.generate_month(s, month=month, scale=scale)
            cohort = synth.generate_year(s, year=year, scale=scale)
        sent = synth_upload.upload_month(db, Lake.from_settings(settings), month=month)
        with db.session() as s, s.begin():
            table = stats.usage_table(s, month=month)
            report = indicators.report(s, year=year)
    finally:
        db.dispose()
    out = RichTable(title=table["title"])
    for c in table["columns"]:
        out.add_column(c)
    for row in table["rows"]:
        out.add_row(*(str(x) for x in row))
    console.print(out)
    start, end = rules.report_year(year)
    ind = RichTable(title=f"{year} 年度妇幼健康指标（{start.isoformat()} 至 {end.isoformat()}）")
    ind.add_column("指标")
    ind.add_column("全市")
    for d in indicators.DEFINITIONS:
        v = report.total.value(d)
        ind.add_row(d.name, "—" if v is None else f"{v:.2f}")
    console.print(ind)
    total = table["rows"][-1]
    planned = sum(p["registrations"] for p in plan.values())
    early = report.total.value(indicators.DEFINITIONS[0])
    return [
        (
            "妇幼保健",
            f"{month}：妇女登记 {total[1]}（计划 {planned}）、初诊 {total[2]}、复诊 {total[3]}、"
            f"分娩 {total[6]}、儿童登记 {total[7]}；{year} 年度队列 {cohort['pregnancies']} 名产妇、"
            f"{cohort['children']} 名 7 岁以下儿童，"
            f"早孕建册率 {early}%；经数据采集上传上月妇幼记录 {sent['stored']} 条（回执 {sent['batch_id']}，"
            f"登记库未受理 {sum(n for r, n in sent['problems'].items() if r.startswith('mch:'))} 条）"
            f"（{time.perf_counter() - started:.1f} 秒）",
        )
    ]
