"""Booking in a real browser: register with a real name, find a doctor's time slot, book, cancel."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from rhip.booking.calendar import is_working_day
from rhip.clock import local_now
from rhip.registry.idnumber import make_id
from rhip.security.service import issue_token
from tests.e2e.conftest import serve
from tests.e2e.test_signup import on_record, sign_up_in_browser

pytestmark = pytest.mark.e2e
SECRET = "e2e-booking-secret-key-0123456789-abcdefghijklmnop"


@pytest.fixture(scope="module")
def booking_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's data folder (its database holds the SMS outbox)."""
    return tmp_path_factory.mktemp("e2e-booking")


@pytest.fixture(scope="module")
def booking_server(booking_dir: Path) -> Iterator[str]:
    """`rhip serve` with a known signing key, so the test can publish schedules as a manager."""
    with serve(booking_dir, RHIP_SECRET_KEY=SECRET) as base:
        yield base


def _bookable_day() -> date:
    """A working day 2–6 days ahead: released to the public and still cancellable."""
    day = local_now().date() + timedelta(days=2)
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def test_resident_books_and_cancels_in_the_browser(  # type: ignore[no-untyped-def]
    booking_server: str, booking_dir: Path, page, artifacts: Path
) -> None:
    day = _bookable_day()
    manager = {"Authorization": f"Bearer {issue_token(SECRET, subject='e2e', role='manager')}"}
    r = httpx.post(
        f"{booking_server}/api/v1/booking/schedules",
        headers=manager,
        json={
            "hospital_code": "H029",
            "department_code": "03.04",
            "doctor_name": "周主任",
            "doctor_title": "主任医师",
            "service_date": day.isoformat(),
            "session": "am",
            "slot_minutes": 30,
            "capacity_per_slot": 3,
        },
    )
    assert r.status_code == 201, r.text
    pid = make_id("320106", date(1985, 6, 15), 123)

    page.goto(f"{booking_server}/")
    page.get_by_role("link", name="预约挂号").first.click()
    page.wait_for_url("**/booking")
    page.get_by_role("link", name="南京市胸科医院").click()
    page.get_by_role("link", name="心血管内科专业").click()
    page.wait_for_url("**/d/03.04**")
    assert "周主任" in page.locator("main").inner_text()
    page.get_by_role("link", name="登录后预约").first.click()
    on_record(booking_dir, pid, "13912345678")
    sign_up_in_browser(page, booking_dir, pid=pid, name="赵钢", phone="13912345678", password="secret-123")
    page.wait_for_url("**/d/03.04**")
    first_slot = page.locator("tr[data-slot]").first
    assert first_slot.locator("td.num").inner_text() == "3"
    first_slot.get_by_role("button", name="预约").click()
    page.wait_for_url("**/booking/me**")
    assert "预约成功" in page.locator("#msg").inner_text()
    row = page.locator("#my-bookings tr[data-appointment]").first
    assert "南京市胸科医院" in row.inner_text() and "已预约" in row.inner_text()
    page.screenshot(path=str(artifacts / "booking-me.png"), full_page=True)
    row.get_by_role("button", name="取消预约").click()
    page.wait_for_url("**/booking/me**")
    assert "已取消" in page.locator("#my-bookings tr[data-appointment] td.status").first.inner_text()
    page.goto(f"{booking_server}/booking/h/H029/d/03.04?day={day.isoformat()}")
    assert page.locator("tr[data-slot] td.num").first.inner_text() == "3"


def test_family_doctor_refers_and_hospital_sees_day_list_in_the_browser(  # type: ignore[no-untyped-def]
    booking_server: str, page, artifacts: Path
) -> None:
    day = local_now().date() + timedelta(days=10)  # the family doctors' week: priority places open
    while not is_working_day(day):
        day += timedelta(days=1)
    manager = {"Authorization": f"Bearer {issue_token(SECRET, subject='e2e', role='manager')}"}
    r = httpx.post(
        f"{booking_server}/api/v1/booking/schedules",
        headers=manager,
        json={
            "hospital_code": "H020",
            "department_code": "03.04",
            "doctor_name": "吴教授",
            "doctor_title": "主任医师",
            "service_date": day.isoformat(),
            "session": "pm",
            "slot_minutes": 30,
            "capacity_per_slot": 10,
        },
    )
    assert r.status_code == 201, r.text
    pid = make_id("320102", date(1958, 2, 3), 456)
    fd = issue_token(SECRET, subject="e2e-fd", role="family_doctor", institution_code="C32010201")
    page.context.add_cookies([{"name": "rhip_token", "value": fd, "url": booking_server}])
    page.goto(f"{booking_server}/booking/family?day={day.isoformat()}")
    assert "吴教授" in page.locator("main").inner_text()
    page.locator("#sign-form input[name=person_id]").fill(pid)
    page.locator("#sign-form button").click()
    page.wait_for_url("**/booking/family**")
    assert "已签约" in page.locator("#msg").inner_text()
    page.goto(f"{booking_server}/booking/family?day={day.isoformat()}")
    slot = page.locator("tr[data-slot]").first
    assert slot.locator("td").nth(1).inner_text() == "3"
    slot.locator("input[name=person_id]").fill(pid)
    slot.locator("input[name=person_name]").fill("孙老伯")
    slot.locator("input[name=reason]").fill("反复胸闷")
    slot.get_by_role("button", name="预约并上转").click()
    page.wait_for_url("**/booking/family**")
    assert "转诊成功" in page.locator("#msg").inner_text()
    assert "反复胸闷" in page.locator("#referrals").inner_text()
    page.screenshot(path=str(artifacts / "booking-family.png"), full_page=True)

    staff = issue_token(SECRET, subject="e2e-staff", role="doctor", institution_code="H020")
    page.context.add_cookies([{"name": "rhip_token", "value": staff, "url": booking_server}])
    page.goto(f"{booking_server}/booking/staff?day={day.isoformat()}")
    assert "吴教授" in page.locator("#schedules").inner_text()
    listed = page.locator("#day-list tr[data-appointment]").first.inner_text()
    assert "孙老伯" in listed and "家庭医生优先号源" in listed and pid not in listed
    page.screenshot(path=str(artifacts / "booking-staff.png"), full_page=True)
