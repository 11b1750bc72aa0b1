"""Real-name sign-up in a real browser: the form, the code texted to the phone on record (read from the
SMS outbox), the verification page, then signed in; a phone not on record gets no code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from rhip.db.engine import Database
from rhip.registry.idnumber import make_id
from rhip.security import realname, sms
from tests.e2e.conftest import serve

pytestmark = pytest.mark.e2e


def on_record(data_dir: Path, pid: str, phone: str) -> None:
    """A hospital's records hold this phone for this person (written to the server's database)."""
    db = Database(f"sqlite:///{data_dir / 'rhip.db'}")
    try:
        with db.session() as s, s.begin():
            realname.record_person_phone(s, id_number=pid, phone=phone, source="e2e", institution_code="H029")
    finally:
        db.dispose()


def code_from_outbox(data_dir: Path, phone: str) -> str | None:
    """The newest code texted to the phone, from the server's SMS outbox."""
    db = Database(f"sqlite:///{data_dir / 'rhip.db'}")
    try:
        with db.session() as s, s.begin():
            msgs = sms.outbox(s, phone=phone, limit=1)
    finally:
        db.dispose()
    found = re.search(r"\d{6}", msgs[0].message) if msgs else None
    return found[0] if found else None


def sign_up_in_browser(page, data_dir: Path, *, pid: str, name: str, phone: str, password: str) -> None:  # type: ignore[no-untyped-def]
    """Fill the sign-up form on the booking sign-in page, then the code from the outbox."""
    page.locator("#register input[name=id_number]").fill(pid)
    page.locator("#register input[name=name]").fill(name)
    page.locator("#register input[name=phone]").fill(phone)
    page.locator("#register input[name=password]").fill(password)
    page.locator("#register button").click()
    page.wait_for_selector("#verify")
    assert "验证码已发送" in page.locator("#msg").inner_text()
    code = code_from_outbox(data_dir, phone)
    assert code is not None
    page.locator("#verify input[name=code]").fill(code)
    page.locator("#verify button").click()


@pytest.fixture(scope="module")
def signup_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("e2e-signup")
    with serve(data_dir) as base:
        yield base, data_dir


def test_sign_up_with_the_code_from_the_outbox(
    signup_server: tuple[str, Path], page, artifacts: Path
) -> None:  # type: ignore[no-untyped-def]
    base, data_dir = signup_server
    pid, phone = make_id("320104", date(1990, 4, 2), 357), "13951234567"
    on_record(data_dir, pid, phone)
    page.goto(f"{base}/booking/login")
    # a wrong code first: refused on the same page, nothing signed in
    page.locator("#register input[name=id_number]").fill(pid)
    page.locator("#register input[name=name]").fill("钱多多")
    page.locator("#register input[name=phone]").fill(phone)
    page.locator("#register input[name=password]").fill("钟山风雨-2025")
    page.locator("#register button").click()
    page.wait_for_selector("#verify")
    code = code_from_outbox(data_dir, phone)
    assert code is not None
    page.locator("#verify input[name=code]").fill("000000" if code != "000000" else "111111")
    page.locator("#verify button").click()
    page.wait_for_selector("#verify")
    assert "验证码错误" in page.locator("#msg").inner_text()
    page.locator("#verify input[name=code]").fill(code)
    page.locator("#verify button").click()
    page.wait_for_url("**/booking/me**")
    assert "我的预约" in page.locator("main").inner_text()
    page.screenshot(path=str(artifacts / "signup-verified.png"), full_page=True)
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["rhip_token"]["httpOnly"] and cookies["rhip_token"]["sameSite"] == "Strict"
    page.goto(f"{base}/booking/me")
    assert "我的预约" in page.locator("main").inner_text()


def test_a_phone_not_on_record_gets_no_code(signup_server: tuple[str, Path], page) -> None:  # type: ignore[no-untyped-def]
    base, data_dir = signup_server
    pid, phone = make_id("320105", date(1970, 1, 9), 246), "13751234568"
    page.goto(f"{base}/booking/login")
    page.locator("#register input[name=id_number]").fill(pid)
    page.locator("#register input[name=name]").fill("冒名者")
    page.locator("#register input[name=phone]").fill(phone)
    page.locator("#register input[name=password]").fill("钟山风雨-2025")
    page.locator("#register button").click()
    page.wait_for_selector("#verify")
    assert "验证码已发送" in page.locator("#msg").inner_text()  # the same answer as for the owner
    assert code_from_outbox(data_dir, phone) is None
