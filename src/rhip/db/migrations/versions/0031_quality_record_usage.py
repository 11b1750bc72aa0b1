"""Quality: reported record-browser (健康档案浏览器) and smart-reminder (智能提示) deployments and calls.

Revision ID: 0031_quality_record_usage
Revises: 0030_quality
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rhip.db.base

revision = "0031_quality_record_usage"
down_revision = "0030_quality"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Utc = rhip.db.base.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "quality_record_usage",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("institution_code", sa.String(32), nullable=False),
        sa.Column("browser_deployed", sa.BigInteger(), nullable=False),
        sa.Column("browser_calls", sa.BigInteger(), nullable=False),
        sa.Column("reminder_deployed", sa.BigInteger(), nullable=False),
        sa.Column("reminder_calls", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("imported_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quality_record_usage"),
        sa.UniqueConstraint(
            "month", "institution_code", name="uq_quality_record_usage_month_institution_code"
        ),
    )
    op.create_index("ix_quality_record_usage_month", "quality_record_usage", ["month"])
    op.create_index("ix_quality_record_usage_institution_code", "quality_record_usage", ["institution_code"])


def downgrade() -> None:
    op.drop_index("ix_quality_record_usage_institution_code", table_name="quality_record_usage")
    op.drop_index("ix_quality_record_usage_month", table_name="quality_record_usage")
    op.drop_table("quality_record_usage")
