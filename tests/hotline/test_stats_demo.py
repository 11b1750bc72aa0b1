"""The seed reader, the month's paragraph, and the demo step: the bulletin paragraph equals s × the seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from rhip.bulletin.sections import parse_section
from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.hotline import demo, seeds, stats
from rhip.registry import service as registry
from tests.conftest import SECRET, SEEDS

TEXT_2022_08 = """8 月，南京 12320 卫生热线共受理咨询电话 263069 个，其中咨询类（不

含专家咨询）8493 个、医疗服务投诉 900 个、电话预约 138224 个、人工服

务110100通、心理危机干预376334个、自助语音问答5018个，受理市12345

工单 5066 件，省 12345 工单 1644 件，自接工单 900 件。

8 月，全省 12320 共接听电话 292783 人次，其中南京 263069 人次、苏

州市 29309 人次、南通市 405 人次。"""


def test_seed_reader_takes_334_for_376334_and_says_why() -> None:
    fig = seeds.parse_paragraph(TEXT_2022_08, month="2022-08")
    assert fig.calls["crisis"] == 334 and fig.categories_sum == fig.total == 263069
    assert "376334" in fig.notes[0] and "334" in fig.notes[0] and "相连" in fig.notes[0]
    assert fig.orders == {"wo_city_12345": 5066, "wo_province_12345": 1644, "wo_self": 900}
    assert fig.province == [("南京", 263069), ("苏州", 29309), ("南通", 405)]


def test_committed_figures_match_the_seeds() -> None:
    got = seeds.committed()
    assert got["2025-03"].calls == {
        "consult": 8211,
        "complaint": 1790,
        "phone_booking": 10235,
        "manual": 8355,
        "crisis": 798,
        "ivr": 489,
    }
    for month in ("2025-02", "2025-03", "2022-08"):
        assert got[month].categories_sum == got[month].total
        assert got[month].orders["wo_self"] == got[month].calls["complaint"]
    assert any("相差" in n for n in got["2020-05"].notes)  # the gap is reported, not "corrected"
    if SEEDS.is_dir():
        for path in sorted(SEEDS.glob("*.txt")):
            fig = seeds.read_seed_file(path)
            if fig is not None:
                assert fig.calls == got[fig.month].calls and fig.orders == got[fig.month].orders


def test_scaled_is_half_up() -> None:
    assert [demo.scaled(n, 0.01) for n in (8211, 1790, 10235, 8355, 798, 489)] == [82, 18, 102, 84, 8, 5]
    assert demo.scaled(50, 0.01) == 1 and demo.scaled(150, 0.01) == 2  # half up, not to even


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[tuple[str, str]], Path]:
    tmp = tmp_path_factory.mktemp("hotline-demo")
    settings = Settings(data_dir=tmp, secret_key=SECRET)
    upgrade(settings.resolved_database_url)
    db = Database.from_settings(settings)
    with db.session() as s, s.begin():
        registry.ensure_loaded(s)
    db.dispose()
    synth = tmp / "demo" / "2025-03"
    synth.mkdir(parents=True)
    (synth / "manifest.json").write_text(json.dumps({"scale": 0.01, "month": "2025-03"}))
    console = Console(file=open(tmp / "out.txt", "w"), width=200)  # noqa: SIM115
    rows = demo.run(settings=settings, synth_dir=synth, console=console)
    console.file.close()
    return settings, rows, synth


def test_demo_paragraph_equals_scale_times_the_seed(
    demo_run: tuple[Settings, list[tuple[str, str]], Path],
) -> None:
    settings, rows, synth = demo_run
    db = Database.from_settings(settings)
    with db.session() as s, s.begin():
        sections = stats.bulletin_sections(session=s, lake=None, month="2025-03")
    db.dispose()
    # each figure round_half_up(0.01 × seed); the total is the sum of the rounded categories
    assert sections[0]["paragraphs"][0] == (
        "2025 年 3 月，南京 12320 卫生热线共受理咨询电话 299 个，"
        "其中咨询类 82 个、医疗投诉 18 个、电话预约 102 个、人工服务 84 通、"
        "心理危机干预 8 通、自助语音问答 5 个，受理市 12345 工单 34 件，省 12345 工单 11 件，"
        "自接工单 18 件。"
    )
    assert "智慧客服“宁宁”共接待会话 300 次" in sections[0]["paragraphs"][1]
    parsed = parse_section(sections[0])  # the bulletin accepts the section as it is
    assert parsed.tables[0].rows[-1] == ("合计", 299)
    assert (synth / "hotline" / "Master.csv").is_file()
    assert "导入话单 299 条（错误 0 行）" in rows[0][1]


def test_province_sentence_when_imported(demo_run: tuple[Settings, list[tuple[str, str]], Path]) -> None:
    settings, _rows, _synth = demo_run
    db = Database.from_settings(settings)
    with db.session() as s, s.begin():
        stats.import_province(s, month="2025-03", rows=[("南京", 299), ("苏州市", 40)])
        fig = stats.month_figures(s, month="2025-03")
    db.dispose()
    assert (
        stats.province_sentence(fig)
        == "3 月，全省 12320 共接听电话 339 人次，其中南京 299 人次、苏州 40 人次。"
    )
