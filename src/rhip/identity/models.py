"""Identity tables: persons (EMPI ids), the link of each institution's patient record to its person,
the review queue, and the merge/unmerge log that makes every decision reversible."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from rhip.clock import now
from rhip.db.base import Base, UtcDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")

ACTIVE = "active"
MERGED = "merged"
OPEN = "open"
BANDS = ("auto", "review", "new")


class Person(Base):
    """One person (主索引): a stable EMPI id; a merged person points to the one it was merged into."""

    __tablename__ = "identity_persons"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    merged_into: Mapped[str | None] = mapped_column(String(24), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class PatientRecord(Base):
    """One institution's patient record (institution + local id) and the person it is linked to."""

    __tablename__ = "identity_records"
    __table_args__ = (
        UniqueConstraint("institution_code", "local_id", name="uq_identity_records_institution_local"),
        Index("ix_identity_records_key_name_birth", "key_name_birth"),
        Index("ix_identity_records_key_birth_district", "key_birth_district"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    institution_code: Mapped[str] = mapped_column(String(32))
    local_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(
        ForeignKey("identity_persons.id", name="fk_identity_records_person_id_identity_persons"), index=True
    )
    source: Mapped[str] = mapped_column(String(32))
    # as recorded
    name_raw: Mapped[str | None] = mapped_column(String(64))
    id_raw: Mapped[str | None] = mapped_column(String(32))
    birth_date: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str | None] = mapped_column(String(1))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    district: Mapped[str | None] = mapped_column(String(64))
    # normalised for linking
    name: Mapped[str | None] = mapped_column(String(64), index=True)
    py: Mapped[str | None] = mapped_column(String(160), index=True)
    py_loose: Mapped[str | None] = mapped_column(String(160))
    id_number: Mapped[str | None] = mapped_column(String(18), index=True)
    id_valid: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    guardian_id: Mapped[str | None] = mapped_column(String(18), index=True)
    key_name_birth: Mapped[str | None] = mapped_column(String(180))
    key_birth_district: Mapped[str | None] = mapped_column(String(80))
    # how it was linked
    band: Mapped[str] = mapped_column(String(8))
    probability: Mapped[float] = mapped_column(Float)
    linked_by: Mapped[str] = mapped_column(String(48))
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class Review(Base):
    """An uncertain pair for a data steward: a record and the person it may belong to."""

    __tablename__ = "identity_reviews"
    __table_args__ = (
        UniqueConstraint("record_id", "candidate_person_id", name="uq_identity_reviews_record_candidate"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    record_id: Mapped[int] = mapped_column(
        ForeignKey("identity_records.id", name="fk_identity_reviews_record_id_identity_records"), index=True
    )
    candidate_person_id: Mapped[str] = mapped_column(String(24), index=True)
    candidate_record_id: Mapped[int | None] = mapped_column(BigId)
    probability: Mapped[float] = mapped_column(Float)
    levels: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True, default=OPEN)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class MergeEvent(Base):
    """A merge or unmerge: which records moved from which person to which, so it can be undone."""

    __tablename__ = "identity_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    from_person_id: Mapped[str] = mapped_column(String(24), index=True)
    to_person_id: Mapped[str] = mapped_column(String(24), index=True)
    record_ids: Mapped[list[int]] = mapped_column(JSON)
    review_id: Mapped[int | None] = mapped_column(BigId)
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(String(255))
    undone: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
