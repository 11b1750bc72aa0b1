"""Records: the serving store of record entries, consents, one-time access codes, the hash-chained access
log and its head, and the intake batches absorbed.

Revision ID: 0050_records
Revises: 0040_identity
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rhip.db.base

revision = "0050_records"
down_revision = "0040_identity"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Utc = rhip.db.base.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "records_entries",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("institution_code", sa.String(32), nullable=False),
        sa.Column("patient_key", sa.String(64), nullable=False),
        sa.Column("id_number", sa.String(18), nullable=True),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("business_key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("occurred_at", Utc(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("code", sa.String(50), nullable=True),
        sa.Column("abnormal", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("updated_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_records_entries"),
        sa.UniqueConstraint(
            "institution_code", "source", "business_key", name="uq_records_entries_source_key"
        ),
    )
    op.create_index("ix_records_entries_kind", "records_entries", ["kind"])
    op.create_index(
        "ix_records_entries_patient", "records_entries", ["institution_code", "patient_key", "occurred_at"]
    )
    op.create_index("ix_records_entries_id_number", "records_entries", ["id_number", "occurred_at"])
    op.create_table(
        "records_consents",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("person_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("grantee_institution", sa.String(32), nullable=False),
        sa.Column("grantee_user", sa.String(128), nullable=True),
        sa.Column("starts_at", Utc(), nullable=False),
        sa.Column("ends_at", Utc(), nullable=False),
        sa.Column("revoked_at", Utc(), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("reviewed", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_records_consents"),
    )
    op.create_index("ix_records_consents_person", "records_consents", ["person_id", "ends_at"])
    op.create_table(
        "records_access_codes",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("person_id", sa.String(40), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", Utc(), nullable=False),
        sa.Column("used_at", Utc(), nullable=True),
        sa.Column("used_by", sa.String(128), nullable=True),
        sa.Column("created_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_records_access_codes"),
    )
    op.create_index("ix_records_access_codes_person_id", "records_access_codes", ["person_id"])
    op.create_index("ix_records_access_codes_code_hash", "records_access_codes", ["code_hash"])
    op.create_table(
        "records_access_log",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", Utc(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("institution_code", sa.String(32), nullable=True),
        sa.Column("person_id", sa.String(40), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("basis", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(300), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_records_access_log"),
        sa.UniqueConstraint("hash", name="uq_records_access_log_hash"),
    )
    op.create_index("ix_records_access_log_at", "records_access_log", ["at"])
    op.create_index("ix_records_access_log_person", "records_access_log", ["person_id", "at"])
    op.create_index("ix_records_access_log_institution", "records_access_log", ["institution_code", "at"])
    op.create_table(
        "records_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_records_chain_head"),
    )
    op.create_table(
        "records_synced_batches",
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("synced_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name="pk_records_synced_batches"),
    )


def downgrade() -> None:
    for name in (
        "records_synced_batches",
        "records_chain_head",
        "records_access_log",
        "records_access_codes",
        "records_consents",
        "records_entries",
    ):
        op.drop_table(name)
