"""Booking: cheaper slot updates (HOT) and a notification whenever places may come back.

Every booking updates its slot's row (booked_x + 1, updated_at). With updated_at indexed, each such
UPDATE wrote a new entry into all five of the slots' indexes; nothing reads by updated_at, so the index
goes, and on PostgreSQL the table keeps 30% of each page free so the new row version stays on its page
(a HOT update: no index entry at all).

On PostgreSQL two triggers send NOTIFY rhip_booking_places '<slot id>' (delivered at commit) whenever a
slot's row changes in a way that can make a refused booking succeed or change the rule that refuses it:
a place returned (booked_x down), a capacity or status change (reflow, clinic stop), a release or start
time moved. The booking workers LISTEN on it and forget a slot they remember as full at once (pgbatch),
so a place given back in one worker is not refused from another worker's memory. SQLite: only the index.

Revision ID: 0014_booking_hot_slots
Revises: 0013_booking_book_many
Create Date: 2026-11-22
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0014_booking_hot_slots"
down_revision = "0013_booking_book_many"
branch_labels = None
depends_on = None

# the functions' text as this migration made them: snapshots of src/rhip/booking/sql/ (the source, which
# a later migration snapshots again when it changes a function; tests/booking/test_sql_sources.py)
SQL = Path(__file__).with_name("sql")


def _sql(name: str) -> str:
    return (SQL / name).read_text(encoding="utf-8")


NOTIFY_FN = _sql("0014_rhip_booking_places_notify.sql")


# Two triggers, so that a booking (booked_x + 1 and updated_at) costs as little as possible: PostgreSQL
# parses and compiles a trigger's WHEN clause for every statement that fires the trigger, and each
# booking is its own UPDATE statement. A trigger limited to columns (UPDATE OF ...) is skipped before
# its WHEN clause when the statement sets none of them: the columns a booking never sets need no WHEN
# at all (any statement setting them notifies; a needless notification only makes a worker forget a
# slot, which is always safe), and the booked_x columns get the shortest clause that tells a return
# from a booking. Measured (pgbench, rhip_book_many, 16 per call): one trigger with the whole clause
# on every UPDATE cost ~11 us of PostgreSQL CPU per booking, these two ~2-4 us.
CHANGED = """
CREATE TRIGGER booking_slots_changed
AFTER UPDATE OF cap_public, cap_family, cap_clinic, status, public_release_at, family_release_at, starts_at
ON booking_slots FOR EACH ROW EXECUTE FUNCTION rhip_booking_places_notify();
"""
RETURNED = """
CREATE TRIGGER booking_slots_returned
AFTER UPDATE OF booked_public, booked_family, booked_clinic ON booking_slots FOR EACH ROW
WHEN (NEW.booked_public < OLD.booked_public OR NEW.booked_family < OLD.booked_family
      OR NEW.booked_clinic < OLD.booked_clinic)
EXECUTE FUNCTION rhip_booking_places_notify();
"""


def upgrade() -> None:
    op.drop_index("ix_booking_slots_updated_at", table_name="booking_slots")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE booking_slots SET (fillfactor = 70)")
    op.execute(NOTIFY_FN)
    op.execute(CHANGED)
    op.execute(RETURNED)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS booking_slots_returned ON booking_slots")
        op.execute("DROP TRIGGER IF EXISTS booking_slots_changed ON booking_slots")
        op.execute("DROP FUNCTION IF EXISTS rhip_booking_places_notify()")
        op.execute("ALTER TABLE booking_slots RESET (fillfactor)")
    op.create_index("ix_booking_slots_updated_at", "booking_slots", ["updated_at"], unique=False)
