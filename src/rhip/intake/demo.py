"""The intake step of `rhip demo`: ingest the synthetic month (batch files, some real-time posts)."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.intake import formats, pipeline, service
from rhip.lake.store import Lake

REALTIME_DEMO_TABLE = "lab_result"  # sent through the real-time path, after the batch files
REALTIME_CHUNK = 5000


def manifest_files(synth_dir: Path) -> list[dict[str, Any]]:
    """The upload files the synthetic city wrote (manifest.json), or every CSV under uploads/."""
    path = synth_dir / "manifest.json"
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        files = (data.get("uploads") or data.get("files") or []) if isinstance(data, dict) else data
        return [f for f in files if isinstance(f, dict) and str(f.get("path", "")).startswith("uploads/")]
    return [
        {"path": str(p.relative_to(synth_dir)), "org_code": p.parent.name, "table": None, "encoding": None}
        for p in sorted((synth_dir / "uploads").glob("*/*.csv"))
    ]


def _is_correction(path: str) -> bool:
    """The month-end correction files are named <table>_<yyyymmdd>.csv."""
    return re.search(r"_\d{8}\.[a-z]+$", path) is not None


def ingest_month(
    *,
    settings: Settings,
    synth_dir: Path,
    console: Console | None = None,
    realtime: bool = True,
    institutions: set[str] | None = None,
) -> dict[str, Any]:
    """Ingest every institution's files; returns totals, per-rule rejections and receipts."""
    db = Database.from_settings(settings)
    lake = Lake(settings.resolved_lake_dir)
    work = settings.data_dir / "intake" / "incoming" / "demo"
    work.mkdir(parents=True, exist_ok=True)
    by_org: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in manifest_files(synth_dir):
        if institutions is None or str(f["org_code"]) in institutions:
            by_org[str(f["org_code"])].append(f)
    totals = pipeline.TableCounts()
    rules: dict[str, int] = defaultdict(int)
    receipts: list[str] = []
    started = time.perf_counter()
    try:
        with db.session() as s, s.begin():
            service.recover(s, lake=lake)
        with Progress(
            TextColumn("[bold]数据采集 {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=console is None,
        ) as bar:
            task = bar.add_task("", total=len(by_org))
            for org, files in sorted(by_org.items()):
                bar.update(task, description=org)
                batch_files: list[tuple[dict[str, Any], str]] = []
                rt_files: list[tuple[dict[str, Any], str]] = []
                for f in files:
                    table = f.get("table") or pipeline.table_for_filename(Path(f["path"]).name)
                    target = rt_files if realtime and table == REALTIME_DEMO_TABLE else batch_files
                    target.append((f, table))
                main = [(f, t) for f, t in batch_files if not _is_correction(f["path"])]
                fixes = [(f, t) for f, t in batch_files if _is_correction(f["path"])]
                runs: list[tuple[str, list[pipeline.Upload] | None, dict[str, Any] | None]] = []
                for group in (main, fixes):
                    ups = [
                        pipeline.Upload(
                            path=synth_dir / f["path"],
                            filename=Path(f["path"]).name,
                            table=t,
                            encoding=f.get("encoding"),
                        )
                        for f, t in group
                    ]
                    if ups:
                        runs.append(("batch", ups, None))
                for f, t in rt_files:
                    got = formats.read_file(
                        synth_dir / f["path"],
                        filename=Path(f["path"]).name,
                        encoding=f.get("encoding"),
                        workdir=work,
                    )
                    ds = pipeline.get_dataset(t)
                    frame = pipeline.frame_of(ds, got.table)
                    for start in range(0, frame.height, REALTIME_CHUNK):
                        runs.append(("realtime", None, {t: frame.slice(start, REALTIME_CHUNK)}))
                for channel, up, frames in runs:
                    receipt = service.ingest(
                        db,
                        lake,
                        institution_code=org,
                        submitted_by="demo",
                        channel=channel,
                        uploads=up,
                        frames=frames,
                        workdir=work,
                    )
                    receipts.append(receipt.batch_id)
                    totals.add(receipt.outcome.total())
                    probs = receipt.outcome.problems
                    if probs is not None:
                        for rule, n in probs.get_column("rule").value_counts().iter_rows():
                            rules[str(rule)] += int(n)
                bar.advance(task)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        db.dispose()
    seconds = time.perf_counter() - started
    return {
        "institutions": len(by_org),
        "files": sum(len(v) for v in by_org.values()),
        "totals": totals,
        "rules": dict(rules),
        "receipts": receipts,
        "seconds": seconds,
    }


def run(*, settings: Settings, synth_dir: Path, console: Console) -> list[tuple[str, str]]:
    """Demo step: ingest the synthetic month and return Chinese summary rows."""
    got = ingest_month(settings=settings, synth_dir=synth_dir, console=console)
    t: pipeline.TableCounts = got["totals"]
    rate = t.received / got["seconds"] if got["seconds"] else 0.0
    rules = "，".join(f"{k} {v:,}" for k, v in sorted(got["rules"].items(), key=lambda kv: -kv[1])) or "无"
    return [
        (
            "数据采集",
            f"{got['institutions']} 个机构、{got['files']} 个文件、{len(got['receipts'])} 个回执："
            f"接收 {t.received:,}，新增 {t.accepted:,}，更新 {t.updated:,}，撤销 {t.revoked:,}，"
            f"重复 {t.duplicate:,}，拒收 {t.rejected:,}",
        ),
        ("数据采集 · 拒收规则", rules),
        ("数据采集 · 速度", f"{got['seconds']:.1f} 秒，{rate:,.0f} 条/秒"),
    ]
