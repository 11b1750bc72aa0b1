"""The month's district table equals round-half-up(s × the 2018-03 bulletin) cell by cell, and the synthetic
year's cohorts give indicators near the national values."""

from __future__ import annotations

from sqlalchemy.orm import Session

from rhip.mch import indicators, stats, synth

SCALE = 0.03


def test_seed_table_is_the_bulletins() -> None:
    rows = list(synth.SEED_2018_03.values())
    assert tuple(sum(col) for col in zip(*rows, strict=True)) == synth.SEED_TOTAL_2018_03
    assert list(synth.SEED_2018_03) == list(stats.DISTRICT_ORDER)
    assert synth.scaled(45, 0.01) == 0 and synth.scaled(150, 0.01) == 2 and synth.scaled(250, 0.01) == 3


def test_month_table_is_scale_times_the_seed(session: Session) -> None:
    with session.begin():
        synth.generate_month(session, month="2019-03", scale=SCALE)
    with session.begin():
        table = stats.usage_table(session, month="2019-03")
        sections = stats.bulletin_sections(session=session, lake=None, month="2019-03")
    expected = [
        [name, *(synth.scaled(n, SCALE) for n in synth.SEED_2018_03[name])] for name in stats.DISTRICT_ORDER
    ]
    assert table["rows"][:-1] == expected
    assert table["rows"][-1] == ["合计", *(sum(r[i] for r in expected) for i in range(1, 8))]
    assert table["columns"] == [
        "行政区",
        "妇女登记",
        "初诊",
        "复诊",
        "访视一次",
        "访视两次",
        "分娩",
        "儿童登记",
    ]
    assert [r[0] for r in table["rows"] if not any(r[1:])] == ["建邺区", "江宁区", "六合区", "高淳区"]
    assert table["title"] == "2019 年 3 月南京市妇幼保健信息系统各区使用情况表"
    assert table["note"].startswith("（截止 3 月底，总登记建卡数为 ")
    (section,) = sections
    assert section["tables"][0]["rows"] == table["rows"]
    with session.begin():
        assert stats.bulletin_sections(session=session, lake=None, month="1990-03") == []


def test_synthetic_year_comes_out_near_national_values(session: Session) -> None:
    with session.begin():
        counts = synth.generate_year(session, year=2017, scale=0.004)
    assert counts["pregnancies"] == 320 and counts["children"] == 2000
    with session.begin():
        rep = indicators.report(session, year=2017)
    v = {d.key: rep.total.value(d) for d in indicators.DEFINITIONS}
    bands = {
        "early_registration": (90, 99),
        "antenatal_care": (94, 100),
        "maternal_system_management": (87, 97),
        "postpartum_visit": (92, 100),
        "hospital_delivery": (99, 100),
        "newborn_visit": (92, 100),
        "under3_system_management": (87, 97),
        "under7_health_management": (88, 98),
    }
    for key, (lo, hi) in bands.items():
        assert v[key] is not None and lo <= v[key] <= hi, (key, v[key])
    assert rep.total.counts["live_births"] >= 320


def test_bulk_cohorts_keep_the_rollups(session: Session) -> None:
    with session.begin():
        synth.generate_year(session, year=2023, scale=0.001)
    with session.begin():
        assert indicators.group_counts(session, year=2023) == indicators.group_counts(
            session, year=2023, recount=True
        )
