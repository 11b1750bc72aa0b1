"""Real-name resident accounts: a validated ID number, a name, a password and a mobile number, bound
only once the person is proved (a one-time code to a phone the platform holds for them, or an ID-card
check at a counter: `rhip.security.realname`).

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
from rhip.identity import service as identity
from rhip.security import realname
from rhip.security.models import Signup, User

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


def register_resident(
    session: Session, *, id_number: str, name: str, phone: str, password: str, secret: str
) -> Signup:
    """Real-name sign-up, step 1: a pending sign-up; a code goes to the phone only when the platform
    holds that phone for that person (the answer never says which)."""
    pid = person_id(id_number)
    number = mobile(phone)
    name = _name(name)
    return realname.start_signup(
        session, id_number=pid, name=name, phone=number, password=password, secret=secret
    )


def confirm_resident(session: Session, *, signup_id: str, code: str, secret: str) -> User | None:
    """Step 2: the code proves the person: the account is created and the phone bound (its cap
    applies); None for a wrong, expired or used code (commit, then refuse with realname.REFUSED)."""
    done = realname.confirm_signup(session, signup_id=signup_id, code=code, secret=secret)
    if done is None:
        return None
    user, number = done
    _bind_phone(session, person=user.username, number=number)
    return user


def verify_in_person(
    session: Session, *, id_number: str, actor: str, institution_code: str | None = None
) -> User:
    """A counter clerk or a terminal checked the ID card: the person's pending sign-up becomes a
    verified account (or an old unverified account is marked verified)."""
    user, number = realname.confirm_in_person(
        session, id_number=person_id(id_number), actor=actor, institution_code=institution_code
    )
    if number is not None:
        _bind_phone(session, person=user.username, number=number)
    return user


def register_in_person(
    session: Session,
    *,
    id_number: str,
    name: str,
    phone: str,
    password: str,
    actor: str,
    institution_code: str | None = None,
) -> User:
    """Registration at a counter or terminal with the ID card in hand: sign-up and check at once."""
    pid = person_id(id_number)
    realname.start_signup(
        session,
        id_number=pid,
        name=_name(name),
        phone=mobile(phone),
        password=password,
        secret="",
        send_code=False,
    )
    return verify_in_person(session, id_number=pid, actor=actor, institution_code=institution_code)


def _name(name: str) -> str:
    name = (name or "").strip()
    if not 2 <= len(name) <= 32:
        raise Invalid("姓名应为 2–32 个字", code="bad-name")
    return name


def _bind_phone(session: Session, *, person: str, number: str) -> None:
    """Bind a verified person to their phone under the platform's people-per-phone cap."""
    if session.get(PhonePerson, person) is not None:
        return
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
    session.add(PhonePerson(person_id=person, phone=number, created_at=t))
    session.flush()


def _booking_phones(session: Session, id_number: str) -> list[str]:
    """Booking's real-name records: the phone a verified resident is bound to."""
    return [p for p in [phone_of(session, person=id_number)] if p]


def _identity_phones(session: Session, id_number: str) -> list[str]:
    """The EMPI's persons with this ID number: every mobile number their institutions' records carry."""
    phones: list[str] = []
    for person in identity.find_persons(session, id_number=id_number):
        phones.extend(r.phone for r in identity.get_person(session, person_id=person).records if r.phone)
    return phones


realname.register_phone_source("booking", _booking_phones)
realname.register_phone_source("identity", _identity_phones)


def phone_of(session: Session, *, person: str) -> str | None:
    """The mobile number a person registered with, if any."""
    row = session.get(PhonePerson, person)
    return row.phone if row else None
