"""Booking: many bookings in one call and one transaction (rhip_book_many), for group commit.

The steps of rhip_book after the person's lock move into rhip_book_locked (the suspension read from
the lock row is passed in); rhip_book is now the lock plus that function, so the single booking does
exactly what it did. rhip_book_many takes arrays (one element per booking) and runs in one
transaction: first every person's lock row in person-id order, then each booking in slot-id order by
rhip_book_locked — so every batch takes its locks in one global order (persons, then slots) and two
batches never wait on each other in a cycle. Each booking is still decided by THE one conditional
UPDATE; a person's later bookings in the same batch see the earlier ones (same transaction), and those
of other transactions wait on the person's lock row. It answers one row per booking, in input order:
the code, the refusal's details, for `slot-full` the idempotency keys of the slot's bookings (for the
sold-out memory), and for `booked` and `replay` the appointment's columns as stored. SQLite: nothing.

Revision ID: 0013_booking_book_many
Revises: 0012_booking_book_fn
Create Date: 2026-11-22
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0013_booking_book_many"
down_revision = "0012_booking_book_fn"
branch_labels = None
depends_on = None

ARGS = """p_slot_id bigint, p_pid text, p_tranche text, p_key text, p_now timestamptz,
    p_role text, p_inst text, p_subject text, p_person_name text, p_channel text,
    p_referral_id bigint, p_actor_institution text,
    p_limit_dept integer, p_limit_day integer, p_limit_week integer, p_prepay integer"""
ARG_TYPES = (
    "bigint, text, text, text, timestamptz, text, text, text, text, text, bigint, text, "
    "integer, integer, integer, integer"
)

# the functions' text as this migration made them: snapshots of src/rhip/booking/sql/ (the source, which
# a later migration snapshots again when it changes a function; tests/booking/test_sql_sources.py)
SQL = Path(__file__).with_name("sql")


def _sql(name: str) -> str:
    return (SQL / name).read_text(encoding="utf-8")


LOCKED = _sql("0013_rhip_book_locked.sql")
BOOK = _sql("0013_rhip_book.sql")
MANY = _sql("0013_rhip_book_many.sql")


MANY_ARGS = (
    "bigint[], text[], text[], text[], timestamptz[], text[], text[], text[], text[], text[], bigint[], "
    "text[], integer, integer, integer, integer"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(LOCKED)
    op.execute(BOOK)
    op.execute(MANY)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION IF EXISTS rhip_book_many({MANY_ARGS})")
    # rhip_book as 0012 made it (its own body again), before the function it now calls goes
    op.execute(_sql("0012_rhip_book.sql"))
    op.execute(f"DROP FUNCTION IF EXISTS rhip_book_locked({ARG_TYPES}, timestamptz)")
