"""Booking: rhip_book_many reads each answered appointment by its primary key, whatever the statistics.

rhip_book_many's last statement joined its answers to booking_appointments. PL/pgSQL keeps a
statement's plan for the session, and a plan made while the table was small (a new database, a booking
worker started early) is a hash join over a sequential scan of the whole table: measured in the booking
benchmark at 38,678 rows, 6.9 ms of every batch (9.5 ms on average across three flash rounds, growing
with the table; the booking of a lone request took 7 ms instead of 0.8). The appointment of each answer
is now fetched in a LATERAL subquery that the planner may not flatten into a join (OFFSET 0): one
primary-key lookup per answer, at any table size and with any statistics. Everything else in the
function is 0013's, unchanged (its text is taken from 0013 and only this join is replaced).

Revision ID: 0015_booking_many_lookup
Revises: 0014_booking_hot_slots
Create Date: 2026-11-22
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0015_booking_many_lookup"
down_revision = "0014_booking_hot_slots"
branch_labels = None
depends_on = None

JOIN = "LEFT JOIN booking_appointments a ON a.id = x.id"
# one index lookup per answer (x.id is NULL for a refusal: no row, the columns stay NULL)
LOOKUP = "LEFT JOIN LATERAL (SELECT * FROM booking_appointments b WHERE b.id = x.id OFFSET 0) AS a ON true"


def _previous() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "_booking_0013", Path(__file__).with_name("0013_booking_book_many.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def many() -> str:
    """rhip_book_many as 0013 made it, with the per-answer lookup in place of the join."""
    text: str = _previous().MANY
    if text.count(JOIN) != 1:
        raise RuntimeError("0013's rhip_book_many has changed: its join to booking_appointments is not found")
    return text.replace(JOIN, LOOKUP)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(many())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_previous().MANY)
