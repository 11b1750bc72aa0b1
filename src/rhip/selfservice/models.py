"""Self-service tables: terminals and their transactions, physical card issuance, the electronic health
card (电子健康卡) and its uses."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rhip.clock import now
from rhip.db.base import Base, UtcDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Terminal(Base):
    """A self-service terminal (自助智能医疗服务终端) installed at one institution; its key's hash only."""

    __tablename__ = "selfservice_terminals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    institution_code: Mapped[str] = mapped_column(String(32), index=True)
    district_code: Mapped[str | None] = mapped_column(String(8))
    location: Mapped[str] = mapped_column(String(128), default="")
    model: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="active")  # active, fault, removed
    installed_on: Mapped[date] = mapped_column(Date)
    removed_on: Mapped[date | None] = mapped_column(Date)
    key_prefix: Mapped[str | None] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str | None] = mapped_column(String(128))
    key_issued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class TerminalTransaction(Base):
    """One transaction a terminal reports, unique by (terminal, the terminal's own transaction number).

    Amounts are integer fen (分): exact, never a float."""

    __tablename__ = "selfservice_transactions"
    __table_args__ = (
        UniqueConstraint("terminal_id", "txn_no"),
        Index("ix_selfservice_transactions_inst_at", "institution_code", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("selfservice_terminals.id"))
    institution_code: Mapped[str] = mapped_column(String(32))
    txn_no: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # terminals.KINDS
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    pay_method: Mapped[str | None] = mapped_column(String(16))  # insurance (医保), self (自费)
    outcome: Mapped[str] = mapped_column(String(16), default="ok")  # ok, failed, cancelled
    error_code: Mapped[str | None] = mapped_column(String(64))
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    pages: Mapped[int | None] = mapped_column(Integer)
    card_no: Mapped[str | None] = mapped_column(String(32))
    id_number: Mapped[str | None] = mapped_column(String(18))
    person_id: Mapped[str | None] = mapped_column(String(64))
    appointment_id: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class CardIssue(Base):
    """One physical card issued (市民卡/医疗卡/就诊卡): at a window or at a terminal."""

    __tablename__ = "selfservice_card_issues"
    __table_args__ = (UniqueConstraint("institution_code", "card_type", "card_no"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    institution_code: Mapped[str] = mapped_column(String(32), index=True)
    card_type: Mapped[str] = mapped_column(String(16))  # citizen (市民卡), medical (医疗卡), visit (就诊卡)
    card_no: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))  # window, terminal
    terminal_id: Mapped[int | None] = mapped_column(ForeignKey("selfservice_terminals.id"))
    id_number: Mapped[str | None] = mapped_column(String(18))
    person_id: Mapped[str | None] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class CardBaseline(Base):
    """Cards issued before the platform kept card rows (总开卡量 carried over), as of a month's start."""

    __tablename__ = "selfservice_card_baselines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    before_month: Mapped[str] = mapped_column(String(7), unique=True)
    cards: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(255))


class HealthCard(Base):
    """A resident's electronic health card (电子健康卡): one per real-name person (ID number)."""

    __tablename__ = "selfservice_health_cards"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    card_id: Mapped[str] = mapped_column(String(32), unique=True)
    id_number: Mapped[str] = mapped_column(String(18), unique=True)
    person_id: Mapped[str | None] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    static_code: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active, frozen
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class CardUse(Base):
    """One resolution of a health card's code by an institution or terminal; a dynamic code's nonce is
    unique, so a replayed code cannot be used twice."""

    __tablename__ = "selfservice_card_uses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("selfservice_health_cards.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    channel: Mapped[str] = mapped_column(String(16))  # window, terminal, doctor, app
    institution_code: Mapped[str | None] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    code_kind: Mapped[str] = mapped_column(String(8))  # static, dynamic
    nonce: Mapped[str | None] = mapped_column(String(32), unique=True)
