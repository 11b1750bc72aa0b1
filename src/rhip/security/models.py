"""Users, institution API keys and the append-only audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from rhip.clock import now
from rhip.db.base import Base, UtcDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class User(Base):
    """A person who signs in: resident, doctor, uploader, agent, manager, auditor or admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32), index=True)
    institution_code: Mapped[str | None] = mapped_column(String(32), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # created by `rhip demo` with a generated password (var/demo/accounts.txt): not for real use
    demo: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    # when the account was proved to belong to its person (residents: SMS code or an in-person check);
    # staff accounts are created verified by the admin who creates them
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    verified_via: Mapped[str | None] = mapped_column(String(16))


class ApiKey(Base):
    """A machine credential of one institution, for uploads; only its hash is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(128))
    institution_code: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(128))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuditEvent(Base):
    """One security-relevant action; rows are never updated or deleted (triggers enforce it)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    role: Mapped[str | None] = mapped_column(String(32))
    institution_code: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    client_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))


class Throttle(Base):
    """Failures of one kind under one key (an account or a client address), shared by every worker."""

    __tablename__ = "security_throttle"

    key: Mapped[str] = mapped_column(String(96), primary_key=True)  # scope:sha256 of the value
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class RevokedToken(Base):
    """A token withdrawn before its expiry (sign-out); kept until it would have expired."""

    __tablename__ = "security_revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    revoked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, index=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Signup(Base):
    """A real-name sign-up waiting for its one-time code (or an in-person check); no account exists yet."""

    __tablename__ = "security_signups"

    id: Mapped[str] = mapped_column(String(43), primary_key=True)  # random, given to the applicant
    id_number: Mapped[str] = mapped_column(String(18), index=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(11))
    password_hash: Mapped[str] = mapped_column(String(255))
    code_hash: Mapped[str | None] = mapped_column(String(64))  # HMAC of the current code; None: none sent
    code_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # wrong codes entered
    codes_sent: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class PersonPhone(Base):
    """A mobile number that an institution's records hold for a person (the codes go only there)."""

    __tablename__ = "security_person_phones"

    id_number: Mapped[str] = mapped_column(String(18), primary_key=True)
    phone: Mapped[str] = mapped_column(String(11), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    institution_code: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class SmsMessage(Base):
    """The SMS outbox: every text the platform sends, delivered by the configured adapter."""

    __tablename__ = "security_sms_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    phone: Mapped[str] = mapped_column(String(11), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending/sent/failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
