"""健康档案浏览器 and 智能提示 usage: the reported figures, their roll-up and the import's errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rhip.errors import Invalid
from rhip.lake.store import Lake
from rhip.quality import figures, layouts, usage
from rhip.synth import usage as synth_usage

HEADER = "month,institution,browser_deployed,browser_calls,reminder_deployed,reminder_calls\n"


def _figures(session, month: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    with session.begin():
        return figures.month_figures(session, lake=Lake(tmp_path / "lake"), month=month)


def test_reported_usage_rolls_up_into_units(session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = HEADER + (
        "2023-04,D320104,100,40,90,300\n"  # 秦淮区 platform
        "2023-04,H032,20,5,0,0\n"  # a 秦淮区 hospital reporting through its district
        "2023-04,南京市第一医院,未部署,0,未部署,0\n"  # by name; nothing deployed
    )
    with session.begin():
        assert usage.import_usage(session, text=text, source="usage.csv") == 3
    fig = _figures(session, "2023-04", tmp_path)
    qinhuai, first, other = fig.get("D320104"), fig.get("H021"), fig.get("H022")
    assert qinhuai.usage == usage.Usage(120, 45, 90, 300)
    assert layouts.supplement_row(qinhuai)[-2:] == ["120/45", "90/300"]
    assert layouts.supplement_row(first)[-2:] == ["未部署/0", "未部署/0"]
    assert other.usage is None and layouts.supplement_row(other)[-1] == "未反馈"
    # reported again: the later report replaces the earlier one
    with session.begin():
        usage.import_usage(session, text=HEADER + "2023-04,H021,3,7,0,0\n", source="again.csv")
    assert layouts.supplement_row(_figures(session, "2023-04", tmp_path).get("H021"))[-2:] == [
        "3/7",
        "未部署/0",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("month,institution,browser_deployed\n2023-04,H021,1\n", "缺少列"),
        (HEADER + "2023-04,H021,-1,0,0,0\n", "第 2 行的健康档案浏览器部署数量应为非负整数"),
        (HEADER + "2023-04,H021,1,,0,0\n", "第 2 行的健康档案浏览器调用次数应为非负整数"),
        (HEADER + "2023-04,H021,1,未部署,0,0\n", "调用次数应为非负整数"),
        (HEADER + "2023-04,不存在的医院,1,0,0,0\n", "第 2 行的机构无法识别"),
        (HEADER + "2023-13,H021,1,0,0,0\n", "月份格式"),
    ],
)
def test_bad_reports_are_refused_with_the_row(text: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        usage.parse_usage(text)


def test_usage_api(client, auth) -> None:  # type: ignore[no-untyped-def]
    files = {"file": ("u.csv", (HEADER + "2023-05,H023,4,9,2,1\n").encode(), "text/csv")}
    r = client.post("/api/v1/quality/usage", files=files, headers=auth("manager"))
    assert r.status_code == 200, r.text
    assert r.json()["institutions"] == 1
    fig = client.get("/api/v1/quality/figures", params={"month": "2023-05"}, headers=auth("manager")).json()
    assert fig["month"] == "2023-05"
    bad = {"file": ("u.csv", (HEADER + "2023-05,H023,x,9,2,1\n").encode(), "text/csv")}
    got = client.post("/api/v1/quality/usage", files=bad, headers=auth("manager"))
    assert got.status_code == 422
    assert got.headers["content-type"].startswith("application/problem+json")
    assert "应为非负整数" in got.json()["detail"]
    assert (
        client.post(
            "/api/v1/quality/usage", files=files, headers=auth("uploader", institution="H023")
        ).status_code
        == 403
    )


def test_usage_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rhip.cli import app

    monkeypatch.setenv("RHIP_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RHIP_SECRET_KEY", "cli-test-secret")
    report = tmp_path / "usage.csv"
    report.write_text(HEADER + "2025-03,H020,5,6,7,8\n", encoding="utf-8")
    runner = CliRunner()
    got = runner.invoke(app, ["quality", "import-usage", str(report)])
    assert got.exit_code == 0, got.output
    assert "使用情况 1 家机构" in got.output
    report.write_text(HEADER + "2025-03,H020,5,-6,7,8\n", encoding="utf-8")
    bad = runner.invoke(app, ["quality", "import-usage", str(report)])
    assert bad.exit_code == 2 and "第 2 行" in bad.output


def test_synthetic_city_report_is_importable(session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from rhip.synth import calibration, city
    from rhip.synth.defects import DefectRates

    m = city.Month.of("2025-03")
    plans = city.plans(m, calibration.targets("2025-03", 0.001), seed=7, gbk_share=0.0, rates=DefectRates())
    path = synth_usage.write_record_usage(tmp_path, "2022-02", plans, seed=7)
    with session.begin():
        assert usage.import_usage_file(session, path=path) == len(plans)
    fig = _figures(session, "2022-02", tmp_path)
    lines = [line.split(",") for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    total = [sum(int(r[2 + i]) for r in lines) for i in range(4)]
    # every reporting unit's figures are its report's numbers (summed over its members)
    assert [sum(getattr(u.usage, f) for u in fig.units if u.usage) for f in usage.FIELDS] == total
    assert all(fig.unit_of(p.code) is not None for p in plans)
    assert any(r[2] == "0" for r in lines) and all(int(r[3]) == 0 for r in lines if r[2] == "0")
