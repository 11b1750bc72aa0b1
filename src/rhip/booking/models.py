"""Booking tables: schedules, slots with per-tranche counters, appointments, rules, no-show ladder,
waitlist, referrals, family-doctor signings, the holiday calendar's local overrides."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from rhip.clock import now
from rhip.db.base import Base, UtcDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")

# appointment statuses that hold a place / count against a person's limits
HOLDING = ("held", "booked", "checked_in")
COUNTING = ("held", "booked", "checked_in", "no_show")


class Rule(Base):
    """A hospital's booking rules (or the platform's, hospital_code '*'); NULL means 'use the default'."""

    __tablename__ = "booking_rules"

    hospital_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    release_days_ahead: Mapped[int | None] = mapped_column(Integer)
    release_time: Mapped[str | None] = mapped_column(String(5))
    family_share_pct: Mapped[int | None] = mapped_column(Integer)
    family_days_earlier: Mapped[int | None] = mapped_column(Integer)
    clinic_share_pct: Mapped[int | None] = mapped_column(Integer)
    cancel_cutoff_days: Mapped[int | None] = mapped_column(Integer)
    cancel_cutoff_time: Mapped[str | None] = mapped_column(String(5))
    checkin_grace_minutes: Mapped[int | None] = mapped_column(Integer)
    limit_dept_day: Mapped[int | None] = mapped_column(Integer)
    limit_day: Mapped[int | None] = mapped_column(Integer)
    limit_week: Mapped[int | None] = mapped_column(Integer)
    noshow_ladder: Mapped[list[dict[str, int]] | None] = mapped_column(JSON)
    prepay_minutes: Mapped[int | None] = mapped_column(Integer)
    return_delay_seconds: Mapped[int | None] = mapped_column(Integer)
    clinic_reflow_hours: Mapped[int | None] = mapped_column(Integer)
    max_people_per_phone: Mapped[int | None] = mapped_column(Integer)
    updated_by: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Schedule(Base):
    """One doctor's (or a clinic's) session on one day: 上午, 下午 or 夜间."""

    __tablename__ = "booking_schedules"
    __table_args__ = (
        UniqueConstraint(
            "hospital_code",
            "department_code",
            "doctor_name",
            "service_date",
            "session",
            name="uq_booking_schedules_session_key",
        ),
        Index("ix_booking_schedules_find", "hospital_code", "department_code", "service_date"),
        CheckConstraint("slot_minutes BETWEEN 5 AND 60", name="slot_minutes"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    hospital_code: Mapped[str] = mapped_column(String(32))
    department_code: Mapped[str] = mapped_column(String(32))
    department_name: Mapped[str] = mapped_column(String(64))
    doctor_name: Mapped[str] = mapped_column(String(64))
    doctor_title: Mapped[str] = mapped_column(String(32))
    service_type: Mapped[str] = mapped_column(String(32), default="普通门诊")
    service_date: Mapped[date] = mapped_column(Date, index=True)
    session: Mapped[str] = mapped_column(String(8))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    slot_minutes: Mapped[int] = mapped_column(Integer)
    capacity_per_slot: Mapped[int] = mapped_column(Integer)
    public_release_at: Mapped[datetime] = mapped_column(UtcDateTime)
    family_release_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), default="open")
    stop_reason: Mapped[str | None] = mapped_column(String(255))
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class Slot(Base):
    """A time slot at minute granularity with three tranches: public, family-doctor and in-clinic.

    booked_x ≤ cap_x is checked by the database too; the booking write is one conditional UPDATE.
    """

    __tablename__ = "booking_slots"
    __table_args__ = (
        CheckConstraint(
            "booked_public >= 0 AND booked_family >= 0 AND booked_clinic >= 0", name="booked_nonneg"
        ),
        CheckConstraint(
            "booked_public <= cap_public AND booked_family <= cap_family AND booked_clinic <= cap_clinic",
            name="never_oversold",
        ),
        Index("ix_booking_slots_find", "hospital_code", "department_code", "service_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("booking_schedules.id"), index=True)
    hospital_code: Mapped[str] = mapped_column(String(32))
    department_code: Mapped[str] = mapped_column(String(32))
    service_date: Mapped[date] = mapped_column(Date)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), default="open")
    capacity: Mapped[int] = mapped_column(Integer)
    cap_public: Mapped[int] = mapped_column(Integer)
    cap_family: Mapped[int] = mapped_column(Integer, default=0)
    cap_clinic: Mapped[int] = mapped_column(Integer, default=0)
    booked_public: Mapped[int] = mapped_column(Integer, default=0)
    booked_family: Mapped[int] = mapped_column(Integer, default=0)
    booked_clinic: Mapped[int] = mapped_column(Integer, default=0)
    public_release_at: Mapped[datetime] = mapped_column(UtcDateTime)
    family_release_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reflowed: Mapped[bool] = mapped_column(Boolean, default=False)
    # unused in-clinic (诊间) places flow into the public pool at this instant (rule clinic_reflow_hours)
    clinic_reflow_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    clinic_reflowed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # not indexed: a booking sets it, and an indexed column would make every booking's UPDATE non-HOT
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class Appointment(Base):
    """A real-name booking of one place in one slot, through one channel, from one tranche."""

    __tablename__ = "booking_appointments"
    __table_args__ = (
        Index("ix_booking_appointments_person", "person_id", "service_date"),
        Index("ix_booking_appointments_hospital", "hospital_code", "service_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("booking_slots.id"), index=True)
    schedule_id: Mapped[int] = mapped_column(BigId)
    hospital_code: Mapped[str] = mapped_column(String(32))
    department_code: Mapped[str] = mapped_column(String(32))
    service_date: Mapped[date] = mapped_column(Date)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    person_id: Mapped[str] = mapped_column(String(18))
    person_name: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32), index=True)
    tranche: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    referral_id: Mapped[int | None] = mapped_column(BigId)
    hold_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    checked_in_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    created_role: Mapped[str] = mapped_column(String(32))
    actor_institution: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, index=True)
    cancelled_by: Mapped[str | None] = mapped_column(String(128))
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class PersonLock(Base):
    """One row per person: bookings of the same person serialise on it, so limits are race-free."""

    __tablename__ = "booking_person_locks"

    person_id: Mapped[str] = mapped_column(String(18), primary_key=True)
    bumps: Mapped[int] = mapped_column(Integer, default=0)
    suspended_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Suspension(Base):
    """A person may not book between starts_at and ends_at (no-show ladder), unless lifted on appeal."""

    __tablename__ = "booking_suspensions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(String(18), index=True)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    noshows: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(255))
    lifted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(128))


class Appeal(Base):
    """A resident's appeal against a recorded no-show (申诉)."""

    __tablename__ = "booking_appeals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("booking_appointments.id"), unique=True)
    person_id: Mapped[str] = mapped_column(String(18), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decision_note: Mapped[str | None] = mapped_column(String(500))


class WaitlistEntry(Base):
    """A place in the queue (候补) for a schedule; filled automatically in order when a place returns."""

    __tablename__ = "booking_waitlist"
    __table_args__ = (Index("ix_booking_waitlist_queue", "schedule_id", "status", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("booking_schedules.id"))
    person_id: Mapped[str] = mapped_column(String(18), index=True)
    person_name: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    appointment_id: Mapped[int | None] = mapped_column(BigId)
    note: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Referral(Base):
    """Two-way referral (双向转诊): up from a family doctor to a specialist, down back to the community."""

    __tablename__ = "booking_referrals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    direction: Mapped[str] = mapped_column(String(8))
    person_id: Mapped[str] = mapped_column(String(18), index=True)
    person_name: Mapped[str | None] = mapped_column(String(64))
    from_institution: Mapped[str] = mapped_column(String(32), index=True)
    to_institution: Mapped[str] = mapped_column(String(32), index=True)
    department_code: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16))
    appointment_id: Mapped[int | None] = mapped_column(BigId)
    parent_id: Mapped[int | None] = mapped_column(BigId)
    note: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class Signing(Base):
    """A resident signed with a family doctor (家庭医生签约); needed for priority-tranche bookings."""

    __tablename__ = "booking_signings"

    person_id: Mapped[str] = mapped_column(String(18), primary_key=True)
    institution_code: Mapped[str] = mapped_column(String(32), index=True)
    doctor: Mapped[str] = mapped_column(String(128))
    signed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class SlotReturn(Base):
    """A cancelled place that goes back to the pool later (anti-scalping random delay)."""

    __tablename__ = "booking_slot_returns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("booking_slots.id"))
    tranche: Mapped[str] = mapped_column(String(8))
    return_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    done: Mapped[bool] = mapped_column(Boolean, default=False)


class CalendarOverride(Base):
    """A local change to the built-in holiday calendar: a day made a holiday or a working day."""

    __tablename__ = "booking_calendar"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(64))


def as_dict(obj: Any) -> dict[str, Any]:
    """A row's columns as a dict (for logs and tests)."""
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns}


class Phone(Base):
    """A mobile number that real-name residents registered with, and how many people use it (capped)."""

    __tablename__ = "booking_phones"
    __table_args__ = (CheckConstraint("people >= 0", name="people_nonneg"),)

    phone: Mapped[str] = mapped_column(String(11), primary_key=True)
    people: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class PhonePerson(Base):
    """The phone number a real-name resident (就诊人) registered with: one per person."""

    __tablename__ = "booking_phone_people"

    person_id: Mapped[str] = mapped_column(String(18), primary_key=True)
    phone: Mapped[str] = mapped_column(ForeignKey("booking_phones.phone"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class Notification(Base):
    """The outbox: a message to a person (e.g. 停诊), delivered through its channel by a job."""

    __tablename__ = "booking_notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(String(18), index=True)
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("booking_appointments.id"))
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))  # sms / wechat / app
    message: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending / sent / failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
