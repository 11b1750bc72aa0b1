"""Records: the access log in several hash chains (the chain a row belongs to; each chain its own head row),
so concurrent views do not all queue on one head lock. Existing rows and the existing head are chain 0.

Revision ID: 0051_records_chains
Revises: 0050_records
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0051_records_chains"
down_revision = "0050_records"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "records_access_log", sa.Column("chain", sa.SmallInteger(), nullable=False, server_default="0")
    )
    op.create_index("ix_records_access_log_chain", "records_access_log", ["chain", "id"])


def downgrade() -> None:
    op.drop_index("ix_records_access_log_chain", table_name="records_access_log")
    with op.batch_alter_table("records_access_log") as batch:
        batch.drop_column("chain")
