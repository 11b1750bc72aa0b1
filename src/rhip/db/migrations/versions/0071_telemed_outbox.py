"""Telemedicine: report versions (final → amended) and the outbox that carries each version to intake.

Revision ID: 0071_telemed_outbox
Revises: 0070_telemed
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rhip.db.base

revision = "0071_telemed_outbox"
down_revision = "0070_telemed"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("telemed_reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=16), server_default="final", nullable=False))
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("amended_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("amend_reason", sa.String(length=256), nullable=True))
    op.create_table(
        "telemed_outbox",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("report_id", BIG_ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("institution_code", sa.String(length=32), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=512), nullable=True),
        sa.Column("receipt_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'sent', 'failed')", name=op.f("ck_telemed_outbox_state")),
        sa.ForeignKeyConstraint(
            ["institution_code"],
            ["institutions.code"],
            name=op.f("fk_telemed_outbox_institution_code_institutions"),
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["telemed_reports.id"],
            name=op.f("fk_telemed_outbox_report_id_telemed_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_outbox")),
    )
    with op.batch_alter_table("telemed_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_telemed_outbox_due", ["state", "due_at"], unique=False)
        batch_op.create_index("ix_telemed_outbox_report", ["report_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("telemed_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_telemed_outbox_report")
        batch_op.drop_index("ix_telemed_outbox_due")
    op.drop_table("telemed_outbox")
    with op.batch_alter_table("telemed_reports", schema=None) as batch_op:
        batch_op.drop_column("amend_reason")
        batch_op.drop_column("amended_at")
        batch_op.drop_column("version")
        batch_op.drop_column("status")
