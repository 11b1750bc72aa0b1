"""Security hardening: verified accounts, audit client address and user agent, sign-in throttle,
revoked tokens, real-name sign-ups with one-time codes, institutions' phones of persons, SMS outbox.

Revision ID: 0005_security_hardening
Revises: 0002_registry
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rhip.db.base

revision = "0005_security_hardening"
down_revision = "0002_registry"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Utc = rhip.db.base.UtcDateTime


def upgrade() -> None:
    op.add_column("users", sa.Column("verified_at", Utc()))
    op.add_column("users", sa.Column("verified_via", sa.String(16)))
    # accounts that existed before: staff were created by an admin; residents must prove themselves again
    op.execute("UPDATE users SET verified_at = created_at, verified_via = 'admin' WHERE role <> 'resident'")
    op.add_column("audit_events", sa.Column("client_addr", sa.String(64)))
    op.add_column("audit_events", sa.Column("user_agent", sa.String(255)))
    op.create_table(
        "security_throttle",
        sa.Column("key", sa.String(96), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", Utc(), nullable=False),
        sa.Column("locked_until", Utc()),
        sa.Column("updated_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_security_throttle"),
    )
    op.create_table(
        "security_revoked_tokens",
        sa.Column("jti", sa.String(64), nullable=False),
        sa.Column("revoked_at", Utc(), nullable=False),
        sa.Column("expires_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("jti", name="pk_security_revoked_tokens"),
    )
    op.create_index("ix_security_revoked_tokens_revoked_at", "security_revoked_tokens", ["revoked_at"])
    op.create_table(
        "security_signups",
        sa.Column("id", sa.String(43), nullable=False),
        sa.Column("id_number", sa.String(18), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("phone", sa.String(11), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("code_hash", sa.String(64)),
        sa.Column("code_expires_at", Utc()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("codes_sent", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", Utc(), nullable=False),
        sa.Column("expires_at", Utc(), nullable=False),
        sa.Column("done_at", Utc()),
        sa.PrimaryKeyConstraint("id", name="pk_security_signups"),
    )
    op.create_index("ix_security_signups_id_number", "security_signups", ["id_number"])
    op.create_index("ix_security_signups_status", "security_signups", ["status"])
    op.create_table(
        "security_person_phones",
        sa.Column("id_number", sa.String(18), nullable=False),
        sa.Column("phone", sa.String(11), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("institution_code", sa.String(32)),
        sa.Column("created_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("id_number", "phone", name="pk_security_person_phones"),
    )
    op.create_table(
        "security_sms_outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("phone", sa.String(11), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("message", sa.String(500), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(255)),
        sa.Column("created_at", Utc(), nullable=False),
        sa.Column("sent_at", Utc()),
        sa.PrimaryKeyConstraint("id", name="pk_security_sms_outbox"),
    )
    op.create_index("ix_security_sms_outbox_phone", "security_sms_outbox", ["phone"])
    op.create_index("ix_security_sms_outbox_status", "security_sms_outbox", ["status"])


def downgrade() -> None:
    op.drop_table("security_sms_outbox")
    op.drop_table("security_person_phones")
    op.drop_table("security_signups")
    op.drop_table("security_revoked_tokens")
    op.drop_table("security_throttle")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("user_agent")
        batch.drop_column("client_addr")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("verified_via")
        batch.drop_column("verified_at")
