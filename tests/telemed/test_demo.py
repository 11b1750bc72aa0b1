"""The demo step at a small scale: the month generated, real DICOM studies through a real Orthanc recorded
from its change feed, ECG records attached, the paragraphs written."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from sqlalchemy import func, select

from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.registry import service as registry
from rhip.telemed import demo, stats
from rhip.telemed.models import Attachment, Series, Study


def test_demo_step_sends_studies_through_orthanc(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="x" * 40)
    upgrade(settings.resolved_database_url)
    db = Database.from_settings(settings)
    with db.session() as s, s.begin():
        registry.ensure_loaded(s)
    synth_dir = tmp_path / "synth"
    synth_dir.mkdir()
    (synth_dir / "manifest.json").write_text(json.dumps({"month": "2025-03", "scale": 0.001, "seed": 5}))
    rows = demo.run(settings=settings, synth_dir=synth_dir, console=Console(quiet=True))
    assert rows[0][0] == "远程医疗" and "Orthanc" in rows[0][1]
    # one report and its amendment reached the shared record through intake
    assert "进入共享档案 2 份（拒收 0）" in rows[0][1]
    with db.session() as s, s.begin():
        real = s.scalar(select(func.count()).where(Study.source == "orthanc"))
        assert real == demo.real_study_count(0.001) == 10
        assert (
            s.scalar(select(func.count()).select_from(Series).join(Study).where(Study.source == "orthanc"))
            == 10
        )
        assert s.scalar(select(func.count()).where(Attachment.kind == "ecg")) == 5
        # and kept in Orthanc as DICOM 12-lead ECG objects (while the demo's Orthanc ran)
        ecgs = s.scalars(select(Attachment).where(Attachment.kind == "ecg")).all()
        assert all((a.meta or {}).get("dicom", {}).get("orthanc_id") for a in ecgs)
        # a share arrived from the carts as DICOM waveforms (8 leads recorded, 4 derived), the rest as WFDB
        carts = [a for a in ecgs if a.content_type == "application/dicom"]
        assert len(carts) == 3 and all(a.meta["derived"] == ["III", "aVR", "aVL", "aVF"] for a in carts)
        assert "3 份由心电图机以 DICOM 波形上传" in rows[0][1]
        paras = stats.paragraphs(stats.month_figures(s, month="2025-03"))
    assert "3 月份共采集影像报告 228 份，图像量 57079 份" in paras[3]
    # a second run of the step adds nothing
    demo.run(settings=settings, synth_dir=synth_dir, console=Console(quiet=True))
    with db.session() as s, s.begin():
        assert stats.paragraphs(stats.month_figures(s, month="2025-03")) == paras
    db.dispose()
    assert not (tmp_path / "orthanc" / "running.json").exists()  # the demo's Orthanc was stopped
