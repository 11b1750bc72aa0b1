"""The newcomer's path, in a real browser: a fresh data folder, `rhip demo --scale 0.001`, `rhip serve`; the
demo resident books one of the coming days' slots, the demo manager opens the quality dashboard on the
demo's month (2025-03) with its charts, and 退出 signs each of them out."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rhip.web.demo import read_file
from tests.e2e.conftest import serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1800)]  # the demo runs first


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh data folder after `rhip demo --scale 0.001` (its output kept beside it)."""
    data = tmp_path_factory.mktemp("newcomer")
    env = {**os.environ, "RHIP_DATA_DIR": str(data), "RHIP_LOG_LEVEL": "WARNING"}
    env.pop("RHIP_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "rhip.cli", "demo", "--scale", "0.001"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    (data / "demo-output.txt").write_text(done.stdout + done.stderr, encoding="utf-8")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return data


@pytest.fixture(scope="module")
def portal(demo_dir: Path) -> Iterator[str]:
    """`rhip serve` on the demo's data folder."""
    with serve(demo_dir) as base:
        yield base


def _accounts(demo_dir: Path) -> dict[str, tuple[str, str]]:
    return {a.role.value: (a.username, a.password) for a in read_file(demo_dir / "demo" / "accounts.txt")}


def test_demo_prints_its_accounts_and_keeps_them_private(demo_dir: Path) -> None:
    path = demo_dir / "demo" / "accounts.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    accounts = _accounts(demo_dir)
    roles = {"resident", "doctor", "family_doctor", "uploader", "agent", "manager", "auditor", "admin"}
    assert set(accounts) == roles
    printed = (demo_dir / "demo-output.txt").read_text(encoding="utf-8")
    tail = printed[printed.index("演示账号（") :]
    assert all(password in tail for _user, password in accounts.values())


def _sign_out(page, portal: str) -> None:  # type: ignore[no-untyped-def]
    page.locator("header.top .who").get_by_role("link", name="退出").click()
    page.wait_for_url(f"{portal}/")
    assert page.locator("header.top .who").get_by_role("link", name="登录").is_visible()
    assert page.locator("header.top .who .user").count() == 0


def test_resident_books_a_coming_day_then_signs_out(
    portal: str, demo_dir: Path, page, artifacts: Path
) -> None:  # type: ignore[no-untyped-def]
    username, password = _accounts(demo_dir)["resident"]
    page.goto(f"{portal}/booking/login")
    page.locator("#login input[name=id_number]").fill(username)
    page.locator("#login input[name=password]").fill(password)
    page.locator("#login button").click()
    page.wait_for_url("**/booking/me**")
    assert "居民" in page.locator("header.top .who .user").inner_text()
    assert page.locator("#my-bookings tr[data-appointment]").count() == 1  # the demo's booking
    page.goto(f"{portal}/booking")
    hospitals = page.locator("main table a")
    assert hospitals.count() >= 2, "the living demo publishes sessions for the coming days"
    hospitals.last.click()
    page.locator("main a[href*='/d/']").first.click()
    days = page.locator("main a[href^='?day=']")
    if days.count():  # another day than the demo's booking, which is on the first bookable one
        days.first.click()
    slot = page.locator("tr[data-slot]").filter(has=page.get_by_role("button", name="预约")).first
    slot.get_by_role("button", name="预约").click()
    page.wait_for_url("**/booking/me**")
    assert "预约成功" in page.locator("#msg").inner_text()
    assert page.locator("#my-bookings tr[data-appointment]").count() == 2
    page.screenshot(path=str(artifacts / "newcomer-resident.png"), full_page=True)
    _sign_out(page, portal)
    page.goto(f"{portal}/booking/me")
    page.wait_for_url("**/booking/login**")


def test_manager_sees_the_demo_month_with_charts_then_signs_out(  # type: ignore[no-untyped-def]
    portal: str, demo_dir: Path, page, artifacts: Path
) -> None:
    username, password = _accounts(demo_dir)["manager"]
    page.goto(f"{portal}/login?next=/quality")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/quality")
    assert "2025 年 3 月" in page.locator("h1").inner_text()
    assert page.locator("#month-picker").input_value() == "2025-03"
    who = page.locator("header.top .who .user").inner_text()
    assert "信息中心管理员" in who
    nav = page.locator("header.top nav").inner_text()
    assert "预约统计" in nav and "医院工作台" in nav and "我的预约" not in nav
    charts = page.locator("section.charts svg.chart[role=img]")
    assert charts.count() >= 3
    box = charts.first.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100
    assert page.locator("section.charts svg.chart rect").count() > 10  # bars drawn
    assert page.locator("section.charts table.chart-data").count() == charts.count()
    page.screenshot(path=str(artifacts / "newcomer-quality.png"), full_page=True)
    page.get_by_role("link", name="预约统计").click()
    page.wait_for_url("**/booking/stats")
    assert page.locator("#month-picker").input_value() == "2025-03"
    assert page.locator("section.charts svg.chart").count() == 3
    _sign_out(page, portal)
    page.goto(f"{portal}/quality")  # signed out: the dashboard sends the browser to sign in again
    page.wait_for_url("**/login?next=**")
    assert page.locator("h1").count() and "数据质控 ·" not in page.locator("main").inner_text()
