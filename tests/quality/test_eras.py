"""Data-collection tables in each era's layout: the seeds' columns in order, cells, the choice of era."""

from __future__ import annotations

from pathlib import Path

import pytest

from rhip.errors import Invalid
from rhip.lake.store import Lake
from rhip.quality import eras, figures
from rhip.quality.usage import Usage


def _unit(kind: str) -> figures.UnitFigures:
    u = figures.UnitFigures(code="X", name="样例单位", kind=kind, forms_of=12)
    u.uploads, u.stored, u.upload_days, u.forms, u.tables_uploaded = 1000, 900, 27, 11, 40
    u.visits, u.visits_realtime, u.stat_visits = 200, 150, 800
    u.discharges, u.discharges_realtime, u.stat_discharges = 10, 0, None
    u.visit_revenue, u.inpatient_revenue = 12345.0, 99000.0
    u.declared, u.required = 64, 133
    u.records_basic, u.records_hypertension, u.records_diabetes = 3535, 16385, 4881
    u.usage = Usage(127, 5, 0, 0)
    return u


def _titles(layout: str, kind: str) -> list[str]:
    return [f"{c.get('group', '')}{c['title']}" for c in eras.columns(layout, kind)]


def test_2018_columns_and_cells() -> None:
    assert _titles("2018", "district") == [
        "接入单位",
        "声明上传表/规定上传表",
        "实际上传表（CDA 文档）",
        "数据入库量",
        "数据上传天数",
        "门急诊信息上传人次",
        "门急诊信息上传率（与卫统对比）",
        "出院信息上传人次",
        "出院信息上传率（与卫统对比）",
        "健康档案累计上传总量基本信息",
        "健康档案累计上传总量高血压",
        "健康档案累计上传总量糖尿病",
        "健康档案浏览器部署数量/调用次数",
        "智能提示部署数量/调用次数",
    ]
    d = eras.row("2018", _unit("district"))
    assert d == [
        "样例单位",
        "64/133",
        40,
        900,
        27,
        200,
        25.0,
        10,
        "未获取卫统数据",
        3535,
        16385,
        4881,
        "127/5",
        "0/0",
    ]
    h = eras.row("2018", _unit("hospital"))
    assert h[3] == 1000 and h[-2:] == ["127/5", "未部署/0"]
    assert len(h) == len(eras.columns("2018", "hospital")) == 11


def test_2020_and_2022_columns_and_cells() -> None:
    assert _titles("2020", "hospital") == [
        "接入单位",
        "申明上传表/规定上传",
        "已上传表/CDA文档（份）",
        "数据上传量",
        "数据上传天数",
        "门急诊信息上传人次",
        "出院信息上传人次",
    ]
    assert eras.row("2020", _unit("district"))[-3:] == [3535, 16385, 4881]
    assert _titles("2022", "hospital") == [
        "接入单位",
        "数据上传量",
        "数据上传天数",
        "实时数据表单上传情况",
        "门急诊信息人次",
        "门急诊信息实时数据符合率",
        "出院信息人次",
        "出院信息实时数据符合率",
    ]
    assert eras.row("2022", _unit("hospital")) == ["样例单位", 1000, 27, "11/12", 200, 0.75, 10, 0.0]
    assert len(eras.row("2022", _unit("district"))) == 11


def test_2025_is_the_current_table() -> None:
    assert eras.row("2025", _unit("hospital")) == ["样例单位", 1000, 27, "11/12", 200, 12.35, 10, 99.0]


def test_headers_appear_in_the_seeds_of_their_era(seeds: Path) -> None:
    issues = {
        "2018": "003_572dad04b507adb4.txt",
        "2020": "002_fd129e63cda9ba38.txt",
        "2022": "000_6cc7f8f8c446d20a.txt",
        "2025": "004_d3501396ef2716ba.txt",
    }
    for layout, name in issues.items():
        text = "".join((seeds / name).read_text(encoding="utf-8").split())
        for kind in ("district", "hospital"):
            for c in eras.columns(layout, kind):
                assert "".join(c["title"].split()) in text, (layout, kind, c["title"])


def test_era_of_a_month_and_bad_layouts() -> None:
    assert [eras.layout_for(m) for m in ("2018-03", "2020-05", "2022-08", "2025-03")] == [
        "2018",
        "2020",
        "2022",
        "2025",
    ]
    with pytest.raises(Invalid, match="未知的表格版式"):
        eras.check_layout("2019")


def test_bulletin_sections_in_a_chosen_layout(session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from rhip.bulletin import service

    with session.begin():
        b = service.build(
            session=session, lake=Lake(tmp_path / "lake"), month="2025-03", layout="2018", strict=True
        )
    districts = next(s for s in b.sections if s.key == "quality.districts").tables[0]
    assert [c.title for c in districts.columns][-2:] == [
        "健康档案浏览器部署数量/调用次数",
        "智能提示部署数量/调用次数",
    ]
    assert len(districts.rows) == 12
    with session.begin():
        default = service.build(session=session, lake=Lake(tmp_path / "lake"), month="2018-03", strict=True)
    hospitals = next(s for s in default.sections if s.key == "quality.hospitals").tables[0]
    assert hospitals.columns[1].title == "声明上传表/规定上传"
    with pytest.raises(Invalid, match="未知的表格版式"):
        service.build(session=session, lake=Lake(tmp_path / "lake"), month="2025-03", layout="1999")
