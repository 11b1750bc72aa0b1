"""The shared record in a real browser: a doctor of another hospital is refused, states an emergency reason
and sees the record with reminders first; the resident sees who looked and adds a measurement (chart)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.identity import service as identity
from rhip.lake.store import Lake
from rhip.registry import data as registry_data, service as registry
from rhip.security.service import issue_token
from tests.e2e.conftest import serve
from tests.records.conftest import ago, key, rec, send

pytestmark = pytest.mark.e2e
ID = "320102196105040018"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str, str, str]]:
    """A portal whose database holds a person's records at hospital A; (base URL, person, A, C, secret)."""
    data = tmp_path_factory.mktemp("e2e-records")
    settings = Settings(data_dir=data)
    upgrade(settings.resolved_database_url)
    db = Database.from_settings(settings)
    with db.session() as s, s.begin():
        registry.ensure_loaded(s)
    insts = registry_data.institutions()
    hospitals = [i.code for i in insts if i.kind == "hospital"]
    a, c = hospitals[0], hospitals[2]
    lake = Lake(settings.resolved_lake_dir)
    pid = key("PA")
    lab = key("LA")
    send(
        db,
        lake,
        a,
        {
            "patient_info": [
                rec(
                    "patient_info",
                    a,
                    patient_id=pid,
                    name="王建国",
                    id_number=ID,
                    sex="1",
                    birth_date="1961-05-04",
                )
            ],
            "lab_report": [
                rec(
                    "lab_report",
                    a,
                    when=ago(2),
                    report_no=lab,
                    patient_id=pid,
                    panel_name="血常规",
                    reported_at=ago(2),
                )
            ],
            "lab_result": [
                rec(
                    "lab_result",
                    a,
                    when=ago(2),
                    report_no=lab,
                    item_code="WBC",
                    item_name="白细胞",
                    result_value="31.0",
                    unit="10^9/L",
                    abnormal_flag="HH",
                    reported_at=ago(2),
                )
            ],
        },
    )
    with db.session() as s, s.begin():
        person = identity.link_record(
            s,
            institution_code=a,
            local_id=pid,
            id_number=ID,
            name="王建国",
            birth_date=date(1961, 5, 4),
            sex="1",
            phone=None,
            district=None,
            source="test",
        ).person_id
    secret = settings.resolved_secret_key
    db.dispose()
    with serve(data, RHIP_SECRET_KEY=secret) as base:
        yield base, person, a, c, secret


def test_refused_then_emergency_then_record(city, page, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    base, person, _a, c, secret = city
    tok = issue_token(secret, subject="dr-e2e", role="doctor", institution_code=c)
    page.context.add_cookies([{"name": "rhip_token", "value": tok, "url": base}])
    page.goto(f"{base}/records/person/{person}")
    assert "未获患者授权" in page.locator("h1").inner_text()
    page.fill("textarea[name=reason]", "车祸昏迷送急诊，无法取得授权")
    page.get_by_role("button", name="紧急调阅").click()
    page.wait_for_selector("#timeline")
    assert "紧急调阅" in page.locator("#basis").inner_text()
    reminders = page.locator("#reminders .card")
    assert reminders.count() >= 1 and "近期异常" in reminders.first.inner_text()
    assert page.locator("#timeline tbody tr").count() >= 1
    page.screenshot(path=str(artifacts / "records-doctor.png"), full_page=True)


def test_resident_sees_who_looked_and_charts(city, page, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    base, person, _a, c, secret = city
    # a doctor of another hospital tries the record first (refused: no consent)
    doc = issue_token(secret, subject="dr-refused", role="doctor", institution_code=c)
    assert (
        httpx.get(f"{base}/api/v1/records/{person}", headers={"Authorization": f"Bearer {doc}"}).status_code
        == 403
    )
    tok = issue_token(secret, subject=ID, role="resident")
    page.context.add_cookies([{"name": "rhip_token", "value": tok, "url": base}])
    page.goto(f"{base}/records/me")
    log = page.locator("#access-log tbody").inner_text()
    assert "dr-refused" in log and "拒绝" in log
    page.select_option("select[name=kind]", "weight")
    page.fill("input[name=value]", "70.5")
    page.get_by_role("button", name="记录").click()
    page.wait_for_selector("svg.chart")
    assert page.locator("svg.chart[role=img]").count() >= 1
    page.screenshot(path=str(artifacts / "records-resident.png"), full_page=True)
