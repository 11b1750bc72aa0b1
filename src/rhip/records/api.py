"""Records JSON API (mounted at /api/v1): the resident's own record, consents, codes and who looked; a
clinician's view of another person's record under consent; emergency access; reminders; the auditor's
search of the record-access log. Every view is logged before data leaves (fail closed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.clock import SHANGHAI
from rhip.errors import Invalid
from rhip.records import audit, consent, reminders, service
from rhip.records.consent import Access
from rhip.records.models import AccessLog
from rhip.records.schemas import (
    AccessCodeRead,
    AccessLogRead,
    ConsentCreate,
    ConsentRead,
    EmergencyRequest,
    EntryRead,
    MeasurementCreate,
    RedeemRequest,
    ReminderRead,
    RemindersRequest,
    VerifyRead,
)
from rhip.records.viewing import report_view, view
from rhip.security.deps import SessionDep, require
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter()
Resident = Annotated[Principal, Depends(require(Role.resident))]
Clinician = Annotated[Principal, Depends(require(Role.doctor, Role.family_doctor))]
Auditor = Annotated[Principal, Depends(require(Role.auditor, Role.admin))]
PersonId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
Kinds = Annotated[list[str] | None, Query(alias="kind", max_length=20)]
Day = Annotated[date | None, Query(description="YYYY-MM-DD（北京时间）")]


T = TypeVar("T")
LIMIT = 500  # entries per timeline answer (newest first)


def _secret(request: Request) -> str:
    return str(request.app.state.settings.secret_key)


def day_range(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """[start of the first day, end of the last day] in Shanghai time, refusing absurd years."""
    for d in (start, end):
        if d is not None and not 1900 <= d.year <= 2100:
            raise Invalid("日期应在 1900–2100 年之间", code="records-bad-date")
    s = datetime.combine(start, time(0), SHANGHAI).astimezone(UTC) if start else None
    e = datetime.combine(end, time(23, 59, 59), SHANGHAI).astimezone(UTC) if end else None
    return s, e


def answer(data: object, status: int = 200) -> Response:
    """A JSON answer serialised by orjson (the view routes' models document the shape; the rows are
    already plain data, so pydantic's second validation pass is skipped)."""
    return Response(
        orjson.dumps(data, option=orjson.OPT_UTC_Z), status_code=status, media_type="application/json"
    )


def _timeline(
    session: Session,
    principal: Principal,
    person_id: str | None,
    *,
    with_reminders: bool = False,
    kinds: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    institution: str | None = None,
) -> Response:
    """The timeline (and, asked, the reminders over the same entries) in one logged transaction."""
    service.check_kinds(kinds)
    if start and end and start > end:
        raise Invalid("开始时间晚于结束时间", code="records-bad-range")
    filtered = bool(kinds or start or end or institution)

    def read(access: Access) -> dict[str, object]:
        entries = service.timeline(
            session, access=access, kinds=kinds, start=start, end=end, institution=institution, limit=LIMIT
        )
        out: dict[str, object] = {
            "person_id": access.person_id,
            "basis": access.basis,
            "institution_only": access.institution_only,
            "entries": [service.entry_data(e) for e in entries],
            "reminders": None,
        }
        if with_reminders:
            whole = not filtered and len(entries) < LIMIT
            found = reminders.for_view(session, access=access, entries=entries, whole=whole)
            out["reminders"] = [r.__dict__ for r in found]
        return out

    action = "view-reminders" if with_reminders else "view"
    _access, data = view(session, principal=principal, person_id=person_id, action=action, read=read)
    return answer(data)


# ------------------------------------------------------------------------------ the resident


def _reports(session: Session, principal: Principal, person_id: str | None) -> Response:
    def read(access: Access) -> list[dict[str, object]]:
        return [service.entry_data(x) for x in service.reports(session, access=access)]

    return _answered(session, read, principal=principal, person_id=person_id, action="reports")


def _report(session: Session, principal: Principal, person_id: str | None, entry_id: int) -> Response:
    return answer(
        service.entry_data(report_view(session, principal=principal, person_id=person_id, entry_id=entry_id))
    )


def _answered(session: Session, read: Callable[[Access], T], **how: Any) -> Response:
    """One logged view (records.viewing: principal, person_id, action, detail) answered as JSON."""
    return answer(view(session, read=read, **how)[1])


@router.get("/records/me/reports", response_model=list[EntryRead], tags=["records"])
def my_reports(session: SessionDep, principal: Resident) -> Response:
    """My lab and exam reports from every institution (医检报告共享)."""
    return _reports(session, principal, None)


@router.get("/records/me/reports/{entry_id}", response_model=EntryRead, tags=["records"])
def my_report(
    entry_id: Annotated[int, Path(ge=1, le=2**62)], session: SessionDep, principal: Resident
) -> Response:
    """One of my reports with its results, reference ranges and abnormal flags."""
    return _report(session, principal, None, entry_id)


@router.get("/records/me/consents", response_model=list[ConsentRead], tags=["records"])
def my_consents(session: SessionDep, principal: Resident) -> list[ConsentRead]:
    """My grants, codes redeemed and emergency accesses to my record."""

    def read(access: Access) -> list[ConsentRead]:
        return [
            ConsentRead.model_validate(c) for c in consent.consents_of(session, person_id=access.person_id)
        ]

    return view(session, principal=principal, person_id=None, action="consents", read=read)[1]


@router.post("/records/me/consents", response_model=ConsentRead, status_code=201, tags=["records"])
def grant_consent(body: ConsentCreate, session: SessionDep, principal: Resident) -> ConsentRead:
    """Authorise an institution (or one of its doctors) to see my record for some days."""
    with session.begin():
        c = consent.grant(
            session,
            principal=principal,
            institution_code=body.institution_code,
            doctor=body.doctor,
            days=body.days,
        )
        return ConsentRead.model_validate(c)


@router.delete("/records/me/consents/{consent_id}", response_model=ConsentRead, tags=["records"])
def revoke_consent(
    consent_id: Annotated[int, Path(ge=1, le=2**62)], session: SessionDep, principal: Resident
) -> ConsentRead:
    """Withdraw a grant (effective at once)."""
    with session.begin():
        return ConsentRead.model_validate(consent.revoke(session, principal=principal, consent_id=consent_id))


@router.post("/records/me/access-codes", response_model=AccessCodeRead, status_code=201, tags=["records"])
def new_access_code(request: Request, session: SessionDep, principal: Resident) -> AccessCodeRead:
    """A six-digit code to read to the doctor at the visit (10 minutes, one use)."""
    with session.begin():
        code, row = consent.new_code(session, principal=principal, secret=_secret(request))
        return AccessCodeRead(code=code, expires_at=row.expires_at)


@router.get("/records/me/access-log", response_model=list[AccessLogRead], tags=["records"])
def my_access_log(
    session: SessionDep, principal: Resident, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[AccessLogRead]:
    """Who looked at my record, when, and on what basis (refusals included; this look too)."""

    def read(access: Access) -> list[AccessLogRead]:
        q = select(AccessLog).where(AccessLog.person_id == access.person_id)
        return [
            AccessLogRead.model_validate(r)
            for r in session.scalars(q.order_by(AccessLog.id.desc()).limit(limit))
        ]

    return view(session, principal=principal, person_id=None, action="access-log", read=read)[1]


@router.post("/records/me/measurements", response_model=EntryRead, status_code=201, tags=["records"])
def add_measurement(body: MeasurementCreate, session: SessionDep, principal: Resident) -> EntryRead:
    """Record a self-measured value (blood pressure, glucose, weight, steps, heart rate)."""
    with session.begin():
        pid = consent.resident_person(session, principal)
        e = service.add_measurement(
            session, person_id=pid, kind=body.kind, value=body.value, measured_at=body.measured_at
        )
        return EntryRead.model_validate(e)


# ---------------------------------------------------------------------------- clinicians


@router.get("/records/{person_id}/reports", response_model=list[EntryRead], tags=["records"])
def person_reports(person_id: PersonId, session: SessionDep, principal: Clinician) -> Response:
    """A person's lab and exam reports, as far as consent allows."""
    return _reports(session, principal, person_id)


@router.get("/records/{person_id}/reports/{entry_id}", response_model=EntryRead, tags=["records"])
def person_report(
    person_id: PersonId,
    entry_id: Annotated[int, Path(ge=1, le=2**62)],
    session: SessionDep,
    principal: Clinician,
) -> Response:
    """One report with its results."""
    return _report(session, principal, person_id, entry_id)


@router.post("/records/{person_id}/access-codes/redeem", response_model=ConsentRead, tags=["records"])
def redeem_code(
    person_id: PersonId, body: RedeemRequest, request: Request, session: SessionDep, principal: Clinician
) -> ConsentRead:
    """Turn the code the resident read out into a visit-long consent."""
    with session.begin():
        c = consent.redeem(
            session, principal=principal, person_id=person_id, code=body.code, secret=_secret(request)
        )
    if c is None:
        raise Invalid("授权码错误、已使用或已过期", code="records-code-invalid")
    return ConsentRead.model_validate(c)


@router.post(
    "/records/{person_id}/emergency-access", response_model=ConsentRead, status_code=201, tags=["records"]
)
def emergency_access(
    person_id: PersonId, body: EmergencyRequest, session: SessionDep, principal: Clinician
) -> ConsentRead:
    """Break the glass: a short access with a stated reason, flagged for the auditor."""
    with session.begin():
        c = consent.emergency(session, principal=principal, person_id=person_id, reason=body.reason)
        return ConsentRead.model_validate(c)


@router.post("/records/{person_id}/reminders", response_model=list[ReminderRead], tags=["records"])
def person_reminders(
    person_id: PersonId, body: RemindersRequest, session: SessionDep, principal: Clinician
) -> Response:
    """Reminders for opening the record, or for the orders about to be placed (智能提示)."""
    orders = [reminders.Order(o.name, o.code) for o in body.orders]

    def read(access: Access) -> list[dict[str, object]]:
        return [r.__dict__ for r in reminders.compute(session, access=access, orders=orders)]

    return _answered(
        session,
        read,
        principal=principal,
        person_id=person_id,
        action="reminders",
        detail=f"{len(body.orders)} orders",
    )


# ------------------------------------------------------------------------------- auditors


@router.get("/audit/events", response_model=list[AccessLogRead], tags=["audit"])
def access_events(
    session: SessionDep,
    principal: Auditor,
    person_id: Annotated[str | None, Query(max_length=40)] = None,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    institution: Annotated[str | None, Query(max_length=32)] = None,
    outcome: Annotated[str | None, Query(pattern="^(allowed|refused)$")] = None,
    basis: Annotated[str | None, Query(max_length=20, description="前缀，如 emergency")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> list[AccessLogRead]:
    """Search the record-access log (newest first; page with before_id)."""
    q = select(AccessLog)
    if person_id:
        q = q.where(AccessLog.person_id == person_id)
    if actor:
        q = q.where(AccessLog.actor == actor)
    if institution:
        q = q.where(AccessLog.institution_code == institution)
    if outcome:
        q = q.where(AccessLog.outcome == outcome)
    if basis:
        q = q.where(AccessLog.basis.startswith(basis, autoescape=True))
    if before_id:
        q = q.where(AccessLog.id < before_id)
    with session.begin():
        said = {"actor": actor, "institution": institution, "outcome": outcome, "basis": basis}
        audit.auditor_read(
            session,
            principal=principal,
            person_id=person_id,
            action="audit-search",
            detail=" ".join(f"{k}={v}" for k, v in said.items() if v),
        )
        rows = session.scalars(q.order_by(AccessLog.id.desc()).limit(limit)).all()
        return [AccessLogRead.model_validate(r) for r in rows]


@router.get("/audit/emergencies", response_model=list[ConsentRead], tags=["audit"])
def emergencies(session: SessionDep, principal: Auditor) -> list[ConsentRead]:
    """Emergency accesses not yet reviewed."""
    with session.begin():
        audit.auditor_read(session, principal=principal, person_id=None, action="audit-emergencies")
        return [ConsentRead.model_validate(c) for c in consent.emergencies_to_review(session)]


@router.post("/audit/emergencies/{consent_id}/reviewed", response_model=ConsentRead, tags=["audit"])
def emergency_reviewed(
    consent_id: Annotated[int, Path(ge=1, le=2**62)], session: SessionDep, _p: Auditor
) -> ConsentRead:
    """Mark an emergency access as reviewed."""
    with session.begin():
        return ConsentRead.model_validate(consent.mark_reviewed(session, consent_id=consent_id))


@router.get("/audit/verify", response_model=VerifyRead, tags=["audit"])
def verify_chain(session: SessionDep, _p: Auditor) -> VerifyRead:
    """Walk the record-access log's hash chain."""
    with session.begin():
        v = audit.verify(session)
        return VerifyRead(checked=v.checked, broken_at=v.broken_at, reason=v.reason)
