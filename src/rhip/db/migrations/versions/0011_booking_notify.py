"""Booking: real-name people per phone number (cap), in-clinic places flowing back to the public pool
before the session, and the notification outbox (停诊 messages to booked patients).

Revision ID: 0011_booking_notify
Revises: 0010_booking
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rhip.db.base

revision = "0011_booking_notify"
down_revision = "0010_booking"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Utc = rhip.db.base.UtcDateTime


def upgrade() -> None:
    # a plain-string default keeps SQLite on ALTER TABLE ADD COLUMN: an SQL-expression default would make
    # batch mode copy and drop booking_slots, which the appointments' foreign keys forbid on a filled database
    with op.batch_alter_table("booking_slots") as batch:
        batch.add_column(sa.Column("clinic_reflow_at", Utc(), nullable=True))
        batch.add_column(sa.Column("clinic_reflowed", sa.Boolean(), nullable=False, server_default="0"))
    with op.batch_alter_table("booking_rules") as batch:
        batch.add_column(sa.Column("clinic_reflow_hours", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("max_people_per_phone", sa.Integer(), nullable=True))
    op.create_table(
        "booking_phones",
        sa.Column("phone", sa.String(11), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("updated_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_booking_phones")),
        sa.CheckConstraint("people >= 0", name=op.f("ck_booking_phones_people_nonneg")),
    )
    op.create_table(
        "booking_phone_people",
        sa.Column("person_id", sa.String(18), nullable=False),
        sa.Column("phone", sa.String(11), nullable=False),
        sa.Column("created_at", Utc(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_booking_phone_people")),
        sa.ForeignKeyConstraint(
            ["phone"], ["booking_phones.phone"], name=op.f("fk_booking_phone_people_phone_booking_phones")
        ),
    )
    op.create_index(op.f("ix_booking_phone_people_phone"), "booking_phone_people", ["phone"])
    op.create_table(
        "booking_notifications",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("person_id", sa.String(18), nullable=False),
        sa.Column("appointment_id", BigId, nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("message", sa.String(500), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(255), nullable=True),
        sa.Column("created_at", Utc(), nullable=False),
        sa.Column("sent_at", Utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_notifications")),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["booking_appointments.id"],
            name=op.f("fk_booking_notifications_appointment_id_booking_appointments"),
        ),
    )
    op.create_index(op.f("ix_booking_notifications_person_id"), "booking_notifications", ["person_id"])
    op.create_index(op.f("ix_booking_notifications_status"), "booking_notifications", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_booking_notifications_status"), table_name="booking_notifications")
    op.drop_index(op.f("ix_booking_notifications_person_id"), table_name="booking_notifications")
    op.drop_table("booking_notifications")
    op.drop_index(op.f("ix_booking_phone_people_phone"), table_name="booking_phone_people")
    op.drop_table("booking_phone_people")
    op.drop_table("booking_phones")
    with op.batch_alter_table("booking_rules") as batch:
        batch.drop_column("max_people_per_phone")
        batch.drop_column("clinic_reflow_hours")
    with op.batch_alter_table("booking_slots") as batch:
        batch.drop_column("clinic_reflowed")
        batch.drop_column("clinic_reflow_at")
