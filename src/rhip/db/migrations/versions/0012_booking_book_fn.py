"""Booking: the booking write as one PostgreSQL function call (rhip_book), one round trip per booking.

The function runs the same steps as the Python path (booker.book on SQLite): the person's lock row,
the slot's refusal rules, the idempotency key, the family-doctor signing, the suspension, the limits,
then THE one conditional UPDATE that takes the place and the INSERT of the appointment. Each statement
of a VOLATILE function takes a fresh snapshot under READ COMMITTED, so the limits read after the
person's lock see every booking the person's earlier transactions committed. SQLite: nothing to do.

Revision ID: 0012_booking_book_fn
Revises: 0011_booking_notify
Create Date: 2026-11-22
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0012_booking_book_fn"
down_revision = "0011_booking_notify"
branch_labels = None
depends_on = None

# the functions' text as this migration made them: snapshots of src/rhip/booking/sql/ (the source, which
# a later migration snapshots again when it changes a function; tests/booking/test_sql_sources.py)
SQL = Path(__file__).with_name("sql")


def _sql(name: str) -> str:
    return (SQL / name).read_text(encoding="utf-8")


REFUSAL = _sql("0012_rhip_booking_refusal.sql")
BOOK = _sql("0012_rhip_book.sql")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(REFUSAL)
    op.execute(BOOK)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "DROP FUNCTION IF EXISTS rhip_book(bigint, text, text, text, timestamptz, text, text, text, "
        "text, text, bigint, text, integer, integer, integer, integer)"
    )
    op.execute("DROP FUNCTION IF EXISTS rhip_booking_refusal(booking_slots, text, timestamptz, text, text)")
