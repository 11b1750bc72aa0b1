"""Real-name accounts capped per phone number, in-clinic places flowing back before the session, and
停诊 notifications (outbox → job → the resident's page), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip import clock
from rhip.booking import accounts, jobs as booking_jobs, notify, service as svc
from rhip.booking.models import Notification, Phone, PhonePerson
from rhip.db.engine import Database
from rhip.errors import Conflict, Invalid
from rhip.security.roles import Role
from rhip.security.service import Principal
from tests.booking.conftest import STAFF, new_person, schedule
from tests.booking.test_api import API
from tests.booking.test_service import book, refused, slots_of
from tests.security.signup import code_sent_to, new_phone, on_record, sign_up_page

Auth = Callable[..., dict[str, str]]


def register(s: Session, phone: str, pid: str | None = None) -> str:
    """A resident registered at a counter with the ID card checked (no code needed)."""
    pid = pid or new_person()
    with s.begin():
        accounts.register_in_person(
            s,
            id_number=pid,
            name="钱多多",
            phone=phone,
            password="secret-123",
            actor="clerk",
            institution_code="H001",
        )
    return pid


# ------------------------------------------------------------------ people per phone number


def test_phone_number_holds_at_most_the_platform_cap(bs: Session) -> None:
    phone = new_phone()
    people = [register(bs, phone) for _ in range(5)]
    with pytest.raises(Conflict) as exc:
        register(bs, f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}")  # the same number, written otherwise
    assert exc.value.code == "phone-cap" and "5 位就诊人" in exc.value.detail
    with bs.begin():  # the refused registration left no account behind
        assert bs.scalar(select(Phone.people).where(Phone.phone == phone)) == 5
        assert bs.scalar(select(func.count()).select_from(PhonePerson).where(PhonePerson.phone == phone)) == 5
        assert accounts.phone_of(bs, person=people[0]) == phone
    with pytest.raises(Invalid) as bad:
        register(bs, "2345678901")
    assert bad.value.code == "bad-phone"
    with pytest.raises(Invalid) as not_here, bs.begin():
        svc.set_rules(bs, hospital_code="H020", values={"max_people_per_phone": 9}, actor=STAFF)
    assert not_here.value.code == "platform-rule"
    try:
        with bs.begin():
            svc.set_rules(bs, hospital_code="*", values={"max_people_per_phone": 6}, actor=STAFF)
        register(bs, phone)  # the platform raised the cap
        with pytest.raises(Conflict):
            register(bs, phone)
    finally:
        with bs.begin():
            svc.set_rules(bs, hospital_code="*", values={"max_people_per_phone": None}, actor=STAFF)


def test_phone_cap_holds_under_concurrent_registrations(bdb: Database) -> None:
    phone, results = new_phone(), []
    people = [new_person() for _ in range(12)]
    start = threading.Barrier(len(people))

    def go(pid: str) -> None:
        with bdb.session() as s:
            start.wait()
            try:
                register(s, phone, pid)
                results.append("ok")
            except Conflict as exc:
                results.append(exc.code)

    threads = [threading.Thread(target=go, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 5 and results.count("phone-cap") == 7, results
    with bdb.session() as s, s.begin():
        assert s.scalar(select(func.count()).select_from(PhonePerson).where(PhonePerson.phone == phone)) == 5


def test_register_api_sends_code_only_to_a_phone_on_record(client: TestClient, db: Database) -> None:
    phone, pid = new_phone(), new_person()
    body = {"id_number": pid, "name": "孙丽", "phone": phone, "password": "secret-123"}
    stranger = client.post(f"{API}/residents", json=body)  # the phone is nobody's record for pid
    assert stranger.status_code == 202 and code_sent_to(db, phone) is None
    on_record(db, pid, phone)
    r = client.post(f"{API}/residents", json=body)
    assert r.status_code == 202 and r.json()["message"] == stranger.json()["message"]
    code = code_sent_to(db, phone)
    assert code is not None
    wrong = client.post(
        f"{API}/residents/verify",
        json={"signup_id": r.json()["signup_id"], "code": "000000" if code != "000000" else "111111"},
    )
    assert wrong.status_code == 422 and wrong.json()["code"] == "bad-code"
    ok = client.post(f"{API}/residents/verify", json={"signup_id": r.json()["signup_id"], "code": code})
    assert ok.status_code == 201
    assert ok.json() == {
        "person_id": f"{pid[:6]}********{pid[-4:]}",
        "name": "孙丽",
        "phone": accounts.mask(phone),
    }
    used = client.post(f"{API}/residents/verify", json={"signup_id": r.json()["signup_id"], "code": code})
    assert used.status_code == 422  # single use
    again = client.post(f"{API}/residents", json=body)  # the account exists: same answer, no code
    assert again.status_code == 202 and again.json()["message"] == stranger.json()["message"]
    assert code_sent_to(db, phone) == code
    bad = client.post(f"{API}/residents", json={**body, "id_number": new_person(), "phone": "12345"})
    assert bad.status_code == 422 and bad.json()["code"] == "bad-phone"
    assert bad.headers["content-type"].startswith("application/problem+json")


def test_phone_cap_applies_when_the_code_binds(client: TestClient, db: Database) -> None:
    phone = new_phone()
    for _ in range(5):
        with db.session() as s:
            register(s, phone)
    pid = new_person()
    r = sign_up_page(client, db, pid=pid, name="孙丽", phone=phone, password="secret-123")
    assert "已绑定 5 位就诊人" in r.text


# ------------------------------------------------------------------ in-clinic reflow


def test_unused_clinic_places_flow_to_the_public_before_the_session(bs: Session, frozen: datetime) -> None:
    with bs.begin():
        svc.set_rules(
            bs, hospital_code="H025", values={"clinic_share_pct": 50, "clinic_reflow_hours": 12}, actor=STAFF
        )
    sched = schedule(bs, day=date(2025, 3, 10), hospital_code="H025", capacity=4)  # 08:00 on 10 March
    slot = next(s for s in slots_of(bs, sched.id) if s.cap_clinic == 2)
    doctor = Principal(subject="dr-25", role=Role.doctor, institution_code="H025")
    pid = new_person()
    appt = book(bs, slot.id, pid, actor=doctor)
    assert slot.clinic_reflow_at == datetime(2025, 3, 9, 20, 0, tzinfo=clock.SHANGHAI)
    with clock.frozen(datetime(2025, 3, 9, 19, 59, tzinfo=clock.SHANGHAI)), bs.begin():
        booking_jobs.run_jobs(bs)  # other tests' slots in the shared database may be due: look at this one
    with bs.begin():
        before = svc.get_slot(bs, slot_id=slot.id)
        bs.refresh(before)  # the jobs write with UPDATE statements: read the row, not the identity map
        assert (before.cap_public, before.cap_clinic, before.clinic_reflowed) == (2, 2, False)
    with clock.frozen(datetime(2025, 3, 9, 20, 0, tzinfo=clock.SHANGHAI)), bs.begin():
        assert booking_jobs.run_jobs(bs)["clinic_reflowed_slots"] >= 1
    with bs.begin():
        after = svc.get_slot(bs, slot_id=slot.id)
        bs.refresh(after)
        assert (after.cap_public, after.cap_clinic, after.booked_clinic) == (3, 1, 1)
        assert after.clinic_reflowed
    with clock.frozen(datetime(2025, 3, 9, 20, 30, tzinfo=clock.SHANGHAI)):
        refused(bs, "slot-full", slot.id, new_person(), actor=doctor)  # no in-clinic place left
        with bs.begin():  # the hospital cancels the in-clinic booking: its place goes to the public
            svc.cancel(bs, appointment_id=appt.id, actor=doctor)
        with bs.begin():
            after = svc.get_slot(bs, slot_id=slot.id)
            assert (after.cap_public, after.cap_clinic, after.booked_clinic) == (4, 0, 0)
        for _ in range(4):  # all four places are the public's now
            book(bs, slot.id, new_person(), actor=Principal("agent-25", Role.agent))
        refused(bs, "slot-full", slot.id, new_person(), actor=Principal("agent-25", Role.agent))
    with bs.begin():
        cleared = {"clinic_share_pct": None, "clinic_reflow_hours": None}
        svc.set_rules(bs, hospital_code="H025", values=cleared, actor=STAFF)


# ------------------------------------------------------------------ 停诊 notifications


def test_stop_notifies_booked_patients_through_their_channel(
    bs: Session, client: TestClient, auth: Auth, frozen: datetime
) -> None:
    sched = schedule(bs, day=date(2025, 3, 6))
    slots = slots_of(bs, sched.id)
    wechat, phone_booked = new_person(), new_person()
    book(bs, slots[0].id, wechat, channel="wechat_12320")
    book(bs, slots[1].id, phone_booked, actor=Principal("agent-9", Role.agent))
    with bs.begin():
        affected = svc.stop_schedule(bs, schedule_id=sched.id, reason="专家外出会诊", actor=STAFF)
    with bs.begin():
        rows = list(
            bs.scalars(select(Notification).where(Notification.appointment_id.in_([a.id for a in affected])))
        )
        by_person = {n.person_id: n for n in rows}
        assert {n.status for n in rows} == {"pending"} and len(rows) == 2
        assert by_person[wechat].channel == "wechat" and by_person[phone_booked].channel == "sms"
        assert "专家外出会诊" in by_person[wechat].message and "不计入爽约" in by_person[wechat].message
    delivered: list[str] = []

    def gateway(n: Notification) -> None:
        delivered.append(n.person_id)

    before = notify.set_sender("wechat", gateway)
    try:
        with bs.begin():
            counts = booking_jobs.run_jobs(bs)
    finally:
        notify.set_sender("wechat", before)
    assert wechat in delivered and counts["notifications_sent"] >= 2
    with bs.begin():
        assert {n.status for n in notify.get_all(bs, person=wechat)} == {"sent"}
        # the stop never counts against the patient: they may book the same department that day again
    other = schedule(bs, day=date(2025, 3, 6), sess="pm")
    assert book(bs, slots_of(bs, other.id)[0].id, wechat).status == "booked"
    me = auth("resident", subject=wechat)
    mine = client.get(f"{API}/notifications", headers=me).json()
    assert mine[0]["kind"] == "schedule_stopped" and mine[0]["status_label"] == "已发送"
    assert mine[0]["channel_label"] == "微信"
    assert client.get(f"{API}/notifications", headers=me, params={"person": phone_booked}).status_code == 403
    assert client.get(f"{API}/notifications", headers=auth("agent")).json()["code"] == "person-required"
    page = client.get("/booking/me", headers=me).text
    assert "我的通知" in page and "专家外出会诊" in page and "微信" in page


def test_a_failing_gateway_retries_then_gives_up(bs: Session, frozen: datetime) -> None:
    sched = schedule(bs, day=date(2025, 3, 7))
    pid = new_person()
    book(bs, slots_of(bs, sched.id)[0].id, pid)
    with bs.begin():
        svc.stop_schedule(bs, schedule_id=sched.id, reason="设备检修", actor=STAFF)

    def down(_n: Notification) -> None:
        raise ConnectionError("短信网关不可用")

    before = notify.set_sender("sms", down)
    try:
        for _ in range(notify.MAX_ATTEMPTS):
            with bs.begin():
                notify.deliver(bs)
    finally:
        notify.set_sender("sms", before)
    with bs.begin():
        (n,) = notify.get_all(bs, person=pid)
        assert (n.status, n.attempts, n.error) == ("failed", 3, "短信网关不可用")
    with bs.begin():  # a failed message is not sent again by later runs
        notify.deliver(bs)
    with bs.begin():
        (n,) = notify.get_all(bs, person=pid)
        assert (n.status, n.attempts) == ("failed", 3)
