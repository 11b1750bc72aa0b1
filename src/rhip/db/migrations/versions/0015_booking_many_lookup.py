"""Booking: rhip_book_many reads each answered appointment by its primary key, whatever the statistics.

rhip_book_many's last statement joined its answers to booking_appointments. PL/pgSQL keeps a
statement's plan for the session, and a plan made while the table was small (a new database, a booking
worker started early) is a hash join over a sequential scan of the whole table: measured in the booking
benchmark at 38,678 rows, 6.9 ms of every batch (9.5 ms on average across three flash rounds, growing
with the table; the booking of a lone request took 7 ms instead of 0.8). The appointment of each answer
is now fetched in a LATERAL subquery that the planner may not flatten into a join (OFFSET 0): one
primary-key lookup per answer, at any table size and with any statistics. Everything else in the
function is 0013's, unchanged (compare the snapshots versions/sql/0013_ and 0015_rhip_book_many.sql).

Revision ID: 0015_booking_many_lookup
Revises: 0014_booking_hot_slots
Create Date: 2026-11-22
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0015_booking_many_lookup"
down_revision = "0014_booking_hot_slots"
branch_labels = None
depends_on = None

# rhip_book_many as this migration makes it (src/rhip/booking/sql/rhip_book_many.sql when it was made) and
# as 0013 made it (the downgrade): the functions' snapshots, never one patched into the other
SQL = Path(__file__).with_name("sql")


def _sql(name: str) -> str:
    return (SQL / name).read_text(encoding="utf-8")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_sql("0015_rhip_book_many.sql"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_sql("0013_rhip_book_many.sql"))
