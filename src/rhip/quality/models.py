"""Quality tables: declared tables, the imported statistics report (卫统), tracked problems, inspections."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rhip.clock import now
from rhip.db.base import Base, UtcDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")

# Problem (整改) states, in order; each may move only to the next, or back to rectifying from verified.
OPEN, RECTIFYING, VERIFIED, CLOSED = "open", "rectifying", "verified", "closed"
ITEM_STATES = (OPEN, RECTIFYING, VERIFIED, CLOSED)
ITEM_LABELS = {OPEN: "待整改", RECTIFYING: "整改中", VERIFIED: "已核验", CLOSED: "已关闭"}


class TableDeclaration(Base):
    """An institution's declaration that its systems produce a catalogue table (声明上传表)."""

    __tablename__ = "quality_declarations"
    __table_args__ = (UniqueConstraint("institution_code", "table_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    institution_code: Mapped[str] = mapped_column(String(32), index=True)
    table_name: Mapped[str] = mapped_column(String(64))
    declared_by: Mapped[str] = mapped_column(String(128))
    declared_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class StatisticsReport(Base):
    """One institution's official monthly figures from the statistics report (卫统), as imported."""

    __tablename__ = "quality_statistics"
    __table_args__ = (UniqueConstraint("month", "institution_code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    institution_code: Mapped[str] = mapped_column(String(32), index=True)
    visits: Mapped[int | None] = mapped_column(BigInteger)
    discharges: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(255))
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class QualityItem(Base):
    """A tracked problem (问题清单 / 任务清单整改) of one institution."""

    __tablename__ = "quality_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    institution_code: Mapped[str] = mapped_column(String(32), index=True)
    month: Mapped[str | None] = mapped_column(String(7), index=True)
    dimension: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(255))
    detail: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), index=True, default=OPEN)
    owner: Mapped[str | None] = mapped_column(String(128))
    due_on: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    comments: Mapped[list[QualityComment]] = relationship(
        back_populates="item", cascade="all, delete-orphan", order_by="QualityComment.id"
    )


class QualityComment(Base):
    """A comment or state change on a tracked problem."""

    __tablename__ = "quality_comments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("quality_items.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    status_from: Mapped[str | None] = mapped_column(String(16))
    status_to: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    item: Mapped[QualityItem] = relationship(back_populates="comments")


class Inspection(Base):
    """A scheduled special inspection (数据质量提升专项检查) of one institution on one date."""

    __tablename__ = "quality_inspections"
    __table_args__ = (UniqueConstraint("institution_code", "scheduled_on"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    institution_code: Mapped[str] = mapped_column(String(32), index=True)
    scheduled_on: Mapped[date] = mapped_column(Date, index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    done: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class RecordUsage(Base):
    """An institution's reported 健康档案浏览器 and 智能提示 deployments and calls for one month."""

    __tablename__ = "quality_record_usage"
    __table_args__ = (UniqueConstraint("month", "institution_code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    institution_code: Mapped[str] = mapped_column(String(32), index=True)
    browser_deployed: Mapped[int] = mapped_column(BigInteger)
    browser_calls: Mapped[int] = mapped_column(BigInteger)
    reminder_deployed: Mapped[int] = mapped_column(BigInteger)
    reminder_calls: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(255))
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
