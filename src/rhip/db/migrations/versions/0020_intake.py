"""Intake: receipts, per-table counts, problem lists, daily upload counts, CDA documents.

Revision ID: 0020_intake
Revises: 0002_registry
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rhip.db.base

revision = "0020_intake"
down_revision = "0002_registry"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "intake_batches",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("institution_code", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("submitted_by", sa.String(128), nullable=False),
        sa.Column("created_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("committed_at", rhip.db.base.UtcDateTime()),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("lake_tables", sa.JSON(), nullable=False),
        sa.Column("host", sa.String(128), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        *[
            sa.Column(c, sa.BigInteger(), nullable=False)
            for c in ("received", "accepted", "updated", "revoked", "duplicate", "rejected")
        ],
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_detail", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_intake_batches"),
    )
    op.create_index("ix_intake_batches_institution_code", "intake_batches", ["institution_code"])
    op.create_index("ix_intake_batches_status", "intake_batches", ["status"])
    op.create_index("ix_intake_batches_created_at", "intake_batches", ["created_at"])
    op.create_table(
        "intake_batch_tables",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("table_name", sa.String(64), nullable=False),
        *[
            sa.Column(c, sa.BigInteger(), nullable=False)
            for c in ("received", "accepted", "updated", "revoked", "duplicate", "rejected")
        ],
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["intake_batches.id"],
            name="fk_intake_batch_tables_batch_id_intake_batches",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_intake_batch_tables"),
        sa.UniqueConstraint("batch_id", "table_name", name="uq_intake_batch_tables_batch_id_table_name"),
    )
    op.create_index("ix_intake_batch_tables_batch_id", "intake_batch_tables", ["batch_id"])
    op.create_table(
        "intake_problems",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("file", sa.String(255)),
        sa.Column("row", sa.BigInteger(), nullable=False),
        sa.Column("business_key", sa.String(255)),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("field", sa.String(64)),
        sa.Column("value", sa.String(255)),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["intake_batches.id"],
            name="fk_intake_problems_batch_id_intake_batches",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_intake_problems"),
    )
    op.create_index("ix_intake_problems_batch_table", "intake_problems", ["batch_id", "table_name"])
    op.create_index("ix_intake_problems_rule", "intake_problems", ["rule"])
    op.create_table(
        "intake_daily_counts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("institution_code", sa.String(32), nullable=False),
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *[
            sa.Column(c, sa.BigInteger(), nullable=False)
            for c in ("received", "accepted", "updated", "revoked", "duplicate", "rejected")
        ],
        sa.PrimaryKeyConstraint("id", name="pk_intake_daily_counts"),
        sa.UniqueConstraint(
            "institution_code",
            "table_name",
            "day",
            name="uq_intake_daily_counts_institution_code_table_name_day",
        ),
    )
    op.create_index("ix_intake_daily_counts_institution_code", "intake_daily_counts", ["institution_code"])
    op.create_index("ix_intake_daily_counts_day", "intake_daily_counts", ["day"])
    op.create_table(
        "intake_cda_documents",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("institution_code", sa.String(32), nullable=False),
        sa.Column("document_id", sa.String(128), nullable=False),
        sa.Column("doc_type", sa.String(32), nullable=False),
        sa.Column("title", sa.String(128), nullable=False),
        sa.Column("effective_time", rhip.db.base.UtcDateTime()),
        sa.Column("received_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["intake_batches.id"],
            name="fk_intake_cda_documents_batch_id_intake_batches",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_intake_cda_documents"),
        sa.UniqueConstraint(
            "institution_code", "document_id", name="uq_intake_cda_documents_institution_code_document_id"
        ),
    )
    op.create_index("ix_intake_cda_documents_batch_id", "intake_cda_documents", ["batch_id"])
    op.create_index("ix_intake_cda_documents_institution_code", "intake_cda_documents", ["institution_code"])
    op.create_index("ix_intake_cda_documents_doc_type", "intake_cda_documents", ["doc_type"])


def downgrade() -> None:
    for table in (
        "intake_cda_documents",
        "intake_daily_counts",
        "intake_problems",
        "intake_batch_tables",
        "intake_batches",
    ):
        op.drop_table(table)
