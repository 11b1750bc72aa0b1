"""Helpers for tests that need a resident account the real way: a phone on record, sign-up, the code
from the SMS outbox, verification."""

from __future__ import annotations

import random
import re

from fastapi.testclient import TestClient
from httpx import Response

from rhip.db.engine import Database
from rhip.security import realname, sms


def new_phone() -> str:
    """A random mainland mobile number (the shared test database may hold earlier ones)."""
    return f"1{random.choice('3456789')}{random.randint(0, 10**9 - 1):09d}"


def on_record(db: Database, pid: str, phone: str) -> None:
    """An institution's records hold this phone for this person."""
    with db.session() as s, s.begin():
        realname.record_person_phone(s, id_number=pid, phone=phone, source="test", institution_code="H001")


def code_sent_to(db: Database, phone: str) -> str | None:
    """The newest code texted to a phone, from the outbox (None when nothing was sent)."""
    with db.session() as s, s.begin():
        msgs = sms.outbox(s, phone=phone, limit=1)
    found = re.search(r"\d{6}", msgs[0].message) if msgs else None
    return found[0] if found else None


def sign_up_page(
    client: TestClient, db: Database, *, pid: str, name: str, phone: str, password: str, next: str = ""
) -> Response:
    """Sign up through the pages with the code from the outbox; the answer is the final redirect's page."""
    on_record(db, pid, phone)
    data = {"id_number": pid, "name": name, "phone": phone, "password": password}
    if next:
        data["next"] = next
    r = client.post("/booking/register", data=data)
    found = re.search(r'name="signup_id" value="([^"]+)"', r.text)
    assert found, r.text[:500]
    code = code_sent_to(db, phone)
    assert code is not None
    return client.post(
        "/booking/register/verify",
        data={"signup_id": found[1], "code": code, **({"next": next} if next else {})},
    )
