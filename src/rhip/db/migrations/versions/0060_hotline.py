"""Hotline: calls, work orders and their events, assistant conversations, province calls by city.

Revision ID: 0060_hotline
Revises: 0002_registry
Create Date: 2026-12-07 06:31:00.735877
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rhip.db.base

revision = "0060_hotline"
down_revision = "0002_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hotline_calls",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("call_uuid", sa.String(length=64), nullable=False),
        sa.Column("started_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Integer(), nullable=False),
        sa.Column("billsec", sa.Integer(), nullable=False),
        sa.Column("caller_masked", sa.String(length=24), nullable=False),
        sa.Column("caller_hash", sa.String(length=64), nullable=False),
        sa.Column("ivr_path", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("agent", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("hangup_cause", sa.String(length=48), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("institution_code", sa.String(length=16), nullable=False),
        sa.Column("id_number", sa.String(length=18), nullable=True),
        sa.Column("person_id", sa.String(length=36), nullable=True),
        sa.Column("appointment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("risk_level", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_calls")),
        sa.UniqueConstraint("call_uuid", name=op.f("uq_hotline_calls_call_uuid")),
    )
    with op.batch_alter_table("hotline_calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hotline_calls_caller_hash"), ["caller_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_hotline_calls_category"), ["category"], unique=False)
        batch_op.create_index(batch_op.f("ix_hotline_calls_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_hotline_calls_started_at"), ["started_at"], unique=False)

    op.create_table(
        "hotline_province_calls",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("city", sa.String(length=16), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("imported_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_province_calls")),
        sa.UniqueConstraint("month", "city", name=op.f("uq_hotline_province_calls_month_city")),
    )
    with op.batch_alter_table("hotline_province_calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hotline_province_calls_month"), ["month"], unique=False)

    op.create_table(
        "hotline_work_orders",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=24), nullable=False),
        sa.Column("external_no", sa.String(length=64), nullable=True),
        sa.Column("order_type", sa.String(length=24), nullable=False),
        sa.Column("priority", sa.String(length=4), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("caller_masked", sa.String(length=24), nullable=False),
        sa.Column("id_number", sa.String(length=18), nullable=True),
        sa.Column("person_id", sa.String(length=36), nullable=True),
        sa.Column("institution_code", sa.String(length=16), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("received_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("due_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("warn50_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("warn75_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("sla_level", sa.String(length=8), nullable=False),
        sa.Column("sla_checked_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("replied_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("satisfaction", sa.Integer(), nullable=True),
        sa.Column("callback_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("callback_note", sa.Text(), nullable=False),
        sa.Column("risk_level", sa.String(length=16), nullable=True),
        sa.Column("follow_up_due_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("call_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("transcript", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["hotline_calls.id"], name=op.f("fk_hotline_work_orders_call_id_hotline_calls")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_work_orders")),
        sa.UniqueConstraint("number", name=op.f("uq_hotline_work_orders_number")),
        sa.UniqueConstraint("source", "external_no", name=op.f("uq_hotline_work_orders_source_external_no")),
    )
    with op.batch_alter_table("hotline_work_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hotline_work_orders_call_id"), ["call_id"], unique=False)
        batch_op.create_index(
            "ix_hotline_work_orders_institution_code_state",
            ["institution_code", "state", "due_at"],
            unique=False,
        )
        batch_op.create_index("ix_hotline_work_orders_due_at_id", ["due_at", "id"], unique=False)
        batch_op.create_index("ix_hotline_work_orders_received_at_id", ["received_at", "id"], unique=False)
        for mark in ("warn50_at", "warn75_at", "due_at"):
            batch_op.create_index(
                f"ix_hotline_work_orders_sla_level_{mark}", ["sla_level", mark], unique=False
            )
        batch_op.create_index(batch_op.f("ix_hotline_work_orders_source"), ["source"], unique=False)
        batch_op.create_index("ix_hotline_work_orders_state_due_at", ["state", "due_at"], unique=False)

    op.create_table(
        "hotline_conversations",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.Column("started_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=True),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("last_intent", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("transcript", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["hotline_work_orders.id"],
            name=op.f("fk_hotline_conversations_order_id_hotline_work_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_conversations")),
        sa.UniqueConstraint("token", name=op.f("uq_hotline_conversations_token")),
    )
    with op.batch_alter_table("hotline_conversations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hotline_conversations_started_at"), ["started_at"], unique=False)

    op.create_table(
        "hotline_work_order_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["hotline_work_orders.id"],
            name=op.f("fk_hotline_work_order_events_order_id_hotline_work_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_work_order_events")),
    )
    with op.batch_alter_table("hotline_work_order_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hotline_work_order_events_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hotline_work_order_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hotline_work_order_events_order_id"))

    op.drop_table("hotline_work_order_events")
    with op.batch_alter_table("hotline_conversations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hotline_conversations_started_at"))

    op.drop_table("hotline_conversations")
    with op.batch_alter_table("hotline_work_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_hotline_work_orders_state_due_at")
        batch_op.drop_index(batch_op.f("ix_hotline_work_orders_source"))
        for mark in ("warn50_at", "warn75_at", "due_at"):
            batch_op.drop_index(f"ix_hotline_work_orders_sla_level_{mark}")
        batch_op.drop_index("ix_hotline_work_orders_received_at_id")
        batch_op.drop_index("ix_hotline_work_orders_due_at_id")
        batch_op.drop_index("ix_hotline_work_orders_institution_code_state")
        batch_op.drop_index(batch_op.f("ix_hotline_work_orders_call_id"))

    op.drop_table("hotline_work_orders")
    with op.batch_alter_table("hotline_province_calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hotline_province_calls_month"))

    op.drop_table("hotline_province_calls")
    with op.batch_alter_table("hotline_calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hotline_calls_started_at"))
        batch_op.drop_index(batch_op.f("ix_hotline_calls_person_id"))
        batch_op.drop_index(batch_op.f("ix_hotline_calls_category"))
        batch_op.drop_index(batch_op.f("ix_hotline_calls_caller_hash"))

    op.drop_table("hotline_calls")
