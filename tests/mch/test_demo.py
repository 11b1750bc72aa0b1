"""The demo step: the month's MCH records at the demo's scale, the bulletin's district table from them, and
the last complete report year's indicators."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip.bulletin import service as bulletin
from rhip.config import Settings
from rhip.lake.store import Lake
from rhip.mch import demo, indicators, synth
from rhip.mch.models import Child, Pregnancy


def test_demo_step_and_bulletin(settings: Settings, session: Session, tmp_path: Path) -> None:
    synth_dir = tmp_path / "2005-03"
    synth_dir.mkdir()
    (synth_dir / "manifest.json").write_text(
        json.dumps({"month": "2005-03", "scale": 0.01}), encoding="utf-8"
    )
    console = Console(record=True, width=160)
    rows = demo.run(settings=settings, synth_dir=synth_dir, console=console)
    ((step, summary),) = rows
    assert step == "妇幼保健" and "妇女登记 43（计划 43）" in summary
    # one institute's records of the month before went through intake: 17 stored, the visit dated before
    # its woman's 建册 refused by the registry as a problem line
    assert "经数据采集上传上月妇幼记录 17 条" in summary and "登记库未受理 1 条" in summary
    assert _uploaded(session) == (7, 1, 1)
    assert "2005 年 3 月南京市妇幼保健信息系统各区使用情况表" in console.export_text()
    with session.begin():
        issue = bulletin.build(
            session=session, lake=Lake(tmp_path / "lake"), month="2005-03", modules=["rhip.mch.stats"]
        )
        rep = indicators.report(session, year=2004)
    (section,) = issue.sections
    (table,) = section.tables
    expected = {name: [synth.scaled(n, 0.01) for n in cells] for name, cells in synth.SEED_2018_03.items()}
    assert {r[0]: list(r[1:]) for r in table.rows[:-1]} == expected
    body = [list(r[1:]) for r in table.rows[:-1]]
    assert list(table.rows[-1]) == ["合计", *(sum(col) for col in zip(*body, strict=True))]
    assert rep.total.counts["live_births"] >= 800 and rep.total.counts["under7"] > 4500
    # run again: the step replaces its own synthetic records instead of adding to them
    demo.run(settings=settings, synth_dir=synth_dir, console=Console(file=None, width=160, quiet=True))
    with session.begin():
        again = indicators.report(session, year=2004)
    assert again.total.counts == rep.total.counts
    assert _uploaded(session) == (7, 1, 1)  # the first run's uploaded records were replaced, not added to


def _uploaded(session: Session) -> tuple[int, int, int]:
    """Episodes, deliveries and children the demo's upload put in the registry (keys SYN-U…)."""
    with session.begin():
        women = session.scalars(select(Pregnancy).where(Pregnancy.local_id.like("SYN-U%"))).all()
        kids = session.scalar(select(func.count()).where(Child.local_id.like("SYN-U%")))
        return len(women), sum(1 for w in women if w.delivered_on), int(kids or 0)
