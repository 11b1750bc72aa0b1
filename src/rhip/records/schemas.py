"""Records API models: timeline entries, reports, consents, codes, the access log, reminders, CDS Hooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class EntryRead(BaseModel):
    """One timeline item."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    institution_code: str
    source: str
    occurred_at: datetime
    title: str
    code: str | None
    abnormal: bool
    detail: dict[str, Any]


class TimelineRead(BaseModel):
    """A person's record as the caller may see it, and on what basis."""

    person_id: str
    basis: str
    institution_only: str | None
    entries: list[EntryRead]
    reminders: list[ReminderRead] | None = Field(default=None, description="请求 reminders=true 时的智能提示")


class ConsentCreate(BaseModel):
    """A resident's grant to an institution (or one of its doctors)."""

    institution_code: str = Field(min_length=1, max_length=32)
    doctor: str | None = Field(default=None, max_length=128, description="医生用户名；为空时授权整个机构")
    days: int = Field(default=30, ge=1, le=366)


class ConsentRead(BaseModel):
    """A consent of any kind."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    person_id: str
    kind: str
    grantee_institution: str
    grantee_user: str | None
    starts_at: datetime
    ends_at: datetime
    revoked_at: datetime | None
    reason: str | None
    reviewed: bool


class AccessCodeRead(BaseModel):
    """A one-time code for the resident to read to the doctor."""

    code: str
    expires_at: datetime


class RedeemRequest(BaseModel):
    """A clinician redeems the code the resident read out."""

    code: str = Field(pattern=r"^\d{6}$")


class EmergencyRequest(BaseModel):
    """Break-the-glass with a stated reason."""

    reason: str = Field(min_length=4, max_length=500)


class AccessLogRead(BaseModel):
    """One entry of the record-access log."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    role: str
    institution_code: str | None
    person_id: str
    action: str
    basis: str
    outcome: str
    detail: str | None


class MeasurementCreate(BaseModel):
    """A self-measured value."""

    kind: Literal["systolic", "diastolic", "glucose", "weight", "steps", "heart_rate"]
    value: float = Field(ge=-1e9, le=1e9)
    measured_at: datetime | None = None


class OrderIn(BaseModel):
    """An order about to be placed."""

    name: str = Field(min_length=1, max_length=200)
    code: str | None = Field(default=None, max_length=50)


class RemindersRequest(BaseModel):
    """The intended orders (empty: reminders for opening the record)."""

    orders: list[OrderIn] = Field(default_factory=list, max_length=100)


class ReminderRead(BaseModel):
    """One reminder."""

    category: str
    indicator: str
    summary: str
    detail: str
    entries: list[int]
    rule: str | None


class VerifyRead(BaseModel):
    """The hash chain's state."""

    checked: int
    broken_at: int | None
    reason: str | None
