"""What a synthesis run writes beside the uploads (statistics report, ground truth, manifest) and prints."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rhip.registry import catalogue
from rhip.synth import city, defects, usage
from rhip.synth.defects import DefectRates
from rhip.synth.writer import FileEntry, sha256_file


@dataclass
class UnitResult:
    """One uploading unit's outcome (valid figures are what the platform should compute)."""

    code: str
    name: str
    kind: str
    encoding: str
    rows: int
    uploads_target: int
    visits: int
    visit_revenue_fen: int
    discharges: int
    inpatient_revenue_fen: int
    upload_days: list[int]
    forms: list[str]
    defects: dict[str, int]


@dataclass
class SynthResult:
    """What generate() made."""

    month: str
    source_month: str
    scale: float
    seed: int
    out: Path
    gbk_share: float
    residents: int
    rows: int
    files: int
    gbk_files: int
    seconds: float
    units: list[UnitResult] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)
    defects: dict[str, int] = field(default_factory=dict)


def _qianyuan(fen: int) -> str:
    return f"{fen // 100_000}.{fen % 100_000 // 1000:02d}" if fen % 1000 == 0 else f"{fen / 100_000:.5f}"


def write_statistics(out: Path, month: str, plans: list[city.Plan]) -> None:
    """The 卫统 monthly report: each unit's true outpatient visits and discharges."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["month", "org_code", "name", "kind", "outpatient_visits", "discharges"])
    for p in plans:
        w.writerow([month, p.code, p.record.name, p.target.kind, p.stats_visits, p.stats_discharges])
    (out / "statistics_report.csv").write_text(buf.getvalue(), encoding="utf-8")


def write_institutions(out: Path, result: SynthResult, plans: list[city.Plan], m: city.Month) -> None:
    by_code = {p.code: p for p in plans}
    items = []
    for u in result.units:
        p = by_code[u.code]
        items.append(
            {
                "org_code": u.code,
                "name": u.name,
                "registry_name": p.record.name,
                "kind": u.kind,
                "encoding": u.encoding,
                "valid": {
                    "outpatient_visits": u.visits,
                    "outpatient_revenue_fen": u.visit_revenue_fen,
                    "outpatient_revenue_qianyuan": _qianyuan(u.visit_revenue_fen),
                    "discharges": u.discharges,
                    "inpatient_revenue_fen": u.inpatient_revenue_fen,
                    "inpatient_revenue_qianyuan": _qianyuan(u.inpatient_revenue_fen),
                },
                "rows_uploaded": u.rows,
                "rows_target": u.uploads_target,
                "realtime_upload_days": u.upload_days,
                "realtime_upload_days_count": len(u.upload_days),
                "realtime_upload_days_target": p.target.upload_days,
                "realtime_forms": u.forms,
                "realtime_forms_count": f"{len(u.forms)}/{len(catalogue.realtime_datasets())}",
                "realtime_forms_target": p.forms,
                "statistics_report": {"outpatient_visits": p.stats_visits, "discharges": p.stats_discharges},
                "defects": u.defects,
            }
        )
    _json(
        out / "ground_truth" / "institutions.json",
        {"month": result.month, "days": m.days, "institutions": items},
    )


def write_summary(out: Path, result: SynthResult, rates: DefectRates) -> None:
    _json(
        out / "ground_truth" / "summary.json",
        {
            "month": result.month,
            "source_month": result.source_month,
            "scale": result.scale,
            "seed": result.seed,
            "residents": result.residents,
            "rows": result.rows,
            "files": result.files,
            "tables": result.tables,
            "defects": result.defects,
            "rates": asdict(rates),
            "definitions": {
                "realtime_row": f"实时表记录，事件后 {city.REALTIME_LAG[1] // 60} 分钟内采集（同一天）",
                "batch_row": "定时批量：事件后 {}–{} 小时采集".format(*(h // 3600 for h in city.BATCH_LAG)),
                "late": f"事件后 24 小时以上采集（埋点 {defects.LATE_DAYS[0]}–{defects.LATE_DAYS[1]} 天）",
                "realtime_upload_days": "当月有实时记录（实时表且采集时间在事件后数分钟内）的不同日期数",
                "realtime_forms": "当月有实时记录的实时表数（x/12）",
                "valid": "去除埋点缺陷行、重复、撤销后的记录；修改记录计一次，以修改标志 2 的版本为准",
                "extra_rows": "缺陷行都是在有效记录之外另加的行（新业务主键），从不替换有效记录",
            },
        },
    )


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("rhip", "numpy", "pyarrow"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def write_manifest(out: Path, result: SynthResult, entries: list[FileEntry], rates: DefectRates) -> None:
    truth = sorted(f"ground_truth/{p.name}" for p in (out / "ground_truth").iterdir() if p.is_file())
    extra = ["residents.parquet", "statistics_report.csv", usage.FILE, *truth]
    _json(
        out / "manifest.json",
        {
            "month": result.month,
            "source_month": result.source_month,
            "scale": result.scale,
            "seed": result.seed,
            "gbk_share": result.gbk_share,
            "rates": asdict(rates),
            "versions": _versions(),
            "rows": result.rows,
            "uploads": [e.as_dict() for e in entries],
            "files": [
                {"path": p, "sha256": sha256_file(out / p), "bytes": os.path.getsize(out / p)} for p in extra
            ],
        },
    )


def _json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _wan(n: int) -> str:
    return f"{n / 10_000:.1f} 万" if n >= 100_000 else f"{n:,}"


def one_line(result: SynthResult) -> str:
    """A Chinese one-line summary for the demo table."""
    total_defects = sum(v for k, v in result.defects.items() if k not in defects.VERSION_RULES)
    return (
        f"{result.month}（规模 {result.scale}，种子 {result.seed}）：{len(result.units)} 家接入单位，"
        f"{result.files} 个文件（GBK {result.gbk_files}），{_wan(result.rows)} 行，"
        f"居民 {_wan(result.residents)}，埋点缺陷 {total_defects:,} 条，用时 {result.seconds:.1f} 秒"
    )


def print_summary(result: SynthResult, console: Console) -> None:
    """Print what was made: per unit, per table, defects planted, files, GBK share, time."""
    t = Table(title=f"合成城市 {result.month}（按 {result.source_month} 简报校准，规模 {result.scale}）")
    for col, just in [
        ("接入单位", "left"),
        ("代码", "left"),
        ("编码", "left"),
        ("上传行数", "right"),
        ("门急诊人次", "right"),
        ("门急诊收入（千元）", "right"),
        ("出院人次", "right"),
        ("住院收入（千元）", "right"),
        ("实时天数", "right"),
        ("实时表单", "right"),
        ("缺陷", "right"),
    ]:
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    n_forms = len(catalogue.realtime_datasets())
    for u in result.units:
        t.add_row(
            u.name,
            u.code,
            "GBK" if u.encoding == "gbk" else "UTF-8",
            f"{u.rows:,}",
            f"{u.visits:,}",
            f"{u.visit_revenue_fen / 100_000:,.2f}",
            f"{u.discharges:,}",
            f"{u.inpatient_revenue_fen / 100_000:,.2f}",
            str(len(u.upload_days)),
            f"{len(u.forms)}/{n_forms}",
            f"{sum(v for k, v in u.defects.items() if k not in defects.VERSION_RULES):,}",
        )
    console.print(t)

    tt = Table(title="各数据表行数与埋点")
    tt.add_column("数据表")
    tt.add_column("行数", justify="right")
    for name, n in sorted(result.tables.items(), key=lambda kv: -kv[1]):
        tt.add_row(name, f"{n:,}")
    dt = Table(title="埋点（按规则）")
    dt.add_column("规则")
    dt.add_column("条数", justify="right")
    for rule, n in result.defects.items():
        dt.add_row(rule, f"{n:,}")
    console.print(tt)
    console.print(dt)
    share = result.gbk_files / result.files if result.files else 0.0
    console.print(
        f"文件 {result.files} 个（GBK {result.gbk_files}，占 {share:.0%}），共 {result.rows:,} 行；"
        f"居民 {result.residents:,} 人；输出目录 {result.out}；用时 {result.seconds:.1f} 秒"
    )
