"""Booking: cheaper slot updates (HOT) and a notification whenever places may come back.

Every booking updates its slot's row (booked_x + 1, updated_at). With updated_at indexed, each such
UPDATE wrote a new entry into all five of the slots' indexes; nothing reads by updated_at, so the index
goes, and on PostgreSQL the table keeps 30% of each page free so the new row version stays on its page
(a HOT update: no index entry at all).

On PostgreSQL a trigger sends NOTIFY rhip_booking_places '<slot id>' (delivered at commit) whenever a
slot's row changes in a way that can make a refused booking succeed or change the rule that refuses it:
a place returned (booked_x down), a capacity or status change (reflow, clinic stop), a release or start
time moved. The booking workers LISTEN on it and forget a slot they remember as full at once (pgbatch),
so a place given back in one worker is not refused from another worker's memory. SQLite: only the index.

Revision ID: 0014_booking_hot_slots
Revises: 0013_booking_book_many
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0014_booking_hot_slots"
down_revision = "0013_booking_book_many"
branch_labels = None
depends_on = None

NOTIFY_FN = """
CREATE OR REPLACE FUNCTION rhip_booking_places_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rhip_booking_places', NEW.id::text);
    RETURN NULL;
END $$;
"""

# a booking (booked_x + 1 and nothing else that matters) does not notify
TRIGGER = """
CREATE TRIGGER booking_slots_places AFTER UPDATE ON booking_slots FOR EACH ROW
WHEN (NEW.booked_public < OLD.booked_public OR NEW.booked_family < OLD.booked_family
      OR NEW.booked_clinic < OLD.booked_clinic
      OR NEW.cap_public <> OLD.cap_public OR NEW.cap_family <> OLD.cap_family
      OR NEW.cap_clinic <> OLD.cap_clinic OR NEW.status <> OLD.status
      OR NEW.public_release_at <> OLD.public_release_at OR NEW.family_release_at <> OLD.family_release_at
      OR NEW.starts_at <> OLD.starts_at)
EXECUTE FUNCTION rhip_booking_places_notify();
"""


def upgrade() -> None:
    op.drop_index("ix_booking_slots_updated_at", table_name="booking_slots")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE booking_slots SET (fillfactor = 70)")
    op.execute(NOTIFY_FN)
    op.execute(TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS booking_slots_places ON booking_slots")
        op.execute("DROP FUNCTION IF EXISTS rhip_booking_places_notify()")
        op.execute("ALTER TABLE booking_slots RESET (fillfactor)")
    op.create_index("ix_booking_slots_updated_at", "booking_slots", ["updated_at"], unique=False)
