"""Request and response models of the telemedicine API."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from rhip.telemed.connections import Coverage
from rhip.telemed.workflow import LABELS


class ConnectionCreate(BaseModel):
    """Connect a registered institution (institution_code) or a site outside the registry."""

    model_config = ConfigDict(extra="forbid")
    institution_code: str | None = None
    site_name: str | None = Field(default=None, max_length=128)
    district: str | None = None
    city: str = "南京市"
    category: str | None = None
    connected_on: date


class ConnectionRead(BaseModel):
    """One connection of an institution to a centre."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    centre_code: str
    institution_code: str | None
    site_name: str
    city: str
    district: str | None
    category: str
    tertiary: bool
    connected_on: date
    disconnected_on: date | None


class DisconnectIn(BaseModel):
    """The day a connection ends."""

    model_config = ConfigDict(extra="forbid")
    on: date


# a centre's coverage is answered as the service computes it (a dataclass FastAPI serialises as it is)
CoverageRead = Coverage


class RequestCreate(BaseModel):
    """A request filed with a centre (FHIR ServiceRequest)."""

    model_config = ConfigDict(extra="forbid")
    centre_code: str
    service_type: str
    priority: str = "routine"
    requester_code: str | None = Field(default=None, description="默认为调用者所在机构")
    requester_name: str | None = Field(default=None, max_length=64)
    performer_code: str | None = None
    department: str | None = Field(default=None, max_length=64)
    patient_id_number: str | None = None
    patient_local_id: str | None = Field(default=None, max_length=64)
    patient_name: str | None = Field(default=None, max_length=64)
    patient_sex: str | None = None
    patient_birth_date: date | None = None
    reason: str | None = Field(default=None, max_length=2000)
    scheduled_at: datetime | None = None


class RequestRead(BaseModel):
    """A request and its Task state (patient fields masked for callers outside the care team)."""

    id: int
    centre_code: str
    service_type: str
    priority: str
    requester_code: str
    requester_name: str | None
    performer_code: str
    department: str | None
    patient_id_number: str | None
    patient_name: str | None
    patient_sex: str | None
    patient_birth_date: date | None
    person_id: str | None
    reason: str | None
    scheduled_at: datetime | None
    status: str
    status_label: str
    status_reason: str | None
    assignee: str | None
    requested_at: datetime
    accepted_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    due_at: datetime | None = None
    overdue: bool | None = None


class TransitionIn(BaseModel):
    """Move a Task: accepted, in_progress, rejected or cancelled (the last two need a reason)."""

    model_config = ConfigDict(extra="forbid")
    status: str
    reason: str | None = Field(default=None, max_length=256)
    assignee: str | None = Field(default=None, max_length=64)


class ReportCreate(BaseModel):
    """The expert's report (FHIR DiagnosticReport)."""

    model_config = ConfigDict(extra="forbid")
    findings: str = Field(min_length=1, max_length=20000)
    conclusion: str = Field(min_length=1, max_length=5000)
    critical: bool = False
    author: str | None = Field(default=None, max_length=64)


class ReportRead(BaseModel):
    """A written report."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    request_id: int
    findings: str
    conclusion: str
    critical: bool
    author: str
    issued_at: datetime
    status: str = "final"
    version: int = 1
    amended_at: datetime | None = None
    amend_reason: str | None = None


class ReportAmend(BaseModel):
    """A correction of a final report: the whole new text and why (DiagnosticReport.status amended)."""

    model_config = ConfigDict(extra="forbid")
    findings: str = Field(min_length=1, max_length=20000)
    conclusion: str = Field(min_length=1, max_length=5000)
    reason: str = Field(min_length=1, max_length=200)
    critical: bool | None = None
    author: str | None = Field(default=None, max_length=64)


class OutboxRead(BaseModel):
    """A report version on its way to intake and the shared record (no patient data: ids only)."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    report_id: int
    version: int
    institution_code: str
    table_name: str
    state: str
    attempts: int
    due_at: datetime
    last_error: str | None
    receipt_id: str | None
    created_at: datetime
    sent_at: datetime | None


class DrainRead(BaseModel):
    """What a drain pass did."""

    sent: list[int]
    retried: list[int]
    failed: list[int]
    receipts: list[str]


class HistoryRead(BaseModel):
    """One transition of a Task."""

    model_config = ConfigDict(from_attributes=True)
    from_status: str | None
    to_status: str
    actor: str
    reason: str | None
    at: datetime


class TatRead(BaseModel):
    """Turnaround of one centre and service type."""

    centre_code: str
    service_type: str
    label: str
    count: int
    median_minutes: float | None
    p90_minutes: float | None
    limit_minutes: int
    overdue: int


class LimitRead(BaseModel):
    """A service type's turnaround limit."""

    model_config = ConfigDict(from_attributes=True)
    centre_code: str
    service_type: str
    label: str
    limit_minutes: int


class LimitUpdate(BaseModel):
    """A new turnaround limit."""

    model_config = ConfigDict(extra="forbid")
    label: str = Field(default="", max_length=32)
    limit_minutes: int


def status_label(status: str) -> str:
    """The Chinese label of a Task state."""
    return LABELS[status]
