"""The synthetic month through the real service reproduces the 2025-03 table at a scale, idempotently."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from rhip.booking import demo, stats
from rhip.bulletin.sections import parse_section
from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.registry import service as registry
from tests.conftest import SECRET, create_pg_database, drop_pg_database


@pytest.fixture()
def private_settings(backend: str, tmp_path: Path) -> Iterator[Settings]:
    """A database of its own: the month's tables must not see other tests' bookings."""
    url = create_pg_database() if backend == "postgres" else None
    settings = Settings(data_dir=tmp_path, database_url=url, secret_key=SECRET)
    upgrade(settings.resolved_database_url)
    db = Database.from_settings(settings)
    with db.session() as s, s.begin():
        registry.ensure_loaded(s)
    db.dispose()
    yield settings
    if url:
        drop_pg_database(url)


def test_demo_month_is_calibrated_and_idempotent(
    private_settings: Settings, tmp_path: Path, backend: str, batch_sizes: list[int]
) -> None:
    batches = batch_sizes
    synth_dir = tmp_path / "demo" / "2025-03"
    synth_dir.mkdir(parents=True)
    (synth_dir / "manifest.json").write_text(json.dumps({"scale": 0.005}))
    console = Console(file=open(tmp_path / "out.txt", "w"), width=160)  # noqa: SIM115
    rows = dict(demo.run(settings=private_settings, synth_dir=synth_dir, console=console))
    # 13509, 2061, 8603, 5493 × 0.005, each column rounded on its own
    assert "在线 68、快速 10、诊间 43、第三方 27" in rows["预约统计"], rows
    assert "合计 148" in rows["预约统计"] and "被规则拒绝 0 次" in rows["预约挂号"]
    # PostgreSQL: the bookings (all but the family doctors' referrals) took the batched path, one by one
    assert (len(batches) >= 100 and set(batches) == {1}) if backend == "postgres" else not batches
    again = dict(demo.run(settings=private_settings, synth_dir=synth_dir, console=console))
    assert "预约 0 次、重放 148 次" in again["预约挂号"] and again["预约统计"] == rows["预约统计"]
    console.file.close()
    printed = (tmp_path / "out.txt").read_text()
    assert "2025 年 3 月 12320 预约挂号服务统计" in printed and "南京鼓楼医院" in printed
    # the same tables reach the bulletin through booking's provider hook
    db = Database.from_settings(private_settings)
    with db.session() as s:
        raw = stats.bulletin_sections(session=s, lake=None, month="2025-03")
        assert stats.bulletin_sections(session=s, lake=None, month="2011-01") == []
    db.dispose()
    (section,) = [parse_section(r, source="rhip.booking.stats") for r in raw]
    by_hospital = section.tables[0]
    assert [c.title for c in by_hospital.columns][2:] == [
        "12320 在线预约",
        "快速预约",
        "诊间预约",
        "第三方",
        "小计",
    ]
    assert by_hospital.rows[-1][0] == "合计" and by_hospital.rows[-1][-1] == 148
    assert [c.kind for c in by_hospital.columns][2:] == ["int"] * 5
    assert any("总预约挂号量" in n for n in by_hospital.notes)
    assert [t.sheet for t in section.tables] == ["预约挂号", "线上预约", "社区预约", "排班开放"]
