"""Passwords, tokens, API keys and the append-only audit log, against the real database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from rhip import clock
from rhip.errors import Conflict, Invalid, Unauthorized
from rhip.security import service as security
from rhip.security.models import AuditEvent
from rhip.security.roles import Role

SECRET = "unit-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


def test_password_hash_roundtrip() -> None:
    h = security.hash_password("正确的密码123")
    assert h.startswith("$argon2id$")
    assert security.verify_password(h, "正确的密码123")
    assert not security.verify_password(h, "wrong-password")
    assert not security.verify_password("not-a-hash", "x")


def test_token_roundtrip_and_claims() -> None:
    tok = security.issue_token(SECRET, subject="u1", role="uploader", institution_code="H001")
    p = security.decode_token(SECRET, tok)
    assert (p.subject, p.role, p.institution_code, p.via) == ("u1", Role.uploader, "H001", "token")


def test_token_expiry_uses_the_clock() -> None:
    start = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    with clock.frozen(start):
        tok = security.issue_token(SECRET, subject="u1", role="doctor", ttl=timedelta(minutes=30))
    with clock.frozen(start + timedelta(minutes=29)):
        assert security.decode_token(SECRET, tok).role is Role.doctor
    with clock.frozen(start + timedelta(minutes=31)), pytest.raises(Unauthorized) as info:
        security.decode_token(SECRET, tok)
    assert info.value.code == "token-expired"


def test_token_tampering_and_wrong_secret_rejected() -> None:
    tok = security.issue_token(SECRET, subject="u1", role="resident")
    with pytest.raises(Unauthorized):
        security.decode_token("another-secret-0123456789-abcdefghijklmnopqrstuvwxyz", tok)
    head, body, sig = tok.split(".")
    with pytest.raises(Unauthorized):
        security.decode_token(SECRET, f"{head}.{body}x.{sig}")
    with pytest.raises(Unauthorized):
        security.decode_token(SECRET, "garbage")


def test_unknown_role_is_invalid() -> None:
    with pytest.raises(Invalid):
        security.issue_token(SECRET, subject="u", role="superuser")


def test_users_and_login(session: Session) -> None:
    name = f"doc-{uuid.uuid4().hex[:8]}"
    with session.begin():
        user = security.create_user(
            session, username=name, password="s3cret-pass", role="doctor", display_name="李医生"
        )
    assert user.id > 0 and user.password_hash != "s3cret-pass"
    with session.begin(), pytest.raises(Conflict):
        security.create_user(session, username=name, password="another-pass", role="doctor")
    with session.begin():
        assert security.authenticate(session, username=name, password="s3cret-pass").role == "doctor"
    with pytest.raises(Unauthorized), session.begin():
        security.authenticate(session, username=name, password="wrong-pass")
    with session.begin(), pytest.raises(Invalid):
        security.create_user(session, username=f"{name}x", password="short", role="doctor")
    with session.begin(), pytest.raises(Invalid):
        security.create_user(session, username=f"{name}y", password="long-enough", role="uploader")


def test_api_key_lifecycle(session: Session) -> None:
    with session.begin():
        key, plain = security.create_api_key(session, institution_code="H001", name="his")
    assert plain.startswith("rhip_") and key.key_hash not in plain
    with session.begin():
        p = security.verify_api_key(session, plain)
    assert (p.role, p.institution_code, p.via) == (Role.uploader, "H001", "api_key")
    with session.begin(), pytest.raises(Unauthorized):
        security.verify_api_key(session, plain[:-2] + "zz")
    with session.begin(), pytest.raises(Unauthorized):
        security.verify_api_key(session, "not-a-key")
    with session.begin():
        security.revoke_api_key(session, prefix=key.prefix)
    with session.begin(), pytest.raises(Unauthorized):
        security.verify_api_key(session, plain)


def test_audit_log_is_append_only(session: Session) -> None:
    marker = uuid.uuid4().hex
    with session.begin():
        security.audit(session, actor="tester", action="test.append", target=marker)
    event = session.scalar(select(AuditEvent).where(AuditEvent.target == marker))
    assert event is not None and event.at.tzinfo is not None
    session.rollback()
    for statement in (
        "UPDATE audit_events SET actor = 'mallory' WHERE target = :m",
        "DELETE FROM audit_events WHERE target = :m",
    ):
        with pytest.raises(DatabaseError, match="append-only"), session.begin():
            session.execute(text(statement), {"m": marker})
    assert session.scalar(select(AuditEvent.actor).where(AuditEvent.target == marker)) == "tester"
