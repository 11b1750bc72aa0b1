"""The portal as a newcomer finds it: navigation that knows the user, month pickers on data, 4xx for
months out of range, the staff desk's hospital picker, the demo's accounts."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.security.models import User
from rhip.security.roles import Role
from rhip.web import demo as portal_demo

Auth = Callable[..., dict[str, str]]


def _nav(html: str) -> str:
    return html[html.index("<header") : html.index("</header>")]


def test_anonymous_navigation_offers_sign_in_and_public_sections(client: TestClient) -> None:
    bar = _nav(client.get("/").text)
    assert 'href="/login"' in bar and "退出" not in bar
    assert 'href="/booking"' in bar and 'href="/registry/institutions"' in bar
    assert 'href="/quality"' not in bar and 'href="/bulletin"' not in bar and 'href="/booking/me"' not in bar


def test_signed_in_navigation_names_the_user_and_shows_the_roles_sections(
    client: TestClient, auth: Auth
) -> None:
    from rhip.security.service import issue_token
    from tests.conftest import SECRET

    manager = {"Authorization": "Bearer " + issue_token(SECRET, subject="m1", role="manager", name="刘主任")}
    bar = _nav(client.get("/", headers=manager).text)
    assert "刘主任（信息中心管理员）" in bar and 'href="/logout"' in bar and 'href="/login"' not in bar
    assert all(
        f'href="{p}"' in bar for p in ("/quality", "/bulletin", "/intake", "/booking/stats", "/booking/staff")
    )
    assert 'href="/booking/me"' not in bar
    resident = _nav(client.get("/booking", headers=auth("resident", subject="320102198605171232")).text)
    assert 'href="/booking/me"' in resident and "（居民）" in resident
    assert 'href="/quality"' not in resident and 'href="/booking/stats"' not in resident


@pytest.mark.parametrize("month", ["9999-12", "0001-01"])
@pytest.mark.parametrize(
    "url",
    [
        "/quality?month={m}",
        "/api/v1/quality/figures?month={m}",
        "/bulletin?month={m}",
        "/bulletin/{m}.xlsx",
        "/api/v1/booking/stats/{m}",
        "/booking/stats?month={m}",
        "/intake?month={m}",
    ],
)
def test_months_out_of_range_are_refused_precisely(
    client: TestClient, auth: Auth, url: str, month: str
) -> None:
    r = client.get(url.format(m=month), headers=auth("manager"))
    assert r.status_code == 422, r.text[:300]
    assert "bad-month" in r.text


def test_pickers_default_to_a_month_and_list_it(client: TestClient, auth: Auth) -> None:
    for url in ("/quality", "/booking/stats", "/intake"):
        r = client.get(url, headers=auth("manager"))
        assert r.status_code == 200, (url, r.text[:300])
        assert 'id="month-picker"' in r.text and " selected>" in r.text


def test_staff_desk_lets_a_manager_pick_the_hospital(client: TestClient, auth: Auth) -> None:
    r = client.get("/booking/staff", headers=auth("manager"))
    assert r.status_code == 200 and 'id="hospital-picker"' in r.text
    assert '<option value="H029">' in r.text or "<option value=" in r.text
    assert "?hospital=" not in r.text and "请指定医院" not in r.text


def test_booking_statistics_page_is_for_managers(client: TestClient, auth: Auth) -> None:
    assert client.get("/booking/stats", headers=auth("manager")).status_code == 200
    assert (
        client.get("/booking/stats", headers=auth("resident", subject="320102198605171232")).status_code
        == 403
    )
    assert client.get("/booking/stats").status_code == 401


def test_demo_accounts_are_marked_and_get_new_passwords(session: Session, tmp_path: Path) -> None:
    with session.begin():
        first = [portal_demo._ensure(session, a) for a in portal_demo.planned()]
    with session.begin():
        again = [portal_demo._ensure(session, a) for a in portal_demo.planned()]
    assert {a.role for a in first} == set(Role)
    assert all(a.password != b.password and len(a.password) >= 16 for a, b in zip(first, again, strict=True))
    with session.begin():
        users = session.scalars(select(User).where(User.username.in_([a.username for a in again]))).all()
        assert len(users) == len(again) and all(u.demo and u.active for u in users)
        assert not session.scalars(
            select(User).where(User.demo.is_(False), User.username.like("demo-%"))
        ).all()
    path = tmp_path / "demo" / "accounts.txt"
    path.parent.mkdir()
    path.write_text("old", encoding="utf-8")
    path.chmod(0o644)
    portal_demo.write_file(path, again)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [(a.username, a.password) for a in portal_demo.read_file(path)] == [
        (a.username, a.password) for a in again
    ]


def test_integrity_error_from_a_race_is_a_409_problem() -> None:
    from fastapi import FastAPI
    from sqlalchemy.exc import IntegrityError

    from rhip.web import problems

    app = FastAPI()
    problems.install(app)

    @app.get("/api/race")
    def race() -> None:
        raise IntegrityError(
            "INSERT INTO users ...", {}, Exception("UNIQUE constraint failed: users.username")
        )

    r = TestClient(app).get("/api/race")
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "conflict-race" and "UNIQUE" not in r.text


def test_living_demo_publishes_the_coming_days_for_booking_and_fhir(
    client: TestClient, db, auth: Auth
) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from rhip.booking import demo as booking_demo
    from rhip.clock import local_now

    today = local_now().date()
    made = booking_demo.publish_coming(db, today=today, days=9)
    again = booking_demo.publish_coming(db, today=today, days=9)  # a second demo run adds nothing
    assert made > 0 and again == 0
    r = client.get("/fhir/r4/Slot", params={"status": "free", "start": f"ge{today + timedelta(days=1)}"})
    assert r.status_code == 200
    bundle = r.json()
    assert bundle["resourceType"] == "Bundle" and bundle.get("total", len(bundle.get("entry", []))) > 0
    assert "暂无已发布的排班" not in client.get("/booking").text
