"""Booking API models: English field names, times in Asia/Shanghai, Chinese labels alongside codes."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from pydantic import BaseModel, Field

from rhip.booking import common, referrals as booking_referrals, schedules as rota
from rhip.booking.models import Appeal, Appointment, Referral, Schedule, Slot, WaitlistEntry
from rhip.booking.rules import SESSIONS
from rhip.clock import SHANGHAI
from rhip.registry import data as reg_data
from rhip.security import masking


def local(t: datetime | None) -> datetime | None:
    """An instant as Asia/Shanghai local time (what people see)."""
    return t.astimezone(SHANGHAI) if t else None


class SlotRead(BaseModel):
    id: int
    schedule_id: int
    start: datetime
    end: datetime
    status: str
    capacity: int
    public_left: int
    public_open: bool
    family_left: int | None = None
    family_open: bool | None = None
    clinic_left: int | None = None

    @classmethod
    def of(cls, slot: Slot, *, family: bool = False, clinic: bool = False) -> SlotRead:
        """A slot as the caller may see it (family and clinic figures only for those who book them)."""
        a = rota.availability(slot)
        return cls(
            id=slot.id,
            schedule_id=slot.schedule_id,
            start=slot.starts_at.astimezone(SHANGHAI),
            end=slot.ends_at.astimezone(SHANGHAI),
            status=slot.status,
            capacity=slot.capacity,
            public_left=a.public_left,
            public_open=a.public_open,
            family_left=a.family_left if family else None,
            family_open=a.family_open if family else None,
            clinic_left=a.clinic_left if clinic else None,
        )


class ScheduleRead(BaseModel):
    id: int
    hospital_code: str
    hospital_name: str
    department_code: str
    department_name: str
    doctor_name: str
    doctor_title: str
    service_type: str
    service_date: date
    session: str
    session_label: str
    start: datetime
    end: datetime
    slot_minutes: int
    status: str
    stop_reason: str | None
    public_release_at: datetime
    family_release_at: datetime
    public_left: int | None = None
    public_capacity: int | None = None
    slots: list[SlotRead] | None = None

    @classmethod
    def of(
        cls, s: Schedule, *, totals: tuple[int, int] | None = None, slots: list[SlotRead] | None = None
    ) -> ScheduleRead:
        """A schedule with optional totals and slots."""
        inst = reg_data.get(s.hospital_code)
        return cls(
            id=s.id,
            hospital_code=s.hospital_code,
            hospital_name=inst.name if inst else s.hospital_code,
            department_code=s.department_code,
            department_name=s.department_name,
            doctor_name=s.doctor_name,
            doctor_title=s.doctor_title,
            service_type=s.service_type,
            service_date=s.service_date,
            session=s.session,
            session_label=SESSIONS[s.session][2],
            start=s.starts_at.astimezone(SHANGHAI),
            end=s.ends_at.astimezone(SHANGHAI),
            slot_minutes=s.slot_minutes,
            status=s.status,
            stop_reason=s.stop_reason,
            public_release_at=s.public_release_at.astimezone(SHANGHAI),
            family_release_at=s.family_release_at.astimezone(SHANGHAI),
            public_left=totals[0] if totals else None,
            public_capacity=totals[1] if totals else None,
            slots=slots,
        )


class ScheduleCreate(BaseModel):
    hospital_code: str
    department_code: str
    doctor_name: str = Field(min_length=1, max_length=64)
    doctor_title: str = Field(default="主治医师", max_length=32)
    service_date: date
    session: str = Field(description="am 上午, pm 下午, night 夜间")
    slot_minutes: int = Field(ge=5, le=60)
    capacity_per_slot: int = Field(ge=1, le=500)
    start: time | None = None
    end: time | None = None
    service_type: str = "普通门诊"
    allow_holiday: bool = False


class ScheduleBatch(BaseModel):
    hospital_code: str
    department_code: str
    doctor_name: str = Field(min_length=1, max_length=64)
    doctor_title: str = "主治医师"
    date_from: date
    date_to: date
    sessions: list[str] = ["am", "pm"]
    slot_minutes: int = Field(ge=5, le=60)
    capacity_per_slot: int = Field(ge=1, le=500)
    service_type: str = "普通门诊"


class StopRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=200)


class AppointmentCreate(BaseModel):
    slot_id: int
    person_id: str | None = Field(default=None, description="居民身份证号码；居民本人预约时可省略")
    person_name: str | None = None
    channel: str | None = Field(default=None, description="预约途径代码（注册库 channels）")
    tranche: str | None = Field(default=None, description="public / family / clinic")
    idempotency_key: str | None = Field(default=None, max_length=120)


class AppointmentRead(BaseModel):
    id: int
    slot_id: int
    schedule_id: int
    hospital_code: str
    department_code: str
    service_date: date
    start: datetime
    end: datetime
    person_id: str
    person_name: str | None
    channel: str
    tranche: str
    status: str
    status_label: str
    hold_expires_at: datetime | None
    checked_in_at: datetime | None
    cancel_reason: str | None
    referral_id: int | None
    created_at: datetime

    @classmethod
    def of(cls, a: Appointment, viewer: Any = None) -> AppointmentRead:
        """An appointment for the API; with a viewer, the ID number and name as that viewer may see them
        (rhip.security.masking: the number whole only for its resident, the name for the care roles)."""
        fields = appointment_fields(a)
        if viewer is not None:
            m = masking.Masker(viewer)
            fields["person_id"] = m.id(a.person_id)
            fields["person_name"] = m.value(masking.Kind.name, a.person_name, a.person_id)
        return cls(**fields)


def appointment_fields(a: Any) -> dict[str, Any]:
    """AppointmentRead's fields, in its order, from anything with an appointment's columns as attributes.

    The booking route on PostgreSQL serialises this dict with orjson (the same JSON, without a model).
    """
    return {
        "id": a.id,
        "slot_id": a.slot_id,
        "schedule_id": a.schedule_id,
        "hospital_code": a.hospital_code,
        "department_code": a.department_code,
        "service_date": a.service_date,
        "start": a.starts_at.astimezone(SHANGHAI),
        "end": a.ends_at.astimezone(SHANGHAI),
        "person_id": a.person_id,
        "person_name": a.person_name,
        "channel": a.channel,
        "tranche": a.tranche,
        "status": a.status,
        "status_label": common.STATUS_LABELS.get(a.status, a.status),
        "hold_expires_at": local(a.hold_expires_at),
        "checked_in_at": local(a.checked_in_at),
        "cancel_reason": a.cancel_reason,
        "referral_id": a.referral_id,
        "created_at": a.created_at.astimezone(SHANGHAI),
    }


class CancelRequest(BaseModel):
    reason: str | None = Field(default=None, max_length=200)


class AppealCreate(BaseModel):
    reason: str = Field(min_length=2, max_length=500)


class AppealDecision(BaseModel):
    accept: bool
    note: str | None = None


class AppealRead(BaseModel):
    id: int
    appointment_id: int
    person_id: str
    reason: str
    status: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None

    @classmethod
    def of(cls, a: Appeal, viewer: Any = None) -> AppealRead:
        """An appeal for the API (the ID number as the viewer may see it, with a viewer)."""
        out = cls.model_validate(a, from_attributes=True)
        if viewer is not None:
            out.person_id = masking.Masker(viewer).id(out.person_id) or ""
        return out


class WaitlistCreate(BaseModel):
    schedule_id: int
    person_id: str | None = None
    person_name: str | None = None
    channel: str | None = None


class WaitlistRead(BaseModel):
    id: int
    schedule_id: int
    person_id: str
    channel: str
    status: str
    appointment_id: int | None
    note: str | None
    created_at: datetime

    @classmethod
    def of(cls, e: WaitlistEntry) -> WaitlistRead:
        """A waitlist entry for the API."""
        return cls.model_validate(e, from_attributes=True)


class SigningCreate(BaseModel):
    person_id: str


class ReferralUp(BaseModel):
    person_id: str
    person_name: str | None = None
    slot_id: int
    reason: str = Field(min_length=1, max_length=500)
    idempotency_key: str | None = None


class ReferralDown(BaseModel):
    person_id: str
    person_name: str | None = None
    to_institution: str
    reason: str = Field(min_length=1, max_length=500)
    parent_id: int | None = None


class ReferralStatus(BaseModel):
    status: str
    note: str | None = None


class ReferralRead(BaseModel):
    id: int
    direction: str
    person_id: str
    person_name: str | None
    from_institution: str
    to_institution: str
    department_code: str | None
    reason: str
    status: str
    status_label: str
    appointment_id: int | None
    parent_id: int | None
    note: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, r: Referral, viewer: Any = None) -> ReferralRead:
        """A referral for the API (the person as the viewer may see them, with a viewer)."""
        data: dict[str, Any] = {c.key: getattr(r, c.key) for c in r.__table__.columns}
        data["status_label"] = booking_referrals.REFERRAL_STATUS.get(r.status, r.status)
        if viewer is not None:
            data = masking.Masker(viewer).fields(data, owner=r.person_id)
        return cls.model_validate(data)


class HospitalRead(BaseModel):
    code: str
    name: str
    level: str
    tertiary: bool
    district: str | None
    city: str
    public_left: int


class DepartmentRead(BaseModel):
    code: str
    name: str
    public_left: int


class CalendarDayRead(BaseModel):
    day: date
    kind: str
    name: str


class ResidentCreate(BaseModel):
    id_number: str = Field(max_length=32, description="居民身份证号码（实名）")
    name: str = Field(min_length=2, max_length=32)
    phone: str = Field(max_length=20, description="手机号码；每个号码可注册的就诊人数有上限")
    password: str = Field(min_length=8, max_length=128)


class SignupAccepted(BaseModel):
    signup_id: str = Field(description="本次注册的编号：与短信验证码一起提交")
    message: str


class SignupVerify(BaseModel):
    signup_id: str = Field(min_length=1, max_length=64)
    code: str = Field(min_length=4, max_length=8, pattern=r"^\s*\d{4,8}\s*$")


class SignupResend(BaseModel):
    signup_id: str = Field(min_length=1, max_length=64)


class InPersonVerify(BaseModel):
    id_number: str = Field(max_length=32, description="窗口核验过身份证的居民身份证号码")


class ResidentRead(BaseModel):
    person_id: str = Field(description="脱敏身份证号码")
    name: str
    phone: str = Field(description="脱敏手机号，如 138****5678")


class NotificationRead(BaseModel):
    id: int
    appointment_id: int | None
    kind: str
    channel: str
    channel_label: str
    message: str
    status: str
    status_label: str
    created_at: datetime
    sent_at: datetime | None
