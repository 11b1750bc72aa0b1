"""Intake tables: receipts with per-table counts and problem lists, daily upload counts, CDA documents, and
the rollups the monthly figures read (`intake/rollup.py`).

The receipt row is the commit point of a batch: its Delta rows count only once `status` is committed.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from rhip.clock import now
from rhip.db.base import Base, UtcDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")

PENDING, COMMITTED, FAILED, ABORTED = "pending", "committed", "failed", "aborted"


class IntakeBatch(Base):
    """One upload (a receipt): batch files, a real-time post, a FHIR bundle or a CDA document."""

    __tablename__ = "intake_batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    institution_code: Mapped[str] = mapped_column(String(32), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    submitted_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, index=True)
    committed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    files: Mapped[list[Any]] = mapped_column(JSON, default=list)
    lake_tables: Mapped[list[Any]] = mapped_column(JSON, default=list)
    host: Mapped[str] = mapped_column(String(128), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    accepted: Mapped[int] = mapped_column(BigInteger, default=0)
    updated: Mapped[int] = mapped_column(BigInteger, default=0)
    revoked: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicate: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_detail: Mapped[str | None] = mapped_column(Text)


class IntakeBatchTable(Base):
    """Counts of one catalogue table within a batch."""

    __tablename__ = "intake_batch_tables"
    __table_args__ = (UniqueConstraint("batch_id", "table_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("intake_batches.id", ondelete="CASCADE"), index=True)
    table_name: Mapped[str] = mapped_column(String(64))
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    accepted: Mapped[int] = mapped_column(BigInteger, default=0)
    updated: Mapped[int] = mapped_column(BigInteger, default=0)
    revoked: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicate: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)


class IntakeProblem(Base):
    """One rejected record of a batch (问题清单): where it was, its key, the rule it broke, why."""

    __tablename__ = "intake_problems"
    __table_args__ = (Index("ix_intake_problems_batch_table", "batch_id", "table_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("intake_batches.id", ondelete="CASCADE"))
    table_name: Mapped[str] = mapped_column(String(64))
    file: Mapped[str | None] = mapped_column(String(255))
    row: Mapped[int] = mapped_column(BigInteger)
    business_key: Mapped[str | None] = mapped_column(String(255))
    rule: Mapped[str] = mapped_column(String(32), index=True)
    field: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)


class IntakeDailyCount(Base):
    """Records received per institution, table and day of 数据采集时间 (for 数据上传量 and 上传天数)."""

    __tablename__ = "intake_daily_counts"
    __table_args__ = (UniqueConstraint("institution_code", "table_name", "day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    institution_code: Mapped[str] = mapped_column(String(32), index=True)
    table_name: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date, index=True)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    accepted: Mapped[int] = mapped_column(BigInteger, default=0)
    updated: Mapped[int] = mapped_column(BigInteger, default=0)
    revoked: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicate: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)


class CdaDocument(Base):
    """A CDA shared document (WS/T 500) as received, kept whole and counted per type and institution."""

    __tablename__ = "intake_cda_documents"
    __table_args__ = (UniqueConstraint("institution_code", "document_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("intake_batches.id", ondelete="CASCADE"), index=True)
    institution_code: Mapped[str] = mapped_column(String(32), index=True)
    document_id: Mapped[str] = mapped_column(String(128))
    doc_type: Mapped[str] = mapped_column(String(32), index=True)
    title: Mapped[str] = mapped_column(String(128))
    effective_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)


class IntakeActivity(Base):
    """Current records per institution, table and event month (`_month`): count, amount total, real-time."""

    __tablename__ = "intake_activity"

    table_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    institution_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)
    amount: Mapped[float] = mapped_column(Double, default=0.0)
    n_realtime: Mapped[int] = mapped_column(BigInteger, default=0)


class IntakeRealtimeDays(Base):
    """Local days of a month with a stored real-time record, per institution and table (bit i: day i + 1)."""

    __tablename__ = "intake_realtime_days"

    table_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    institution_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    days: Mapped[int] = mapped_column(BigInteger, default=0)


class IntakePersonMonth(Base):
    """A person under management (the table's `person` field): current records in one event month."""

    __tablename__ = "intake_people_months"

    table_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    institution_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    person: Mapped[str] = mapped_column(String(64), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class IntakePeopleFirst(Base):
    """How many persons have their first current record in a month, per institution and table."""

    __tablename__ = "intake_people_first"

    table_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    institution_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)
