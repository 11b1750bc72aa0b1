"""Shared health record tables: the serving store of record entries keyed by each institution's patient,
residents' consents and one-time access codes, and the tamper-evident access log (a hash chain)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rhip.clock import now
from rhip.db.base import Base, UtcDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class RecordEntry(Base):
    """One item of a person's timeline: a visit, diagnosis, prescription, report, admission, follow-up, a
    resident's own measurement. Keyed by the institution's patient (the EMPI resolves the person at read
    time, so a merge or unmerge never rewrites the store)."""

    __tablename__ = "records_entries"
    __table_args__ = (
        UniqueConstraint("institution_code", "source", "business_key", name="uq_records_entries_source_key"),
        Index("ix_records_entries_patient", "institution_code", "patient_key", "occurred_at"),
        Index("ix_records_entries_id_number", "id_number", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    institution_code: Mapped[str] = mapped_column(String(32))
    patient_key: Mapped[str] = mapped_column(String(64))  # the institution's patient id or health-record no
    id_number: Mapped[str | None] = mapped_column(String(18))
    source: Mapped[str] = mapped_column(String(40))  # catalogue table, or "resident"
    business_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(24), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    title: Mapped[str] = mapped_column(String(200))
    code: Mapped[str | None] = mapped_column(String(50))
    abnormal: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class Consent(Base):
    """A resident's authorisation for an institution (or one doctor) to see the whole record: a grant in the
    portal, a visit-long consent from a one-time code, or a break-the-glass emergency access."""

    __tablename__ = "records_consents"
    __table_args__ = (Index("ix_records_consents_person", "person_id", "ends_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))  # grant | code | emergency
    grantee_institution: Mapped[str] = mapped_column(String(32))
    grantee_user: Mapped[str | None] = mapped_column(String(128))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reason: Mapped[str | None] = mapped_column(String(500))
    reviewed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class AccessCode(Base):
    """A six-digit code a resident reads to a doctor at the visit; stored hashed, one use, ten minutes."""

    __tablename__ = "records_access_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(String(40), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), index=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    used_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class AccessLog(Base):
    """Every view of a record (allowed or refused), written before the data is returned; each row's hash
    covers its fields and the previous row's hash, so an edited or deleted row breaks the chain."""

    __tablename__ = "records_access_log"
    __table_args__ = (
        Index("ix_records_access_log_person", "person_id", "at"),
        Index("ix_records_access_log_institution", "institution_code", "at"),
        Index("ix_records_access_log_chain", "chain", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    institution_code: Mapped[str | None] = mapped_column(String(32))
    person_id: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(32))  # view | reports | report | reminders | everything …
    basis: Mapped[str] = mapped_column(String(64))  # self | own-institution | consent:N | emergency:N | none
    outcome: Mapped[str] = mapped_column(String(16))  # allowed | refused
    detail: Mapped[str | None] = mapped_column(String(300))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    chain: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")  # its hash chain


class ChainHead(Base):
    """The last hash of one chain of the access log (id = chain + 1), locked by each writer of that chain so
    it never forks; the log is split into a few chains so concurrent views do not all wait on one lock."""

    __tablename__ = "records_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str | None] = mapped_column(String(64))  # the hash before last_hash


class SyncedBatch(Base):
    """An intake batch already absorbed into the serving store."""

    __tablename__ = "records_synced_batches"

    batch_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    entries: Mapped[int] = mapped_column(BigInteger, default=0)
    synced_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
