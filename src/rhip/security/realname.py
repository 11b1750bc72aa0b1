"""Real-name sign-up (实名注册): an account is bound to an ID number only once its person is proved.

Proof is a one-time code sent to a mobile number that the platform already holds for that person from
institutions' records (`known_phones`), or an in-person check of the ID card by staff at a counter or a
self-service terminal. Until then no account exists: a sign-up is a pending row. Every answer to the
applicant is the same whether or not the ID number, an account or a matching phone exists, and every
path hashes the password, so neither the words nor the timing tell.

Phones come from sources registered with `register_phone_source`: the `security_person_phones` table
(filled by institutions' records, e.g. the demo's synthetic city) is always one; the identity service
(EMPI) registers its persons' phones, e.g.::

    def _identity_phones(session, id_number):
        return [get_person(session, person_id=p).phone for p in find_persons(session, id_number=id_number)]

    realname.register_phone_source("identity", _identity_phones)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.db.engine import dialect_insert
from rhip.errors import Invalid
from rhip.security import sms, throttle
from rhip.security.masking import mask_id
from rhip.security.models import PersonPhone, Signup, User
from rhip.security.passwords import check_password
from rhip.security.service import audit, hash_password

CODE_TTL = timedelta(minutes=5)
SIGNUP_TTL = timedelta(minutes=30)
RESEND_AFTER = timedelta(seconds=60)
MAX_CODE_ATTEMPTS = 5
MAX_CODES = 5
ACCEPTED = "如果身份证号与手机号与平台登记的信息一致，验证码已发送至该手机，5 分钟内有效"
REFUSED = "验证码错误或已失效，请重新获取"

PhoneSource = Callable[[Session, str], Iterable[str | None]]
_SOURCES: dict[str, PhoneSource] = {}


def register_phone_source(name: str, source: PhoneSource) -> None:
    """Add a place where the platform holds persons' mobile numbers (by ID number)."""
    _SOURCES[name] = source


def _table_phones(session: Session, id_number: str) -> list[str]:
    return list(session.scalars(select(PersonPhone.phone).where(PersonPhone.id_number == id_number)))


register_phone_source("institutions", _table_phones)


def known_phones(session: Session, id_number: str) -> set[str]:
    """Every mobile number some institution's records hold for this ID number."""
    found: set[str] = set()
    for source in _SOURCES.values():
        found.update(p for p in source(session, id_number) if p)
    return found


def record_person_phone(
    session: Session, *, id_number: str, phone: str, source: str, institution_code: str | None = None
) -> None:
    """Note that an institution's records hold this phone for this person (idempotent)."""
    session.execute(
        dialect_insert(session, PersonPhone)
        .values(
            id_number=id_number,
            phone=phone,
            source=source[:32],
            institution_code=institution_code,
            created_at=now(),
        )
        .on_conflict_do_nothing(index_elements=["id_number", "phone"])
    )


def _code_hash(secret: str, signup_id: str, code: str) -> str:
    return hmac.new(secret.encode(), f"{signup_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _account(session: Session, id_number: str) -> User | None:
    return session.scalar(select(User).where(User.username == id_number))


def _send_code(session: Session, signup: Signup, secret: str) -> None:
    code = f"{secrets.randbelow(1_000_000):06d}"
    t = now()
    signup.code_hash = _code_hash(secret, signup.id, code)
    signup.code_expires_at = t + CODE_TTL
    signup.codes_sent += 1
    signup.attempts = 0
    throttle.fail(session, throttle.CODE_PHONE, signup.phone)
    sms.queue(
        session,
        phone=signup.phone,
        purpose="signup",
        message=f"【南京卫生健康】您的实名注册验证码为 {code}，5 分钟内有效。如非本人操作请忽略。",
    )


def _may_get_code(session: Session, signup: Signup) -> bool:
    account = _account(session, signup.id_number)
    if account is not None and account.verified_at is not None:
        return False  # the person already has a proved account: nothing to bind
    return signup.phone in known_phones(session, signup.id_number)


def start_signup(
    session: Session,
    *,
    id_number: str,
    name: str,
    phone: str,
    password: str,
    secret: str,
    send_code: bool = True,
) -> Signup:
    """Record a sign-up and text a code when the phone is one the platform holds for that person.

    The ID number and phone must already be validated and normalised by the caller. The answer is the
    same sign-up either way; 429 when the phone has had too many codes.
    """
    check_password(password, username=id_number)
    throttle.check(session, throttle.CODE_PHONE, phone)
    t = now()
    signup = Signup(
        id=secrets.token_urlsafe(32),
        id_number=id_number,
        name=name,
        phone=phone,
        password_hash=hash_password(password),  # always: the same time on every path
        attempts=0,
        codes_sent=0,
        status="pending",
        created_at=t,
        expires_at=t + SIGNUP_TTL,
    )
    session.add(signup)
    session.flush()
    if send_code and _may_get_code(session, signup):
        _send_code(session, signup, secret)
    return signup


def _pending(session: Session, signup_id: str) -> Signup | None:
    signup = session.get(Signup, signup_id[:43])
    if signup is None or signup.status != "pending" or signup.expires_at <= now():
        return None
    return signup


def resend_code(session: Session, *, signup_id: str, secret: str) -> None:
    """Text a new code for a pending sign-up (once a minute, MAX_CODES in all); same answer always."""
    signup = _pending(session, signup_id)
    if signup is None or signup.codes_sent >= MAX_CODES:
        return
    throttle.check(session, throttle.CODE_PHONE, signup.phone)
    last = signup.code_expires_at
    if last is not None and last - CODE_TTL + RESEND_AFTER > now():
        return
    if _may_get_code(session, signup):
        _send_code(session, signup, secret)


def confirm_signup(session: Session, *, signup_id: str, code: str, secret: str) -> tuple[User, str] | None:
    """The new, verified account and its phone when the code is right; None otherwise (a wrong code
    is counted).

    None is the caller's cue to commit (so the attempt counts) and refuse with REFUSED.
    """
    signup = _pending(session, signup_id)
    if signup is None or signup.code_hash is None or signup.code_expires_at is None:
        return None
    if signup.code_expires_at <= now() or signup.attempts >= MAX_CODE_ATTEMPTS:
        return None
    if not hmac.compare_digest(signup.code_hash, _code_hash(secret, signup.id, code.strip())):
        signup.attempts += 1
        return None
    user = _bind(session, signup, via="sms", actor=signup.id_number)
    return (user, signup.phone) if user is not None else None


def confirm_in_person(
    session: Session, *, id_number: str, actor: str, institution_code: str | None = None
) -> tuple[User, str | None]:
    """Staff or a terminal checked the ID card: the newest pending sign-up of that ID number becomes
    a verified account (or a legacy unverified account is marked verified)."""
    signup = session.scalar(
        select(Signup)
        .where(Signup.id_number == id_number, Signup.status == "pending", Signup.expires_at > now())
        .order_by(Signup.created_at.desc())
        .limit(1)
    )
    if signup is not None:
        user = _bind(session, signup, via="in-person", actor=actor, institution_code=institution_code)
        if user is not None:
            return user, signup.phone
    account = _account(session, id_number)
    if account is not None and account.role == "resident" and account.verified_at is None:
        account.verified_at, account.verified_via = now(), "in-person"
        audit(
            session,
            actor=actor,
            action="account.verify",
            target=_mask(id_number),
            institution_code=institution_code,
            detail={"via": "in-person"},
        )
        return account, None
    raise Invalid("该身份证号没有待核验的注册申请，请居民先在网上或终端提交注册", code="no-pending-signup")


def _mask(id_number: str) -> str:
    return mask_id(id_number) or ""


def _bind(
    session: Session, signup: Signup, *, via: str, actor: str, institution_code: str | None = None
) -> User | None:
    t = now()
    account = _account(session, signup.id_number)
    if account is not None and account.verified_at is not None:
        signup.status, signup.done_at = "refused", t
        return None
    if account is None:
        account = User(
            username=signup.id_number,
            display_name=signup.name,
            password_hash=signup.password_hash,
            role="resident",
            institution_code=None,
            active=True,
            created_at=t,
        )
        session.add(account)
    else:  # an unproved account from before: the proved person takes it over
        account.password_hash, account.display_name, account.active = signup.password_hash, signup.name, True
    account.verified_at, account.verified_via = t, via
    signup.status, signup.done_at, signup.code_hash = "verified", t, None
    session.flush()
    audit(
        session,
        actor=actor[:128] if via == "in-person" else _mask(actor),
        role="resident" if via == "sms" else None,
        action="account.verify",
        target=_mask(signup.id_number),
        institution_code=institution_code,
        detail={"via": via},
    )
    return account
