"""Hotline: the work-order events lose their foreign key to the orders.

The key's check is a trigger per inserted row (an index probe and a FOR KEY SHARE lock that writes every
referenced order's tuple): 58% of the SLA job's database CPU when it announces 100,000 marks (0.52 of 0.90 s,
benchmarks/hotline.py, PostgreSQL 15). Nothing deletes a work order (an order is closed, never removed), and
every event is written with the id of an order read in the same statement (the SLA job's INSERT … SELECT) or
held by the same transaction (orders.py), so the key guarded against nothing the code can do. The (order_id,
action) index stays: an order's history and the job's "already announced" check read it.

Revision ID: 0063_hotline_events_no_fk
Revises: 0062_hotline_sla_derived
Create Date: 2026-12-07 17:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0063_hotline_events_no_fk"
down_revision = "0062_hotline_sla_derived"
branch_labels = None
depends_on = None

EVENTS = "hotline_work_order_events"
FK = "fk_hotline_work_order_events_order_id_hotline_work_orders"


def upgrade() -> None:
    # SQLite: batch mode copies the events table (nothing references it) without the key
    with op.batch_alter_table(EVENTS, schema=None) as batch_op:
        batch_op.drop_constraint(FK, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table(EVENTS, schema=None) as batch_op:
        batch_op.create_foreign_key(FK, "hotline_work_orders", ["order_id"], ["id"])
