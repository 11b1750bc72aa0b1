"""Report routes under /api/v1/telemed: write, read and amend a request's DiagnosticReport, and the outbox
that carries each report version to intake and the shared record (staff see it and may drain it now)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request as HttpRequest

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.errors import Invalid, NotFound
from rhip.lake.store import Lake
from rhip.security.deps import SessionDep, require
from rhip.security.roles import Role
from rhip.security.service import Principal
from rhip.telemed import delivery, service as svc
from rhip.telemed.models import Report
from rhip.telemed.schemas import DrainRead, OutboxRead, ReportAmend, ReportCreate, ReportRead

router = APIRouter()
SessionDep = SessionDep
Clinicians = Annotated[Principal, Depends(require(Role.doctor, Role.family_doctor))]
Viewers = Annotated[Principal, Depends(require(Role.doctor, Role.family_doctor, Role.manager, Role.admin))]
Managers = Annotated[Principal, Depends(require(Role.manager, Role.admin))]
HIDDEN = "（仅申请方与承担方的医生可见）"


def report_read(rep: Report, *, full: bool) -> ReportRead:
    """A report as the caller may see it: staff outside the care team get no clinical text."""
    out = ReportRead.model_validate(rep)
    if not full:
        out.findings = out.conclusion = HIDDEN
        out.amend_reason = None
    return out


def _write(
    session: SessionDep, who: Principal, request_id: int, body: ReportCreate | ReportAmend
) -> ReportRead:
    with session.begin():
        rep = svc.report_by(
            session,
            request_id=request_id,
            who=who,
            findings=body.findings,
            conclusion=body.conclusion,
            critical=body.critical,
            author=body.author,
            amend_reason=body.reason if isinstance(body, ReportAmend) else None,
        )
        out = ReportRead.model_validate(rep)
    delivery.kick()  # committed: the drain job may send it now
    return out


@router.post("/requests/{request_id}/report", response_model=ReportRead, status_code=201)
def post_report(session: SessionDep, who: Clinicians, request_id: int, body: ReportCreate) -> ReportRead:
    """The expert's report: completes the Task, notifies the requester, queues it for the shared record."""
    return _write(session, who, request_id, body)


@router.put("/requests/{request_id}/report", response_model=ReportRead)
def amend_report(session: SessionDep, who: Clinicians, request_id: int, body: ReportAmend) -> ReportRead:
    """Amend a final report (next version; the shared record gets it with 修改标志 2)."""
    return _write(session, who, request_id, body)


@router.get("/requests/{request_id}/report", response_model=ReportRead)
def get_report(session: SessionDep, who: Viewers, request_id: int) -> ReportRead:
    """A request's report (404 until it is written); staff see it without the clinical text."""
    with session.begin():
        _req, full = svc.visible_request(session, request_id=request_id, who=who)
        rep = svc.get_report(session, request_id=request_id)
        if rep is None:
            raise NotFound("该申请尚无报告", code="report-not-found")
        return report_read(rep, full=full)


@router.get("/outbox", response_model=list[OutboxRead])
def get_outbox(
    session: SessionDep,
    who: Managers,
    state: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[OutboxRead]:
    """Report versions not yet delivered to the shared record (pending) or refused by intake (failed)."""
    states = tuple(state or ("pending", "failed"))
    bad = [x for x in states if x not in ("pending", "sent", "failed")]
    if bad:
        raise Invalid(f"未知的发送状态：{'、'.join(bad)}（可选 pending、sent、failed）", code="bad-state")
    with session.begin():
        return [OutboxRead.model_validate(o) for o in delivery.pending(session, states=states, limit=limit)]


@router.post("/outbox/drain", response_model=DrainRead)
def drain_outbox(request: HttpRequest, who: Managers) -> DrainRead:
    """Send the due report versions to intake now (the server's drain job does it every few seconds)."""
    settings: Settings = request.app.state.settings
    db: Database = request.app.state.db
    res = delivery.drain(db, Lake.from_settings(settings))
    return DrainRead(sent=res.sent, retried=res.retried, failed=res.failed, receipts=res.receipts)
