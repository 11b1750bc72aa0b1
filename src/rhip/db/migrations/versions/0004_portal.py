"""Portal: users.demo marks the accounts `rhip demo` creates (generated passwords, listed in
var/demo/accounts.txt), so they can be found and removed before real use.

Revision ID: 0004_portal
Revises: 0002_registry
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_portal"
down_revision = "0002_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("demo", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("demo")
