"""Booking: schedules, slots (per-tranche capacities and counters), appointments, rules, person locks,
suspensions, appeals, waitlist, referrals, signings, delayed returns, local calendar overrides.

Revision ID: 0010_booking
Revises: 0002_registry
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rhip.db.base

revision = "0010_booking"
down_revision = "0002_registry"
branch_labels = ("booking",)
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "booking_calendar",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_booking_calendar")),
    )
    op.create_table(
        "booking_person_locks",
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("bumps", sa.Integer(), nullable=False),
        sa.Column("suspended_until", rhip.db.base.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_booking_person_locks")),
    )
    op.create_table(
        "booking_referrals",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("person_name", sa.String(length=64), nullable=True),
        sa.Column("from_institution", sa.String(length=32), nullable=False),
        sa.Column("to_institution", sa.String(length=32), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("appointment_id", BigId, nullable=True),
        sa.Column("parent_id", BigId, nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("updated_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_referrals")),
    )
    op.create_index(
        op.f("ix_booking_referrals_from_institution"), "booking_referrals", ["from_institution"], unique=False
    )
    op.create_index(op.f("ix_booking_referrals_person_id"), "booking_referrals", ["person_id"], unique=False)
    op.create_index(
        op.f("ix_booking_referrals_to_institution"), "booking_referrals", ["to_institution"], unique=False
    )
    op.create_table(
        "booking_rules",
        sa.Column("hospital_code", sa.String(length=32), nullable=False),
        sa.Column("release_days_ahead", sa.Integer(), nullable=True),
        sa.Column("release_time", sa.String(length=5), nullable=True),
        sa.Column("family_share_pct", sa.Integer(), nullable=True),
        sa.Column("family_days_earlier", sa.Integer(), nullable=True),
        sa.Column("clinic_share_pct", sa.Integer(), nullable=True),
        sa.Column("cancel_cutoff_days", sa.Integer(), nullable=True),
        sa.Column("cancel_cutoff_time", sa.String(length=5), nullable=True),
        sa.Column("checkin_grace_minutes", sa.Integer(), nullable=True),
        sa.Column("limit_dept_day", sa.Integer(), nullable=True),
        sa.Column("limit_day", sa.Integer(), nullable=True),
        sa.Column("limit_week", sa.Integer(), nullable=True),
        sa.Column("noshow_ladder", sa.JSON(), nullable=True),
        sa.Column("prepay_minutes", sa.Integer(), nullable=True),
        sa.Column("return_delay_seconds", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.String(length=128), nullable=True),
        sa.Column("updated_at", rhip.db.base.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("hospital_code", name=op.f("pk_booking_rules")),
    )
    op.create_table(
        "booking_schedules",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("hospital_code", sa.String(length=32), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        sa.Column("department_name", sa.String(length=64), nullable=False),
        sa.Column("doctor_name", sa.String(length=64), nullable=False),
        sa.Column("doctor_title", sa.String(length=32), nullable=False),
        sa.Column("service_type", sa.String(length=32), nullable=False),
        sa.Column("service_date", sa.Date(), nullable=False),
        sa.Column("session", sa.String(length=8), nullable=False),
        sa.Column("starts_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("ends_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("slot_minutes", sa.Integer(), nullable=False),
        sa.Column("capacity_per_slot", sa.Integer(), nullable=False),
        sa.Column("public_release_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("family_release_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stop_reason", sa.String(length=255), nullable=True),
        sa.Column("stopped_at", rhip.db.base.UtcDateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.CheckConstraint("slot_minutes BETWEEN 5 AND 60", name=op.f("ck_booking_schedules_slot_minutes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_schedules")),
        sa.UniqueConstraint(
            "hospital_code",
            "department_code",
            "doctor_name",
            "service_date",
            "session",
            name="uq_booking_schedules_session_key",
        ),
    )
    op.create_index(
        "ix_booking_schedules_find",
        "booking_schedules",
        ["hospital_code", "department_code", "service_date"],
        unique=False,
    )
    op.create_index(
        op.f("ix_booking_schedules_service_date"), "booking_schedules", ["service_date"], unique=False
    )
    op.create_table(
        "booking_signings",
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("institution_code", sa.String(length=32), nullable=False),
        sa.Column("doctor", sa.String(length=128), nullable=False),
        sa.Column("signed_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_booking_signings")),
    )
    op.create_index(
        op.f("ix_booking_signings_institution_code"), "booking_signings", ["institution_code"], unique=False
    )
    op.create_table(
        "booking_suspensions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("starts_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("ends_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("noshows", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("lifted_at", rhip.db.base.UtcDateTime(), nullable=True),
        sa.Column("lifted_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_suspensions")),
    )
    op.create_index(
        op.f("ix_booking_suspensions_person_id"), "booking_suspensions", ["person_id"], unique=False
    )
    op.create_table(
        "booking_slots",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("schedule_id", BigId, nullable=False),
        sa.Column("hospital_code", sa.String(length=32), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        sa.Column("service_date", sa.Date(), nullable=False),
        sa.Column("starts_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("ends_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("cap_public", sa.Integer(), nullable=False),
        sa.Column("cap_family", sa.Integer(), nullable=False),
        sa.Column("cap_clinic", sa.Integer(), nullable=False),
        sa.Column("booked_public", sa.Integer(), nullable=False),
        sa.Column("booked_family", sa.Integer(), nullable=False),
        sa.Column("booked_clinic", sa.Integer(), nullable=False),
        sa.Column("public_release_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("family_release_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("reflowed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.CheckConstraint(
            "booked_public <= cap_public AND booked_family <= cap_family AND booked_clinic <= cap_clinic",
            name=op.f("ck_booking_slots_never_oversold"),
        ),
        sa.CheckConstraint(
            "booked_public >= 0 AND booked_family >= 0 AND booked_clinic >= 0",
            name=op.f("ck_booking_slots_booked_nonneg"),
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["booking_schedules.id"],
            name=op.f("fk_booking_slots_schedule_id_booking_schedules"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_slots")),
    )
    op.create_index(
        "ix_booking_slots_find",
        "booking_slots",
        ["hospital_code", "department_code", "service_date"],
        unique=False,
    )
    op.create_index(op.f("ix_booking_slots_schedule_id"), "booking_slots", ["schedule_id"], unique=False)
    op.create_index(op.f("ix_booking_slots_starts_at"), "booking_slots", ["starts_at"], unique=False)
    op.create_index(op.f("ix_booking_slots_updated_at"), "booking_slots", ["updated_at"], unique=False)
    op.create_table(
        "booking_waitlist",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("schedule_id", BigId, nullable=False),
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("person_name", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("appointment_id", BigId, nullable=True),
        sa.Column("note", sa.String(length=255), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("updated_at", rhip.db.base.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["booking_schedules.id"],
            name=op.f("fk_booking_waitlist_schedule_id_booking_schedules"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_waitlist")),
    )
    op.create_index(op.f("ix_booking_waitlist_person_id"), "booking_waitlist", ["person_id"], unique=False)
    op.create_index(
        "ix_booking_waitlist_queue", "booking_waitlist", ["schedule_id", "status", "id"], unique=False
    )
    op.create_table(
        "booking_appointments",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("slot_id", BigId, nullable=False),
        sa.Column("schedule_id", BigId, nullable=False),
        sa.Column("hospital_code", sa.String(length=32), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        sa.Column("service_date", sa.Date(), nullable=False),
        sa.Column("starts_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("ends_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("person_name", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("tranche", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("referral_id", BigId, nullable=True),
        sa.Column("hold_expires_at", rhip.db.base.UtcDateTime(), nullable=True),
        sa.Column("paid_at", rhip.db.base.UtcDateTime(), nullable=True),
        sa.Column("checked_in_at", rhip.db.base.UtcDateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_role", sa.String(length=32), nullable=False),
        sa.Column("actor_institution", sa.String(length=32), nullable=True),
        sa.Column("created_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("cancelled_by", sa.String(length=128), nullable=True),
        sa.Column("cancelled_at", rhip.db.base.UtcDateTime(), nullable=True),
        sa.Column("cancel_reason", sa.String(length=255), nullable=True),
        sa.Column("updated_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["slot_id"], ["booking_slots.id"], name=op.f("fk_booking_appointments_slot_id_booking_slots")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_appointments")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_booking_appointments_idempotency_key")),
    )
    op.create_index(
        op.f("ix_booking_appointments_channel"), "booking_appointments", ["channel"], unique=False
    )
    op.create_index(
        op.f("ix_booking_appointments_created_at"), "booking_appointments", ["created_at"], unique=False
    )
    op.create_index(
        "ix_booking_appointments_hospital",
        "booking_appointments",
        ["hospital_code", "service_date"],
        unique=False,
    )
    op.create_index(
        "ix_booking_appointments_person", "booking_appointments", ["person_id", "service_date"], unique=False
    )
    op.create_index(
        op.f("ix_booking_appointments_slot_id"), "booking_appointments", ["slot_id"], unique=False
    )
    op.create_index(op.f("ix_booking_appointments_status"), "booking_appointments", ["status"], unique=False)
    op.create_table(
        "booking_slot_returns",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("slot_id", BigId, nullable=False),
        sa.Column("tranche", sa.String(length=8), nullable=False),
        sa.Column("return_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["slot_id"], ["booking_slots.id"], name=op.f("fk_booking_slot_returns_slot_id_booking_slots")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_slot_returns")),
    )
    op.create_index(
        op.f("ix_booking_slot_returns_return_at"), "booking_slot_returns", ["return_at"], unique=False
    )
    op.create_table(
        "booking_appeals",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("appointment_id", BigId, nullable=False),
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", rhip.db.base.UtcDateTime(), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", rhip.db.base.UtcDateTime(), nullable=True),
        sa.Column("decision_note", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["booking_appointments.id"],
            name=op.f("fk_booking_appeals_appointment_id_booking_appointments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_appeals")),
        sa.UniqueConstraint("appointment_id", name=op.f("uq_booking_appeals_appointment_id")),
    )
    op.create_index(op.f("ix_booking_appeals_person_id"), "booking_appeals", ["person_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_booking_appeals_person_id"), table_name="booking_appeals")
    op.drop_table("booking_appeals")
    op.drop_index(op.f("ix_booking_slot_returns_return_at"), table_name="booking_slot_returns")
    op.drop_table("booking_slot_returns")
    op.drop_index(op.f("ix_booking_appointments_status"), table_name="booking_appointments")
    op.drop_index(op.f("ix_booking_appointments_slot_id"), table_name="booking_appointments")
    op.drop_index("ix_booking_appointments_person", table_name="booking_appointments")
    op.drop_index("ix_booking_appointments_hospital", table_name="booking_appointments")
    op.drop_index(op.f("ix_booking_appointments_created_at"), table_name="booking_appointments")
    op.drop_index(op.f("ix_booking_appointments_channel"), table_name="booking_appointments")
    op.drop_table("booking_appointments")
    op.drop_index("ix_booking_waitlist_queue", table_name="booking_waitlist")
    op.drop_index(op.f("ix_booking_waitlist_person_id"), table_name="booking_waitlist")
    op.drop_table("booking_waitlist")
    op.drop_index(op.f("ix_booking_slots_updated_at"), table_name="booking_slots")
    op.drop_index(op.f("ix_booking_slots_starts_at"), table_name="booking_slots")
    op.drop_index(op.f("ix_booking_slots_schedule_id"), table_name="booking_slots")
    op.drop_index("ix_booking_slots_find", table_name="booking_slots")
    op.drop_table("booking_slots")
    op.drop_index(op.f("ix_booking_suspensions_person_id"), table_name="booking_suspensions")
    op.drop_table("booking_suspensions")
    op.drop_index(op.f("ix_booking_signings_institution_code"), table_name="booking_signings")
    op.drop_table("booking_signings")
    op.drop_index(op.f("ix_booking_schedules_service_date"), table_name="booking_schedules")
    op.drop_index("ix_booking_schedules_find", table_name="booking_schedules")
    op.drop_table("booking_schedules")
    op.drop_table("booking_rules")
    op.drop_index(op.f("ix_booking_referrals_to_institution"), table_name="booking_referrals")
    op.drop_index(op.f("ix_booking_referrals_person_id"), table_name="booking_referrals")
    op.drop_index(op.f("ix_booking_referrals_from_institution"), table_name="booking_referrals")
    op.drop_table("booking_referrals")
    op.drop_table("booking_person_locks")
    op.drop_table("booking_calendar")
