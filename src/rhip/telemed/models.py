"""Telemedicine tables: connections of institutions to the five centres, the request → report workflow
(FHIR ServiceRequest + Task in one row, its history, DiagnosticReport), imaging studies and series kept
in step with Orthanc, attachments (ECG records, pathology slides), lab specimens, the centres' members
and events, reports collected per institution and day, and the turnaround limits."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from rhip.db.base import Base, UtcDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")

CATEGORIES = ("二级以上", "社区", "都市圈城市", "对外帮扶", "其他")
STATUSES = ("requested", "accepted", "in_progress", "completed", "rejected", "cancelled")
OPEN_STATUSES = ("requested", "accepted", "in_progress")
SPECIMEN_STATES = ("collected", "shipped", "received", "tested", "reported", "rejected")


class Connection(Base):
    """An institution (or a site outside the registry, e.g. a 社区卫生服务站) connected to a centre."""

    __tablename__ = "telemed_connections"
    __table_args__ = (
        UniqueConstraint("centre_code", "site_key", name="uq_telemed_connections_site"),
        Index("ix_telemed_connections_institution", "institution_code", "centre_code"),
        CheckConstraint(
            "category IN ('二级以上', '社区', '都市圈城市', '对外帮扶', '其他')", name="category"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    centre_code: Mapped[str] = mapped_column(String(16), ForeignKey("telemed_centres.code"))
    institution_code: Mapped[str | None] = mapped_column(String(32), ForeignKey("institutions.code"))
    # institution code, or "site:" + name for a site the registry does not hold
    site_key: Mapped[str] = mapped_column(String(160))
    site_name: Mapped[str] = mapped_column(String(128))
    city: Mapped[str] = mapped_column(String(32))
    district: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(16))
    tertiary: Mapped[bool] = mapped_column(default=False)
    # a district-level institution (区属, community centre, district platform, a site in a district): only
    # these make a district "covered"; a provincial or city hospital serves the whole city
    local: Mapped[bool] = mapped_column(default=False)
    connected_on: Mapped[date] = mapped_column(Date)
    disconnected_on: Mapped[date | None] = mapped_column(Date)


class TatLimit(Base):
    """The turnaround limit of one service type at one centre (minutes from request to report)."""

    __tablename__ = "telemed_tat_limits"

    centre_code: Mapped[str] = mapped_column(String(16), ForeignKey("telemed_centres.code"), primary_key=True)
    service_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(32))
    limit_minutes: Mapped[int] = mapped_column(Integer)


class Request(Base):
    """A ServiceRequest and its fulfilling Task: who asks which centre for what, and where it stands."""

    __tablename__ = "telemed_requests"
    __table_args__ = (
        Index("ix_telemed_requests_worklist", "centre_code", "status", "requested_at"),
        # the worklist's first page among many open tasks: oldest open ones, no sort, no closed ones walked
        Index(
            "ix_telemed_requests_open",
            "centre_code",
            "requested_at",
            "id",
            sqlite_where=text("status IN ('requested', 'accepted', 'in_progress')"),
            postgresql_where=text("status IN ('requested', 'accepted', 'in_progress')"),
        ),
        Index("ix_telemed_requests_requester", "requester_code", "requested_at"),
        Index("ix_telemed_requests_month", "requested_at"),
        CheckConstraint(
            "status IN ('requested', 'accepted', 'in_progress', 'completed', 'rejected', 'cancelled')",
            name="status",
        ),
        CheckConstraint("priority IN ('routine', 'urgent', 'stat')", name="priority"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    centre_code: Mapped[str] = mapped_column(String(16), ForeignKey("telemed_centres.code"))
    service_type: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(8), default="routine")
    requester_code: Mapped[str] = mapped_column(String(32), ForeignKey("institutions.code"))
    requester_name: Mapped[str | None] = mapped_column(String(64))
    performer_code: Mapped[str] = mapped_column(String(32), ForeignKey("institutions.code"))
    department: Mapped[str | None] = mapped_column(String(64))
    patient_id_number: Mapped[str | None] = mapped_column(String(18))
    patient_local_id: Mapped[str | None] = mapped_column(String(64))
    patient_name: Mapped[str | None] = mapped_column(String(64))
    patient_sex: Mapped[str | None] = mapped_column(String(1))
    patient_birth_date: Mapped[date | None] = mapped_column(Date)
    person_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    scheduled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), default="requested")
    status_reason: Mapped[str | None] = mapped_column(String(256))
    assignee: Mapped[str | None] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(16), default="api")


class History(Base):
    """One transition of a request's Task (who moved it, when, why)."""

    __tablename__ = "telemed_history"
    __table_args__ = (Index("ix_telemed_history_request", "request_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(BigId, ForeignKey("telemed_requests.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(String(256))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class Report(Base):
    """The DiagnosticReport that completes a request."""

    __tablename__ = "telemed_reports"
    __table_args__ = (Index("ix_telemed_reports_issued", "issued_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("telemed_requests.id", ondelete="CASCADE"), unique=True
    )
    findings: Mapped[str] = mapped_column(Text)
    conclusion: Mapped[str] = mapped_column(Text)
    critical: Mapped[bool] = mapped_column(default=False)
    author: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # FHIR DiagnosticReport.status: final, then amended (version 2, 3, ...) when the expert corrects it
    status: Mapped[str] = mapped_column(String(16), default="final", server_default="final")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    amended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    amend_reason: Mapped[str | None] = mapped_column(String(256))


class Outbox(Base):
    """A report version waiting to reach intake (and through it the shared record): written in the
    report's own transaction, sent by a drain job that retries until intake takes it."""

    __tablename__ = "telemed_outbox"
    __table_args__ = (
        Index("ix_telemed_outbox_due", "state", "due_at"),
        Index("ix_telemed_outbox_report", "report_id"),
        CheckConstraint("state IN ('pending', 'sent', 'failed')", name="state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(BigId, ForeignKey("telemed_reports.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    institution_code: Mapped[str] = mapped_column(String(32), ForeignKey("institutions.code"))
    table_name: Mapped[str] = mapped_column(String(64))
    # the catalogue record as it stood at this version (修改标志 1 new, 2 amended)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(String(512))
    receipt_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Study(Base):
    """An imaging study (ImagingStudy) as Orthanc holds it, or as a hospital's own PACS reported it."""

    __tablename__ = "telemed_studies"
    __table_args__ = (Index("ix_telemed_studies_performed", "performed_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    study_uid: Mapped[str] = mapped_column(String(64), unique=True)
    orthanc_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    institution_code: Mapped[str] = mapped_column(String(32), ForeignKey("institutions.code"))
    request_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("telemed_requests.id"))
    modality: Mapped[str] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(String(128))
    series_count: Mapped[int] = mapped_column(Integer)
    instance_count: Mapped[int] = mapped_column(Integer)
    performed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(16), default="orthanc")


class Series(Base):
    """One series of a study, with the Orthanc id its previews come from."""

    __tablename__ = "telemed_series"
    __table_args__ = (Index("ix_telemed_series_study", "study_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    study_id: Mapped[int] = mapped_column(BigId, ForeignKey("telemed_studies.id", ondelete="CASCADE"))
    series_uid: Mapped[str] = mapped_column(String(64), unique=True)
    orthanc_id: Mapped[str | None] = mapped_column(String(64))
    modality: Mapped[str] = mapped_column(String(16))
    number: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(String(128))
    instance_count: Mapped[int] = mapped_column(Integer)
    preview_instance: Mapped[str | None] = mapped_column(String(64))


class Attachment(Base):
    """A file attached to a request: an ECG record (WFDB) or a pathology slide image."""

    __tablename__ = "telemed_attachments"
    __table_args__ = (Index("ix_telemed_attachments_request", "request_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(BigId, ForeignKey("telemed_requests.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    content_type: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(BigInteger)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Specimen(Base):
    """A lab specimen routed between institutions (标本流转), identified by its barcode."""

    __tablename__ = "telemed_specimens"
    __table_args__ = (
        Index("ix_telemed_specimens_collected", "collected_at"),
        CheckConstraint(
            "state IN ('collected', 'shipped', 'received', 'tested', 'reported', 'rejected')", name="state"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    barcode: Mapped[str] = mapped_column(String(32), unique=True)
    request_id: Mapped[int] = mapped_column(BigId, ForeignKey("telemed_requests.id", ondelete="CASCADE"))
    specimen_type: Mapped[str] = mapped_column(String(32))
    from_code: Mapped[str] = mapped_column(String(32), ForeignKey("institutions.code"))
    to_code: Mapped[str] = mapped_column(String(32), ForeignKey("institutions.code"))
    state: Mapped[str] = mapped_column(String(16), default="collected")
    state_reason: Mapped[str | None] = mapped_column(String(256))
    collected_at: Mapped[datetime] = mapped_column(UtcDateTime)
    shipped_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    tested_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Member(Base):
    """An expert or doctor registered with a centre (the pathology system counts both)."""

    __tablename__ = "telemed_members"
    __table_args__ = (
        UniqueConstraint("centre_code", "name", "institution_code", name="uq_telemed_members_person"),
        CheckConstraint("role IN ('expert', 'doctor')", name="role"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    centre_code: Mapped[str] = mapped_column(String(16), ForeignKey("telemed_centres.code"))
    name: Mapped[str] = mapped_column(String(64))
    institution_code: Mapped[str] = mapped_column(String(32), ForeignKey("institutions.code"))
    role: Mapped[str] = mapped_column(String(8))
    specialty: Mapped[str | None] = mapped_column(String(64))
    joined_on: Mapped[date] = mapped_column(Date)


class Event(Base):
    """A centre's case-discussion meeting (病例讨论会议) or video lecture (视频讲座)."""

    __tablename__ = "telemed_events"
    __table_args__ = (CheckConstraint("kind IN ('meeting', 'lecture')", name="kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    centre_code: Mapped[str] = mapped_column(String(16), ForeignKey("telemed_centres.code"))
    kind: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(128))
    held_at: Mapped[datetime] = mapped_column(UtcDateTime)
    host: Mapped[str | None] = mapped_column(String(64))
    attendees: Mapped[int] = mapped_column(Integer, default=0)
    case_ids: Mapped[list[int] | None] = mapped_column(JSON)


class Collected(Base):
    """Reports a centre's platform collected from an institution on one day (e.g. lab reports, whose
    rows live in the institutions' own LIS and in intake's lab tables)."""

    __tablename__ = "telemed_collected"

    centre_code: Mapped[str] = mapped_column(String(16), ForeignKey("telemed_centres.code"), primary_key=True)
    institution_code: Mapped[str] = mapped_column(
        String(32), ForeignKey("institutions.code"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class FeedState(Base):
    """How far rhip has read a PACS's change feed (Orthanc's /changes sequence)."""

    __tablename__ = "telemed_feed_state"

    pacs: Mapped[str] = mapped_column(String(256), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
