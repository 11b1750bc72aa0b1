"""Hotline tables: calls (通话), work orders (工单) with their event trail, assistant conversations (宁宁),
and the province's 12320 calls by city as imported.

People are stored with the centre's institution code, a local id (the call's uuid), the ID number they gave
(GB 11643, 18 characters) and a nullable `person_id` the identity service (EMPI) fills when it links them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rhip.clock import now
from rhip.db.base import Base, UtcDateTime
from rhip.hotline import sla

BigId = BigInteger().with_variant(Integer(), "sqlite")
CENTRE = "12320"  # the hotline centre's own code, the `institution` of the people it records
# the work-order list's filters, each the leading column of one list index (see WorkOrder); the SLA level of
# an open order is a range on its marks (levels.py), so the marks ride along in every list index
LIST_FILTERS = ("state", "institution_code", "source", "sla_stopped_level")
LIST_CARRIED = ("warn50_at", "warn75_at")


class Call(Base):
    """One call to 12320: from the telephony system's call-detail records or logged at the agent desk."""

    __tablename__ = "hotline_calls"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_uuid: Mapped[str] = mapped_column(String(64), unique=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    duration_s: Mapped[int] = mapped_column(Integer, default=0)
    billsec: Mapped[int] = mapped_column(Integer, default=0)
    caller_masked: Mapped[str] = mapped_column(String(24), default="")
    caller_hash: Mapped[str] = mapped_column(String(64), default="", index=True)
    ivr_path: Mapped[str] = mapped_column(String(64), default="")
    category: Mapped[str] = mapped_column(String(32), index=True)
    agent: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32), default="answered")
    hangup_cause: Mapped[str] = mapped_column(String(48), default="")
    source: Mapped[str] = mapped_column(String(8), default="desk")
    institution_code: Mapped[str] = mapped_column(String(16), default=CENTRE)
    id_number: Mapped[str | None] = mapped_column(String(18))
    person_id: Mapped[str | None] = mapped_column(String(36), index=True)
    appointment_id: Mapped[int | None] = mapped_column(BigId)
    risk_level: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class WorkOrder(Base):
    """A work order (工单): a 12345 city or province order, a self-received order (自接工单, one per
    complaint call), a crisis follow-up (P0) or an assistant hand-off."""

    __tablename__ = "hotline_work_orders"
    __table_args__ = (
        UniqueConstraint("source", "external_no"),
        # the list, in deadline order (due_at, id), one index per leading filter; on PostgreSQL each carries
        # the other filter columns and the marks (INCLUDE) so the page's capped count, its filters and its SLA
        # level (a range on the marks) are index-only scans
        *(
            Index(
                f"ix_hotline_wo_list_{lead or 'due'}",
                *([lead] if lead else []),
                "due_at",
                "id",
                postgresql_include=[*(c for c in LIST_FILTERS if c != lead), *LIST_CARRIED],
            )
            for lead in (None, *LIST_FILTERS)
        ),
        # the SLA job's walks: marks crossed in its window (the breach pass walks ix_hotline_wo_list_due) and
        # orders touched since its last run
        Index("ix_hotline_wo_warn50", "warn50_at", "id", postgresql_include=["state", "warn75_at", "due_at"]),
        Index("ix_hotline_wo_warn75", "warn75_at", "id", postgresql_include=["state", "due_at"]),
        Index("ix_hotline_wo_updated", "updated_at", "id"),
        Index("ix_hotline_work_orders_received_at_id", "received_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    source: Mapped[str] = mapped_column(String(24))
    external_no: Mapped[str | None] = mapped_column(String(64))
    order_type: Mapped[str] = mapped_column(String(24))
    priority: Mapped[str] = mapped_column(String(4), default="P2")
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text, default="")
    caller_masked: Mapped[str] = mapped_column(String(24), default="")
    id_number: Mapped[str | None] = mapped_column(String(18))
    person_id: Mapped[str | None] = mapped_column(String(36))
    institution_code: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="new")
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # when 50% and 75% of the limit are used up, fixed at creation: an open order's SLA level is derived from
    # the marks and the time when it is read (`level_at`), never stored
    warn50_at: Mapped[datetime] = mapped_column(UtcDateTime)
    warn75_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # the level when the clock stopped (the order left the open states); NULL while it runs
    sla_stopped_level: Mapped[str | None] = mapped_column(String(8))
    reply: Mapped[str] = mapped_column(Text, default="")
    replied_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    callback_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    callback_note: Mapped[str] = mapped_column(Text, default="")
    risk_level: Mapped[str | None] = mapped_column(String(16))
    follow_up_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("hotline_calls.id"), index=True)
    transcript: Mapped[list[Any] | None] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)

    def level_at(self, at: datetime) -> str:
        """The SLA level at an instant: from the marks while the clock runs, else the level it stopped at."""
        if self.state in sla.OPEN_STATES:
            return sla.level_at(self, at)
        return self.sla_stopped_level or "ok"

    @property
    def sla_level(self) -> str:
        """The SLA level now (what the pages and the API show)."""
        return self.level_at(now())


class WorkOrderEvent(Base):
    """One step of a work order's life: who moved it from which state to which, and why."""

    __tablename__ = "hotline_work_order_events"
    # an order's history, and the SLA job's check that a level was already announced (index-only)
    __table_args__ = (Index("ix_hotline_wo_events_order_action", "order_id", "action"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # no foreign key (migration 0063): its check per row was most of the SLA job's cost, and orders are never
    # deleted; every event is written with the id of an order read in the same statement or transaction
    order_id: Mapped[int] = mapped_column(BigId)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(24))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")


class SlaRun(Base):
    """A completed run of the SLA job: the instant it judged by. The latest is the next run's watermark."""

    __tablename__ = "hotline_sla_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    breach: Mapped[int] = mapped_column(Integer, default=0)
    warn75: Mapped[int] = mapped_column(Integer, default=0)
    warn50: Mapped[int] = mapped_column(Integer, default=0)


class Conversation(Base):
    """A conversation with the assistant 宁宁: its transcript and how it ended."""

    __tablename__ = "hotline_conversations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(40), unique=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    subject: Mapped[str | None] = mapped_column(String(64))
    turns: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(16), default="answered")
    last_intent: Mapped[str] = mapped_column(String(32), default="")
    order_id: Mapped[int | None] = mapped_column(ForeignKey("hotline_work_orders.id"))
    transcript: Mapped[list[Any]] = mapped_column(JSON, default=list)


class ProvinceCalls(Base):
    """The province's 12320 calls of a month for one city (全省 12320 共接听电话 …，其中南京 …)."""

    __tablename__ = "hotline_province_calls"
    __table_args__ = (UniqueConstraint("month", "city"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    city: Mapped[str] = mapped_column(String(16))
    calls: Mapped[int] = mapped_column(Integer)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
