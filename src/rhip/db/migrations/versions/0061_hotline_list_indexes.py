"""Hotline: the work-order list's covering indexes (deadline order, one per leading filter, the other filters
INCLUDEd on PostgreSQL), replacing the earlier list and source indexes.

Revision ID: 0061_hotline_list_indexes
Revises: 0060_hotline
Create Date: 2026-12-07 09:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0061_hotline_list_indexes"
down_revision = "0060_hotline"
branch_labels = None
depends_on = None

TABLE = "hotline_work_orders"
FILTERS = ("state", "institution_code", "source", "sla_level")  # models.LIST_FILTERS, as of this revision
OLD = {
    "ix_hotline_work_orders_state_due_at": ["state", "due_at"],
    "ix_hotline_work_orders_institution_code_state": ["institution_code", "state", "due_at"],
    "ix_hotline_work_orders_due_at_id": ["due_at", "id"],
    "ix_hotline_work_orders_sla_level_due_at": ["sla_level", "due_at"],
    "ix_hotline_work_orders_source": ["source"],
}


def _new() -> dict[str, tuple[list[str], list[str]]]:
    return {
        f"ix_hotline_wo_list_{lead or 'due'}": (
            [*([lead] if lead else []), "due_at", "id"],
            [c for c in FILTERS if c != lead],
        )
        for lead in (None, *FILTERS)
    }


def upgrade() -> None:
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        for name in OLD:
            batch_op.drop_index(name)
        for name, (columns, include) in _new().items():
            batch_op.create_index(name, columns, unique=False, postgresql_include=include)


def downgrade() -> None:
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        for name in _new():
            batch_op.drop_index(name)
        for name, columns in OLD.items():
            batch_op.create_index(name, columns, unique=False)
