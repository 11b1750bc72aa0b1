"""Self-service: terminals, their transactions (amounts in fen), physical card issuance and baselines, the
electronic health card and its uses.

Revision ID: 0080_selfservice
Revises: 0002_registry
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rhip.db.base

revision = "0080_selfservice"
down_revision = "0002_registry"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Utc = rhip.db.base.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "selfservice_terminals",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("institution_code", sa.String(32), nullable=False),
        sa.Column("district_code", sa.String(8)),
        sa.Column("location", sa.String(128), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("installed_on", sa.Date(), nullable=False),
        sa.Column("removed_on", sa.Date()),
        sa.Column("key_prefix", sa.String(16)),
        sa.Column("key_hash", sa.String(128)),
        sa.Column("key_issued_at", Utc()),
        sa.Column("created_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_selfservice_terminals"),
        sa.UniqueConstraint("code", name="uq_selfservice_terminals_code"),
        sa.UniqueConstraint("key_prefix", name="uq_selfservice_terminals_key_prefix"),
    )
    op.create_index(
        "ix_selfservice_terminals_institution_code", "selfservice_terminals", ["institution_code"]
    )
    op.create_table(
        "selfservice_transactions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("terminal_id", BigId, nullable=False),
        sa.Column("institution_code", sa.String(32), nullable=False),
        sa.Column("txn_no", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("occurred_at", Utc(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger()),
        sa.Column("pay_method", sa.String(16)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("duration_ms", sa.Integer()),
        sa.Column("pages", sa.Integer()),
        sa.Column("card_no", sa.String(32)),
        sa.Column("id_number", sa.String(18)),
        sa.Column("person_id", sa.String(64)),
        sa.Column("appointment_id", sa.BigInteger()),
        sa.Column("received_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_selfservice_transactions"),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["selfservice_terminals.id"],
            name="fk_selfservice_transactions_terminal_id_selfservice_terminals",
        ),
        sa.UniqueConstraint("terminal_id", "txn_no", name="uq_selfservice_transactions_terminal_id_txn_no"),
    )
    op.create_index("ix_selfservice_transactions_occurred_at", "selfservice_transactions", ["occurred_at"])
    op.create_index(
        "ix_selfservice_transactions_inst_at", "selfservice_transactions", ["institution_code", "occurred_at"]
    )
    op.create_table(
        "selfservice_card_issues",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("institution_code", sa.String(32), nullable=False),
        sa.Column("card_type", sa.String(16), nullable=False),
        sa.Column("card_no", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("terminal_id", BigId),
        sa.Column("id_number", sa.String(18)),
        sa.Column("person_id", sa.String(64)),
        sa.Column("issued_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_selfservice_card_issues"),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["selfservice_terminals.id"],
            name="fk_selfservice_card_issues_terminal_id_selfservice_terminals",
        ),
        sa.UniqueConstraint(
            "institution_code",
            "card_type",
            "card_no",
            name="uq_selfservice_card_issues_institution_code_card_type_card_no",
        ),
    )
    op.create_index(
        "ix_selfservice_card_issues_institution_code", "selfservice_card_issues", ["institution_code"]
    )
    op.create_index("ix_selfservice_card_issues_issued_at", "selfservice_card_issues", ["issued_at"])
    op.create_table(
        "selfservice_card_baselines",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("before_month", sa.String(7), nullable=False),
        sa.Column("cards", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_selfservice_card_baselines"),
        sa.UniqueConstraint("before_month", name="uq_selfservice_card_baselines_before_month"),
    )
    op.create_table(
        "selfservice_health_cards",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("card_id", sa.String(32), nullable=False),
        sa.Column("id_number", sa.String(18), nullable=False),
        sa.Column("person_id", sa.String(64)),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("static_code", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("issued_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_selfservice_health_cards"),
        sa.UniqueConstraint("card_id", name="uq_selfservice_health_cards_card_id"),
        sa.UniqueConstraint("id_number", name="uq_selfservice_health_cards_id_number"),
        sa.UniqueConstraint("static_code", name="uq_selfservice_health_cards_static_code"),
    )
    op.create_index("ix_selfservice_health_cards_person_id", "selfservice_health_cards", ["person_id"])
    op.create_table(
        "selfservice_card_uses",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("card_id", BigId, nullable=False),
        sa.Column("at", Utc(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("institution_code", sa.String(32)),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("code_kind", sa.String(8), nullable=False),
        sa.Column("nonce", sa.String(32)),
        sa.PrimaryKeyConstraint("id", name="pk_selfservice_card_uses"),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["selfservice_health_cards.id"],
            name="fk_selfservice_card_uses_card_id_selfservice_health_cards",
        ),
        sa.UniqueConstraint("nonce", name="uq_selfservice_card_uses_nonce"),
    )
    op.create_index("ix_selfservice_card_uses_card_id", "selfservice_card_uses", ["card_id"])
    op.create_index("ix_selfservice_card_uses_at", "selfservice_card_uses", ["at"])


def downgrade() -> None:
    for name in (
        "selfservice_card_uses",
        "selfservice_health_cards",
        "selfservice_card_baselines",
        "selfservice_card_issues",
        "selfservice_transactions",
        "selfservice_terminals",
    ):
        op.drop_table(name)
