"""Booking pages through the app: register with a real name, find, book, see and cancel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi.testclient import TestClient

from rhip.db.engine import Database
from tests.booking.conftest import new_person
from tests.booking.test_api import publish
from tests.security.signup import new_phone, sign_up_page


def test_register_find_book_cancel(
    client: TestClient, db: Database, auth: Callable[..., dict[str, str]], frozen: datetime
) -> None:
    sched = publish(client, auth, day="2025-03-07", capacity=2, hospital_code="H029")
    assert "登录后预约" in client.get("/booking/h/H029/d/03.04?day=2025-03-07").text
    pid = new_person()
    r = sign_up_page(client, db, pid=pid, name="赵钢", phone=new_phone(), password="secret-123")
    assert r.status_code == 200 and "我的预约" in r.text and "暂无预约记录" in r.text
    assert "南京市胸科医院" in client.get("/booking").text
    assert "心血管内科专业" in client.get("/booking/h/H029").text
    page = client.get("/booking/h/H029/d/03.04", params={"day": "2025-03-07"}).text
    assert sched["doctor_name"] in page and "预约</button>" in page
    r = client.post(
        "/booking/book", data={"slot_id": sched["slots"][0]["id"], "back": "/booking/h/H029/d/03.04"}
    )
    assert "预约成功" in r.text and "南京市胸科医院" in r.text and "已预约" in r.text
    again = client.post(
        "/booking/book", data={"slot_id": sched["slots"][1]["id"], "back": "/booking/h/H029/d/03.04"}
    )
    assert "最多预约 1 个号" in again.text  # refused by the department-day limit, shown on the page
    appt = client.get("/api/v1/booking/appointments").json()[0]["id"]
    r = client.post(f"/booking/cancel/{appt}")
    assert "已取消预约" in r.text and "已取消" in r.text
    client.post("/booking/logout")
    r = client.post("/booking/login", data={"id_number": pid, "password": "wrong-pass"})
    assert "用户名或密码错误" in r.text
    r = client.post(
        "/booking/register",
        data={"id_number": "110101199001011234", "name": "某某", "phone": "13912345678", "password": "x" * 8},
    )
    assert "身份证号码无效" in r.text


def test_family_doctor_signs_and_refers_then_hospital_sees_day_list(
    client: TestClient, auth: Callable[..., dict[str, str]], frozen: datetime
) -> None:
    sched = publish(client, auth, day="2025-03-17", capacity=10)  # tertiary: 3 family places per slot
    assert client.get("/booking/family", follow_redirects=False).status_code == 303
    fd = auth("family_doctor", institution="C32010201", subject="fd-page")
    page = client.get("/booking/family", params={"day": "2025-03-17"}, headers=fd).text
    assert "家庭医生工作台" in page and sched["doctor_name"] in page and "预约并上转" in page
    pid = new_person()
    slot = sched["slots"][0]["id"]
    form = {
        "slot_id": slot,
        "person_id": pid,
        "person_name": "钱芳",
        "reason": "胸痛待查",
        "day": "2025-03-17",
    }
    r = client.post("/booking/family/refer", data=form, headers=fd)
    assert "签约" in r.text and "转诊成功" not in r.text  # not signed yet: refused, said on the page
    r = client.post("/booking/family/sign", data={"person_id": pid}, headers=fd)
    assert "已签约" in r.text
    r = client.post("/booking/family/refer", data=form, headers=fd)
    assert "转诊成功" in r.text and "胸痛待查" in r.text and "上转" in r.text

    staff = auth("doctor", institution="H020", subject="staff-page")
    page = client.get("/booking/staff", params={"day": "2025-03-17"}, headers=staff).text
    assert "南京鼓楼医院" in page and sched["doctor_name"] in page
    assert "钱芳" in page and "家庭医生优先号源" in page and pid not in page  # masked ID number
    assert "1/" in page
    other = client.get(
        "/booking/staff", params={"hospital": "H020"}, headers=auth("resident"), follow_redirects=False
    )
    assert other.status_code == 303
    mgr = client.get(
        "/booking/staff", params={"day": "2025-03-17", "hospital": "H020"}, headers=auth("manager")
    )
    assert (
        "钱*" in mgr.text and "钱芳" not in mgr.text
    )  # a manager sees the list, names masked (security.masking)
