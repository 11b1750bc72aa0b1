"""Real-name resident accounts: a validated ID number, a name, a password and a mobile number.

One mobile number may register at most `max_people_per_phone` real-name people (就诊人; platform rule,
default 5: a parent registers their children and their own parents on one phone). The cap is taken by
ONE conditional UPDATE on the number's row (`people = people + 1 WHERE people < cap`), like a booking
takes a place, so concurrent registrations cannot pass it.
"""

from __future__ import annotations

import re

from sqlalchemy import update
from sqlalchemy.orm import Session

from rhip.booking import rules as R
from rhip.booking.common import get_rules, person_id
from rhip.booking.models import Phone, PhonePerson
from rhip.clock import now
from rhip.db.engine import dialect_insert
from rhip.errors import Conflict, Invalid
from rhip.security import service as security
from rhip.security.models import User

_MOBILE = re.compile(r"1[3-9]\d{9}")


def mobile(value: str) -> str:
    """A mainland mobile number as 11 digits (spaces, dashes and +86 allowed), or Invalid."""
    digits = re.sub(r"[\s-]", "", value or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if not _MOBILE.fullmatch(digits):
        raise Invalid("手机号码应为 11 位中国大陆手机号（1 开头）", code="bad-phone")
    return digits


def mask(phone: str) -> str:
    """138****5678: how a phone number is shown."""
    return f"{phone[:3]}****{phone[-4:]}"


def register_resident(session: Session, *, id_number: str, name: str, phone: str, password: str) -> User:
    """Real-name registration: the ID number becomes the account name; the phone's cap is enforced."""
    pid = person_id(id_number)
    number = mobile(phone)
    name = (name or "").strip()
    if not 2 <= len(name) <= 32:
        raise Invalid("姓名应为 2–32 个字", code="bad-name")
    user = security.create_user(session, username=pid, password=password, role="resident", display_name=name)
    cap = get_rules(session, hospital_code=R.PLATFORM).max_people_per_phone
    t = now()
    session.execute(
        dialect_insert(session, Phone)
        .values(phone=number, people=0, updated_at=t)
        .on_conflict_do_nothing(index_elements=["phone"])
    )
    taken = session.execute(
        update(Phone)
        .where(Phone.phone == number, Phone.people < cap)
        .values(people=Phone.people + 1, updated_at=t)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            f"手机号 {mask(number)} 已绑定 {cap} 位就诊人，达到上限，不能再注册", code="phone-cap", cap=cap
        )
    session.add(PhonePerson(person_id=pid, phone=number, created_at=t))
    session.flush()
    return user


def phone_of(session: Session, *, person: str) -> str | None:
    """The mobile number a person registered with, if any."""
    row = session.get(PhonePerson, person)
    return row.phone if row else None
