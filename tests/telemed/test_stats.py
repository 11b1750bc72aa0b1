# ruff: noqa: E501
"""The bulletin's 远程医疗 paragraphs equal s × the seed's volumes on a fresh database at a small scale.

Rounding rule: every volume is ⌊s·v + 0.5⌋ (half up); connection totals are not scaled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rhip.db.engine import Database, upgrade
from rhip.registry import service as registry
from rhip.telemed import stats, synth
from rhip.telemed.calibration import FIGURES, scaled
from tests.conftest import create_pg_database, drop_pg_database

S = 0.002


@pytest.fixture()
def fresh(backend: str, tmp_path: Path) -> Iterator[Database]:
    """An empty, migrated database of the backend, for figures no other test touches."""
    url = create_pg_database() if backend == "postgres" else f"sqlite:///{tmp_path / 'tm.db'}"
    upgrade(url)
    from rhip.config import Settings

    db = Database.from_settings(Settings(data_dir=tmp_path, database_url=url))
    with db.session() as s, s.begin():
        registry.ensure_loaded(s)
    yield db
    db.dispose()
    if backend == "postgres":
        drop_pg_database(url)


def _expected_2022(s: float) -> list[str]:
    f = FIGURES["2022-08"]
    e, lab, img, p = f["ecg"], f["lab"], f["imaging"], f["pathology"]

    def top(spec: dict) -> str:  # type: ignore[type-arg]
        names = {"南京市儿童医院": "南京市儿童医院", "江苏省人民医院": "江苏省人民医院"}
        return "，".join(f"{names.get(n, n)} {scaled(v, s)} 份" for n, v in spec["top"])

    return [
        "南京市远程医学会诊平台累计接入 50 家医疗机构，覆盖 9 个区，未对接的有玄武区、秦淮区、鼓楼区。"
        "其中南京市内二级以上医疗机构 24 家，社区卫生服务中心 13 家，南京都市圈城市 1 家，对外帮扶医疗机构 8 家，其他机构 4 家。",
        "南京市远程心电监测诊断平台累计接入 138 家医疗机构，联通南京市、镇江市、扬州市和马鞍山市 4 个城市。"
        "其中，南京市内接入三级医院 13 家，覆盖除秦淮区以外的 11 个区的社区卫生服务中心以及南京都市圈城市 7 家医疗机构。"
        f"8 月份采集心电病例 {scaled(e['cases'], s)} 份，会诊量 {scaled(e['consults'], s)} 例。"
        f"8 月数据上传量排名前 3 的分别是{top(e)}。",
        "南京市远程临检诊断平台累计接入 144 家医疗机构，其中二级以上医疗机构 19 家，覆盖 9 个区，未对接的有秦淮区、鼓楼区、雨花台区。"
        f"8 月份共采集检验报告 {scaled(lab['reports'], s)} 份，通过平台流转标本 {scaled(lab['specimens'], s)} 份。"
        f"8 月数据上传量排名前 3 的分别是{top(lab)}。",
        "南京市远程影像诊断平台累计接入 151 家医疗机构，其中二级以上医疗机构 8 家，覆盖 10 个区，未对接的有秦淮区、栖霞区。"
        f"8 月份共采集影像报告 {scaled(img['reports'], s)} 份，图像量 {scaled(img['images'], s)} 份，会诊 {scaled(img['consults'], s)} 例。"
        f"8 月数据上传量前 3 的分别是{top(img)}。",
        f"南京市远程病理诊断系统累计接入医院 25 家、专家 52 人、医生 26 人，产生病例 {scaled(p['cases'], s)} 条、"
        f"报告 {scaled(p['reports'], s)} 份，召开病例讨论会议 {scaled(p['meetings'], s)} 次、视频讲座 {scaled(p['lectures'], s)} 场。",
    ]


def test_paragraphs_equal_scaled_seed(fresh: Database) -> None:
    with fresh.session() as s, s.begin():
        synth.generate(s, month="2022-08", scale=S, seed=3)
    with fresh.session() as s, s.begin():
        got = stats.paragraphs(stats.month_figures(s, month="2022-08"))
        sections = stats.bulletin_sections(session=s, lake=None, month="2022-08")
    assert got == _expected_2022(S)
    assert (
        sections[0]["title"] == "2022 年 8 月南京市远程医疗系统数据统计" and sections[0]["paragraphs"] == got
    )
    with fresh.session() as s, s.begin():
        assert (
            stats.bulletin_sections(session=s, lake=None, month="2022-09")[0]["paragraphs"][1].count(
                "采集心电病例 0 份"
            )
            == 1
        )


def test_2020_05_paragraphs(fresh: Database) -> None:
    s_ = 0.005
    with fresh.session() as s, s.begin():
        synth.generate(s, month="2020-05", scale=s_, seed=4)
    with fresh.session() as s, s.begin():
        got = stats.paragraphs(stats.month_figures(s, month="2020-05"))
    f = FIGURES["2020-05"]
    assert got[0].startswith("南京市远程医学会诊平台累计接入 47 家医疗机构")
    assert "对外帮扶医疗机构 7 家" in got[0] and f"累计通过平台开展各类会诊 {scaled(110, s_)} 次" in got[0]
    assert f"5 月份采集心电病例 {scaled(f['ecg']['cases'], s_)} 份，会诊量 {scaled(149, s_)} 例" in got[1]
    assert f"江宁区卫生信息平台 {scaled(15667, s_)} 份" in got[1]
    assert "南京市内接入三级医院 12 家" in got[1] and "累计接入 149 家" in got[1]
    assert f"图像量 {scaled(5178141, s_)} 份" in got[3] and "覆盖 10 个区" in got[3]
    assert len(got) == 4  # the pathology system started in 2021
