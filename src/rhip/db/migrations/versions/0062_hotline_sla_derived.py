"""Hotline: an open work order's SLA level is derived from its marks when read, no longer stored.

`sla_level` (kept fresh by the SLA job, an UPDATE per order per mark) and `sla_checked_at` go;
`sla_stopped_level` keeps the level of an order whose clock stopped (replied, closed): for those rows it is
their stored level, so what users saw stays; open rows get NULL (their level comes from the marks). The list
indexes carry the marks instead of the level; the job gets indexes for its walks, the events an (order_id,
action) index for its "already announced" check, and `hotline_sla_runs` records completed runs (the next
run's watermark).

Revision ID: 0062_hotline_sla_derived
Revises: 0061_hotline_list_indexes
Create Date: 2026-12-07 13:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rhip.db.base

revision = "0062_hotline_sla_derived"
down_revision = "0061_hotline_list_indexes"
branch_labels = None
depends_on = None

TABLE = "hotline_work_orders"
EVENTS = "hotline_work_order_events"
OPEN = "('new', 'assigned', 'in_progress', 'reopened', 'escalated')"  # sla.OPEN_STATES, as of this revision
CARRIED = ["warn50_at", "warn75_at"]
OLD_FILTERS = ("state", "institution_code", "source", "sla_level")  # 0061's list indexes
NEW_FILTERS = ("state", "institution_code", "source", "sla_stopped_level")
JOB = {
    "ix_hotline_wo_warn50": (["warn50_at", "id"], ["state", "warn75_at", "due_at"]),
    "ix_hotline_wo_warn75": (["warn75_at", "id"], ["state", "due_at"]),
    "ix_hotline_wo_updated": (["updated_at", "id"], []),
}
OLD_JOB = {f"ix_hotline_work_orders_sla_level_{m}": ["sla_level", m] for m in ("warn50_at", "warn75_at")}


def _lists(filters: tuple[str, ...], carried: list[str]) -> dict[str, tuple[list[str], list[str]]]:
    return {
        f"ix_hotline_wo_list_{lead or 'due'}": (
            [*([lead] if lead else []), "due_at", "id"],
            [*(c for c in filters if c != lead), *carried],
        )
        for lead in (None, *filters)
    }


def upgrade() -> None:
    op.create_table(
        "hotline_sla_runs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("breach", sa.Integer(), nullable=False),
        sa.Column("warn75", sa.Integer(), nullable=False),
        sa.Column("warn50", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_sla_runs")),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.add_column(sa.Column("sla_stopped_level", sa.String(length=8), nullable=True))
    op.execute(f"UPDATE {TABLE} SET sla_stopped_level = sla_level WHERE state NOT IN {OPEN}")
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        for name in [*_lists(OLD_FILTERS, []), *OLD_JOB]:
            batch_op.drop_index(name)
    # not in batch mode: SQLite's own DROP COLUMN (3.35+), where a batch would copy and drop the table that
    # the events' and conversations' foreign keys reference
    op.drop_column(TABLE, "sla_level")
    op.drop_column(TABLE, "sla_checked_at")
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        for name, (columns, include) in {**_lists(NEW_FILTERS, CARRIED), **JOB}.items():
            batch_op.create_index(name, columns, unique=False, postgresql_include=include)
    with op.batch_alter_table(EVENTS, schema=None) as batch_op:
        batch_op.drop_index("ix_hotline_work_order_events_order_id")
        batch_op.create_index("ix_hotline_wo_events_order_action", ["order_id", "action"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table(EVENTS, schema=None) as batch_op:
        batch_op.drop_index("ix_hotline_wo_events_order_action")
        batch_op.create_index("ix_hotline_work_order_events_order_id", ["order_id"], unique=False)
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        for name in {**_lists(NEW_FILTERS, CARRIED), **JOB}:
            batch_op.drop_index(name)
        batch_op.add_column(sa.Column("sla_level", sa.String(length=8), nullable=False, server_default="ok"))
        batch_op.add_column(
            sa.Column("sla_checked_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True)
        )
    # an open order's stored level is the highest one the job announced; a stopped one keeps its level
    for level in ("warn50", "warn75", "breach"):
        op.execute(
            f"UPDATE {TABLE} SET sla_level = '{level}' WHERE EXISTS (SELECT 1 FROM {EVENTS} e "
            f"WHERE e.order_id = {TABLE}.id AND e.action = 'sla_{level}')"
        )
    op.execute(f"UPDATE {TABLE} SET sla_level = sla_stopped_level WHERE sla_stopped_level IS NOT NULL")
    op.drop_column(TABLE, "sla_stopped_level")
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        for name, (columns, include) in _lists(OLD_FILTERS, []).items():
            batch_op.create_index(name, columns, unique=False, postgresql_include=include)
        for name, columns in OLD_JOB.items():
            batch_op.create_index(name, columns, unique=False)
    op.drop_table("hotline_sla_runs")
