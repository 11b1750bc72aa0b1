"""Quality: declared tables, statistics report (卫统), tracked problems with comments, inspections.

Revision ID: 0030_quality
Revises: 0002_registry
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rhip.db.base

revision = "0030_quality"
down_revision = "0002_registry"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Utc = rhip.db.base.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "quality_declarations",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("institution_code", sa.String(32), nullable=False),
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("declared_by", sa.String(128), nullable=False),
        sa.Column("declared_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quality_declarations"),
        sa.UniqueConstraint(
            "institution_code", "table_name", name="uq_quality_declarations_institution_code_table_name"
        ),
    )
    op.create_index("ix_quality_declarations_institution_code", "quality_declarations", ["institution_code"])
    op.create_table(
        "quality_statistics",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("institution_code", sa.String(32), nullable=False),
        sa.Column("visits", sa.BigInteger()),
        sa.Column("discharges", sa.BigInteger()),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("imported_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quality_statistics"),
        sa.UniqueConstraint("month", "institution_code", name="uq_quality_statistics_month_institution_code"),
    )
    op.create_index("ix_quality_statistics_month", "quality_statistics", ["month"])
    op.create_index("ix_quality_statistics_institution_code", "quality_statistics", ["institution_code"])
    op.create_table(
        "quality_items",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("institution_code", sa.String(32), nullable=False),
        sa.Column("month", sa.String(7)),
        sa.Column("dimension", sa.String(32), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(128)),
        sa.Column("due_on", sa.Date()),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", Utc(), nullable=False),
        sa.Column("updated_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quality_items"),
    )
    op.create_index("ix_quality_items_institution_code", "quality_items", ["institution_code"])
    op.create_index("ix_quality_items_month", "quality_items", ["month"])
    op.create_index("ix_quality_items_status", "quality_items", ["status"])
    op.create_table(
        "quality_comments",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "item_id",
            BigId,
            sa.ForeignKey(
                "quality_items.id", name="fk_quality_comments_item_id_quality_items", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status_from", sa.String(16)),
        sa.Column("status_to", sa.String(16)),
        sa.Column("created_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quality_comments"),
    )
    op.create_index("ix_quality_comments_item_id", "quality_comments", ["item_id"])
    op.create_table(
        "quality_inspections",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("institution_code", sa.String(32), nullable=False),
        sa.Column("scheduled_on", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quality_inspections"),
        sa.UniqueConstraint(
            "institution_code", "scheduled_on", name="uq_quality_inspections_institution_code_scheduled_on"
        ),
    )
    op.create_index("ix_quality_inspections_institution_code", "quality_inspections", ["institution_code"])
    op.create_index("ix_quality_inspections_scheduled_on", "quality_inspections", ["scheduled_on"])


def downgrade() -> None:
    for name in (
        "quality_inspections",
        "quality_comments",
        "quality_items",
        "quality_statistics",
        "quality_declarations",
    ):
        op.drop_table(name)
