"""`rhip hotline …` as a user runs it: a CDR file with a bad line, 12345 orders, the SLA job, the month."""

from __future__ import annotations

from pathlib import Path

from rhip.hotline import demo
from tests.test_cli import rhip


def test_hotline_commands(tmp_path: Path) -> None:
    plan = demo.plan_month("2025-03", 0.001)
    cdr = tmp_path / "Master.csv"
    cdr.write_text(plan.cdr_text + '"broken","line"\n', encoding="utf-8")
    r = rhip("hotline", "import-cdr", str(cdr), data_dir=tmp_path)
    calls = sum(plan.calls.values())
    assert r.returncode == 0 and f"导入 {calls}" in r.stdout and "错误 1 行" in r.stdout, r.stdout + r.stderr
    orders = tmp_path / "city.csv"
    orders.write_text(plan.orders["wo_city_12345"], encoding="utf-8")
    r = rhip("hotline", "import-orders", str(orders), data_dir=tmp_path)
    assert r.returncode == 0 and "新建 3" in r.stdout, r.stdout + r.stderr  # round_half_up(3359 × 0.001)
    r = rhip("hotline", "sla", "--chunk", "100", data_dir=tmp_path)
    assert r.returncode == 0 and "超时" in r.stdout and "超时 0，" not in r.stdout, r.stdout + r.stderr
    again = rhip("hotline", "sla", "--chunk", "100", data_dir=tmp_path)  # caught up: a re-run raises nothing
    assert again.returncode == 0 and "超时 0，预警 0，过半 0 件" in again.stdout, again.stdout + again.stderr
    r = rhip("hotline", "month", "--month", "2025-03", data_dir=tmp_path)
    assert r.returncode == 0 and f"共受理咨询电话 {calls} 个" in r.stdout.replace("\n", ""), r.stdout
    bad = rhip("hotline", "month", "--month", "2025-13", data_dir=tmp_path)
    assert bad.returncode != 0 and "YYYY-MM" in bad.stdout + bad.stderr and "Traceback" not in bad.stderr
