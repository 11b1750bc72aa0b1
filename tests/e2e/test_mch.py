"""An MCH worker registers a woman, grades her risk and records visits in a real browser; the colour shows as
a badge, a visit before registration is refused with the rule; the manager's dashboard shows its chart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rhip.registry import idnumber
from rhip.security.service import issue_token
from tests.e2e.conftest import serve

SECRET = "e2e-mch-secret-key-0123456789-abcdefghijklmnopqrstu"


@pytest.fixture(scope="module")
def mch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The portal with a known secret, so the test can sign in as an MCH worker."""
    with serve(tmp_path_factory.mktemp("e2e-mch"), RHIP_SECRET_KEY=SECRET) as base:
        yield base


def _sign_in(page, base: str, role: str, institution: str | None = None) -> None:  # type: ignore[no-untyped-def]
    token = issue_token(SECRET, subject=f"e2e-{role}", role=role, institution_code=institution)
    page.context.add_cookies([{"name": "rhip_token", "value": token, "url": base}])


def test_worker_registers_grades_and_visits(mch_server: str, page, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    from datetime import date

    _sign_in(page, mch_server, "doctor", "F320102")
    page.goto(f"{mch_server}/mch")
    page.fill("#local_id", "E2E-0001")
    page.fill("#id_number", idnumber.make_id("320102", date(1993, 6, 18), 124))
    page.fill("#name", "钱晓燕")
    page.fill("#registered_on", "2025-04-01")
    page.fill("#gestational_week", "9")
    page.select_option("#colour", "orange")
    page.fill("#case_owner", "孙医生")
    page.click("#register-form button[type=submit]")
    page.wait_for_selector("#risk .mch-badge.mch-orange")
    assert "橙色·较高风险" in page.inner_text("#risk")
    page.fill("#visit_date", "2025-03-20")
    page.click("#visit-form button[type=submit]")
    assert "早于建册日期" in page.inner_text("#msg")
    page.fill("#visit_date", "2025-04-01")
    page.fill("#systolic", "118")
    page.fill("#diastolic", "75")
    page.click("#visit-form button[type=submit]")
    assert "已登记初诊" in page.inner_text("#msg")
    page.fill("#assessed_on", "2025-04-15")
    page.select_option("#assessment-form #colour", "red")
    page.check("#assessment-form input[name=purple]")
    page.click("#assessment-form button[type=submit]")
    page.wait_for_selector("#risk .mch-badge.mch-red")
    assert page.locator("#risk .mch-badge.mch-purple").count() == 1
    assert page.locator("#assessments tbody tr").count() == 2
    page.screenshot(path=str(artifacts / "mch-pregnancy.png"), full_page=True)
    page.goto(f"{mch_server}/mch/high-risk?on=2025-04-30")
    row = page.locator("#cases tbody tr", has_text="钱晓燕")
    assert row.count() == 1 and "逾期 8 天" in row.inner_text()


def test_manager_dashboard_has_chart_and_tables(mch_server: str, page, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, mch_server, "manager")
    page.goto(f"{mch_server}/mch/dashboard?year=2025")
    assert page.locator("svg[role=img]").count() >= 2
    assert page.locator("#indicators tbody tr").count() == 14
    assert "2024-10-01 至 2025-09-30" in page.inner_text("main")
    page.screenshot(path=str(artifacts / "mch-dashboard.png"), full_page=True)
