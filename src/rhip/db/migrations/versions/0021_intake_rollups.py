"""Intake rollups: current records per month (count, amount, real-time), real-time upload days, people under
management (see intake/rollup.py).

Revision ID: 0021_intake_rollups
Revises: 0020_intake
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_intake_rollups"
down_revision = "0020_intake"
branch_labels = None
depends_on = None

KEY = ("table_name", "month", "institution_code")


def _key() -> list[sa.Column[str]]:
    return [
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("institution_code", sa.String(32), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "intake_activity",
        *_key(),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Double(), nullable=False),
        sa.Column("n_realtime", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, name="pk_intake_activity"),
    )
    op.create_table(
        "intake_realtime_days",
        *_key(),
        sa.Column("days", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, name="pk_intake_realtime_days"),
    )
    op.create_table(
        "intake_people_months",
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("institution_code", sa.String(32), nullable=False),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "table_name", "institution_code", "person", "month", name="pk_intake_people_months"
        ),
    )
    op.create_table(
        "intake_people_first",
        *_key(),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, name="pk_intake_people_first"),
    )


def downgrade() -> None:
    for name in ("intake_people_first", "intake_people_months", "intake_realtime_days", "intake_activity"):
        op.drop_table(name)
