"""MCH: the intake keys of the MCH catalogue tables mapped to the registry rows they became.

Revision ID: 0091_mch_uploads
Revises: 0090_mch
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0091_mch_uploads"
down_revision = "0090_mch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mch_upload_keys",
        sa.Column("institution_code", sa.String(length=32), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("business_key", sa.String(length=200), nullable=False),
        sa.Column("target_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("institution_code", "table_name", "business_key"),
    )
    op.create_index("ix_mch_upload_keys_target", "mch_upload_keys", ["table_name", "target_id"])


def downgrade() -> None:
    op.drop_index("ix_mch_upload_keys_target", table_name="mch_upload_keys")
    op.drop_table("mch_upload_keys")
