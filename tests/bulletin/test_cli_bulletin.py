"""`rhip bulletin --month … --out DIR` and `rhip quality import-statistics FILE` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rhip.cli import app


@pytest.mark.slow
def test_bulletin_and_statistics_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RHIP_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RHIP_SECRET_KEY", "cli-test-secret")
    runner = CliRunner()
    report = tmp_path / "wt.csv"
    report.write_text(
        "month,org_code,name,kind,outpatient_visits,discharges\n2025-03,H020,南京鼓楼医院,hospital,9,2\n"
    )
    got = runner.invoke(app, ["quality", "import-statistics", str(report)])
    assert got.exit_code == 0, got.output
    assert "已导入卫统数据 1 家机构" in got.output
    bad = runner.invoke(app, ["quality", "import-statistics", str(tmp_path / "none.csv")])
    assert bad.exit_code == 2
    out = tmp_path / "out"
    got = runner.invoke(app, ["bulletin", "--month", "2025-03", "--out", str(out)])
    assert got.exit_code == 0, got.output
    names = sorted(p.suffix for p in out.iterdir())
    assert names == [".html", ".pdf", ".xlsx"]
    assert runner.invoke(app, ["bulletin", "--month", "2025-3", "--out", str(out)]).exit_code == 2
    bad = runner.invoke(app, ["bulletin", "--month", "2025-03", "--layout", "2019", "--out", str(out)])
    assert bad.exit_code == 2 and "未知的表格版式" in bad.output
