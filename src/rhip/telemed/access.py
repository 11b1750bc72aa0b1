"""Acting as a caller (API and pages): who may see or work on a request, masking, and the audit of every read
of personal data."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from rhip.errors import Forbidden, Invalid
from rhip.security import service as security
from rhip.security.masking import Kind, Masker
from rhip.security.roles import Role
from rhip.security.service import Principal
from rhip.telemed.models import (
    Report,
    Request,
)
from rhip.telemed.tasks import amend_report, check_worker, get_request, may_see, report, transition


def patient_view(who: Principal) -> Masker:
    """How this caller sees a request's patient: security.masking's "telemed" view."""
    return Masker(who, "telemed")


def sees_patient(who: Principal) -> bool:
    """Whether this caller sees a request's patient whole (name and ID number) once let in: the care
    team's clinicians do, the information centre's staff see them masked (security.masking)."""
    view = patient_view(who)
    return view.shows(Kind.name) and view.shows(Kind.id_number)


# ------------------------------------------------------------------ acting as a caller (API and pages)

STAFF_ROLES = (Role.manager, Role.admin)


def audit_read(session: Session, *, who: Principal, action: str, target: str) -> None:
    """Record that a clinician read patients' requests."""
    security.audit(
        session,
        actor=who.subject,
        role=who.role.value,
        action=action,
        target=target,
        institution_code=who.institution_code,
    )


_SQLITE_WRITER = threading.Lock()


@contextmanager
def short_write(session: Session) -> Iterator[None]:
    """A short write transaction after the reads (an audit row): on SQLite, this process's writers queue on
    a lock instead of in SQLite's busy handler, whose growing sleeps (up to 100 ms a try) made a read page
    that writes one audit row wait ten times longer than its work under concurrent readers."""
    if session.get_bind().dialect.name != "sqlite":
        with session.begin():
            yield
        return
    with _SQLITE_WRITER, session.begin():
        yield


def audit_worklist(session: Session, *, who: Principal, centre_code: str, count: int) -> None:
    """Record that a clinician read a page of a centre's worklist (patients' names and ID numbers)."""
    if count:
        audit_read(
            session, who=who, action="telemed.worklist.read", target=f"{centre_code}: {count} requests"
        )


def open_clinical(session: Session, *, who: Principal, req: Request, what: str) -> None:
    """Clinical content of a request (an ECG, a slide, an image): the care team only, each read audited;
    staff have no view of it (their masked views show that it exists, not what it shows)."""
    if not may_see(who.institution_code, req):
        raise Forbidden("只有申请方和承担方的医生可以查看此申请的图像和文件", code="not-care-team")
    audit_read(session, who=who, action=f"telemed.{what}.read", target=f"ServiceRequest/{req.id}")


def visible_request(session: Session, *, request_id: int, who: Principal) -> tuple[Request, bool]:
    """The request if the caller may see it and whether in full (care team, audited) or masked (staff)."""
    req = get_request(session, request_id=request_id)
    if who.role in STAFF_ROLES:
        return req, sees_patient(who)
    if not may_see(who.institution_code, req):
        raise Forbidden("只有申请方和承担方的医生可以查看此申请", code="not-care-team")
    audit_read(session, who=who, action="telemed.request.read", target=f"ServiceRequest/{req.id}")
    return req, sees_patient(who)


def act(
    session: Session,
    *,
    request_id: int,
    to: str,
    who: Principal,
    reason: str | None = None,
    assignee: str | None = None,
) -> Request:
    """A clinician moves a Task: either side cancels, only the performing hub accepts, starts or rejects."""
    if to == "completed":
        raise Invalid("完成任务请提交报告", code="report-required")
    req = get_request(session, request_id=request_id)
    if to == "cancelled":
        if not may_see(who.institution_code, req):
            raise Forbidden("只有申请方或承担方可以取消申请", code="not-care-team")
    else:
        check_worker(who.institution_code, req)
    return transition(
        session, request_id=request_id, to=to, actor=who.subject, reason=reason, assignee=assignee
    )


def report_by(
    session: Session,
    *,
    request_id: int,
    who: Principal,
    findings: str,
    conclusion: str,
    critical: bool | None = None,
    author: str | None = None,
    amend_reason: str | None = None,
) -> Report:
    """A hub clinician's report, or with `amend_reason` the amendment of the one written."""
    check_worker(who.institution_code, get_request(session, request_id=request_id))
    by = author or who.name or who.subject
    if amend_reason is not None:
        return amend_report(
            session,
            request_id=request_id,
            findings=findings,
            conclusion=conclusion,
            reason=amend_reason,
            critical=critical,
            author=by,
        )
    return report(
        session,
        request_id=request_id,
        findings=findings,
        conclusion=conclusion,
        critical=bool(critical),
        author=by,
    )
