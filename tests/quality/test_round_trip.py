"""Round trip: the synthetic 2025-03 month at a small scale, through intake, gives back the ground truth.

The bulletin's 门急诊人次, 收入, 出院人次 and 住院收入 per unit must equal the synthetic city's valid records
after every planted defect, duplicate, modification and revocation has been filtered; 实时数据上传天数 and
实时数据表单上传情况 must equal the days and forms it sent in real time. Three units are ingested (a district
and two hospitals) so the test stays fast; benchmarks/quality.py runs the whole city.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from rhip.intake import reading, service as intake
from rhip.lake.store import Lake
from rhip.quality import figures, layouts, service, verify

MONTH = "2025-03"
UNITS = ("D320106", "H005", "H029")  # 鼓楼区, 江苏省肿瘤医院, 南京市胸科医院
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def synth_month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic city's 2025-03 at scale 0.001."""
    from rhip.synth import service as synth

    out = tmp_path_factory.mktemp("synth")
    synth.generate(month=MONTH, scale=0.001, seed=7, out=out, gbk_share=0.1, console=None, institutions=UNITS)
    return out


def _files(synth_dir: Path) -> dict[str, list[dict[str, Any]]]:
    manifest = json.loads((synth_dir / "manifest.json").read_text(encoding="utf-8"))
    files = manifest.get("uploads", manifest.get("files", []))
    by_org: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in files:
        if str(f.get("path", "")).startswith("uploads/") and f.get("org_code") in UNITS:
            by_org[str(f["org_code"])].append(f)
    return by_org


@pytest.fixture(scope="module")
def ingested(app_, backend: str, synth_month: Path, tmp_path_factory: pytest.TempPathFactory) -> Lake:  # type: ignore[no-untyped-def]
    """The three units' files sent through intake as the demo sends them: the month, then the corrections."""
    db = app_.state.db
    lake = Lake(tmp_path_factory.mktemp(f"rt-lake-{backend}"))
    work = tmp_path_factory.mktemp(f"rt-work-{backend}")
    for org, files in _files(synth_month).items():
        main = [f for f in files if not re.search(r"_\d{8}\.[a-z]+$", f["path"])]
        fixes = [f for f in files if f not in main]
        for group in (main, fixes):
            if not group:
                continue
            ups = [
                reading.Upload(
                    path=synth_month / f["path"],
                    filename=Path(f["path"]).name,
                    table=f.get("table"),
                    encoding=f.get("encoding"),
                )
                for f in group
            ]
            intake.ingest(
                db, lake, institution_code=org, submitted_by="round-trip", uploads=ups, workdir=work
            )
    with db.session() as s, s.begin():
        service.import_statistics_file(s, path=synth_month / "statistics_report.csv")
    return lake


def test_bulletin_rows_equal_ground_truth(ingested: Lake, synth_month: Path, session) -> None:  # type: ignore[no-untyped-def]
    truth = json.loads((synth_month / "ground_truth" / "institutions.json").read_text(encoding="utf-8"))
    by_code = {t["org_code"]: t for t in truth["institutions"]}
    with session.begin():
        fig = figures.month_figures(session, lake=ingested, month=MONTH)
        # intake's rollups, which the figures read, agree with a recount of the lake's records (the SQL
        # database is shared with other tests, their lakes are not: only these units are compared)
        assert verify.differences(session, lake=ingested, month=MONTH, units=UNITS) == []
    for code in UNITS:
        t, u = by_code[code], fig.get(code)
        v = t["valid"]
        row = layouts.collection_row(u)
        assert u.visits == v["outpatient_visits"], code
        assert u.discharges == v["discharges"], code
        assert round(u.visit_revenue * 100) == v["outpatient_revenue_fen"], code
        assert round(u.inpatient_revenue * 100) == v["inpatient_revenue_fen"], code
        assert row[5] == (float(v["outpatient_revenue_qianyuan"]) if u.visits else "/")
        assert row[7] == (float(v["inpatient_revenue_qianyuan"]) if u.discharges else "/")
        assert u.upload_days == t["realtime_upload_days_count"], code
        assert u.forms == len(t["realtime_forms"]), code
        assert u.stat_visits == t["statistics_report"]["outpatient_visits"], code


def test_demo_steps_run(app_, settings, synth_month: Path) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console

    from rhip.bulletin import demo as bulletin_demo
    from rhip.quality import demo as quality_demo

    console = Console(quiet=True)
    rows = quality_demo.run(settings=settings, synth_dir=synth_month, console=console)
    assert rows[0][0] == "数据质控" and "导入卫统" in rows[0][1]
    rows = bulletin_demo.run(settings=settings, synth_dir=synth_month, console=console)
    assert rows[0][0] == "信息化简报"
    assert sorted(p.suffix for p in (settings.data_dir / "bulletin" / MONTH).iterdir()) == [
        ".html",
        ".pdf",
        ".xlsx",
    ]
