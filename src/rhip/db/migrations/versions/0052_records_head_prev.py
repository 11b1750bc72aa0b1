"""Records: each chain head keeps the hash before its last one, so that on PostgreSQL one statement moves the
head and appends the access-log row (the UPDATE's SET sees the old hash; RETURNING gives both).

Revision ID: 0052_records_head_prev
Revises: 0051_records_chains
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0052_records_head_prev"
down_revision = "0051_records_chains"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("records_chain_head", sa.Column("prev_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("records_chain_head") as batch:
        batch.drop_column("prev_hash")
