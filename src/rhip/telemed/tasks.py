"""The request → report workflow: a ServiceRequest and its Task, their transitions and history, and the
DiagnosticReport (written, amended, queued for the shared record)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip import clock
from rhip.errors import Conflict, Forbidden, Invalid, NotFound
from rhip.identity import service as identity
from rhip.registry.idnumber import validate_id
from rhip.telemed import delivery
from rhip.telemed.connections import institution, is_connected
from rhip.telemed.limits import centre, get_limit
from rhip.telemed.models import (
    History,
    Report,
    Request,
)
from rhip.telemed.workflow import check_transition

PRIORITY_ORDER = {"stat": 0, "urgent": 1, "routine": 2}


def _patient(
    id_number: str | None, birth_date: date | None, sex: str | None
) -> tuple[str | None, date | None, str | None]:
    if not id_number:
        return None, birth_date, sex
    check = validate_id(id_number, birth_date=birth_date, sex=sex)
    if not check.ok:
        raise Invalid("身份证号码有误：" + "；".join(m for _r, m in check.errors), code="bad-id-number")
    return check.normalized, birth_date or check.birth_date, sex or check.sex


def create_request(
    session: Session,
    *,
    centre_code: str,
    service_type: str,
    requester_code: str,
    actor: str,
    requester_name: str | None = None,
    patient_id_number: str | None = None,
    patient_local_id: str | None = None,
    patient_name: str | None = None,
    patient_sex: str | None = None,
    patient_birth_date: date | None = None,
    reason: str | None = None,
    priority: str = "routine",
    department: str | None = None,
    performer_code: str | None = None,
    scheduled_at: datetime | None = None,
    at: datetime | None = None,
    source: str = "api",
    connected_checked: bool = False,
) -> Request:
    """File a request with a centre (ServiceRequest) and open its Task in state requested."""
    c = centre(centre_code)
    get_limit(session, centre_code=centre_code, service_type=service_type)
    inst = institution(requester_code)
    when = at or clock.now()
    if not connected_checked and not is_connected(
        session,
        centre_code=centre_code,
        institution_code=inst.code,
        on=when.astimezone(clock.SHANGHAI).date(),
    ):
        raise Conflict(f"{inst.name}尚未接入{c.name}平台，不能提交申请", code="not-connected")
    if priority not in PRIORITY_ORDER:
        raise Invalid("优先级应为 routine、urgent 或 stat", code="bad-priority")
    performer = institution(performer_code) if performer_code else institution(c.hub_code)
    if not (patient_id_number or patient_local_id):
        raise Invalid("请提供患者身份证号或本院患者号", code="patient-required")
    if patient_sex is not None and patient_sex not in ("1", "2", "9"):
        raise Invalid("性别代码应为 1（男）、2（女）或 9（未说明）", code="bad-sex")
    pid, born, sex = _patient(patient_id_number, patient_birth_date, patient_sex)
    if centre_code == "consult" and scheduled_at is not None and scheduled_at < when - timedelta(minutes=1):
        raise Invalid("会诊时间不能早于申请时间", code="bad-schedule")
    req = Request(
        centre_code=centre_code,
        service_type=service_type,
        priority=priority,
        requester_code=inst.code,
        requester_name=requester_name,
        performer_code=performer.code,
        department=department,
        patient_id_number=pid,
        patient_local_id=patient_local_id,
        patient_name=patient_name,
        patient_sex=sex,
        patient_birth_date=born,
        reason=reason,
        scheduled_at=scheduled_at,
        status="requested",
        requested_at=when,
        source=source,
    )
    session.add(req)
    session.flush()
    session.add(History(request_id=req.id, from_status=None, to_status="requested", actor=actor, at=when))
    # the EMPI links the requester's patient to a person (the request carries the person from then on)
    linked = identity.link_record(
        session,
        institution_code=inst.code,
        local_id=patient_local_id or f"telemed:{pid}",
        id_number=pid,
        name=patient_name,
        birth_date=born,
        sex=sex,
        phone=None,
        district=inst.district,
        source="telemed",
    )
    req.person_id = linked.person_id
    return req


def get_request(session: Session, *, request_id: int) -> Request:
    """One request, or NotFound."""
    req = session.get(Request, request_id)
    if req is None:
        raise NotFound(f"没有远程医疗申请 {request_id}", code="request-not-found")
    return req


def transition(
    session: Session,
    *,
    request_id: int,
    to: str,
    actor: str,
    reason: str | None = None,
    assignee: str | None = None,
    at: datetime | None = None,
    lock: bool = True,
) -> Request:
    """Move a request's Task to another state; illegal moves are Conflict (409)."""
    if lock:
        req = session.scalar(select(Request).where(Request.id == request_id).with_for_update())
    else:
        req = session.get(Request, request_id)
    if req is None:
        raise NotFound(f"没有远程医疗申请 {request_id}", code="request-not-found")
    check_transition(req.status, to, reason)
    when = at or clock.now()
    if when < req.requested_at:
        raise Invalid("状态变更时间早于申请时间", code="bad-time")
    session.add(
        History(request_id=req.id, from_status=req.status, to_status=to, actor=actor, reason=reason, at=when)
    )
    req.status = to
    if to == "accepted":
        req.accepted_at = when
        req.assignee = assignee or req.assignee
    elif to == "in_progress":
        req.started_at = when
        req.assignee = assignee or req.assignee or actor
    else:
        req.ended_at = when
        req.status_reason = reason
        req.notified_at = when  # the requester's status list shows it from now on
    return req


def report(
    session: Session,
    *,
    request_id: int,
    findings: str,
    conclusion: str,
    author: str,
    critical: bool = False,
    at: datetime | None = None,
) -> Report:
    """The expert's DiagnosticReport: completes the Task (an accepted one is started first)."""
    if not conclusion.strip() or not findings.strip():
        raise Invalid("报告须包含所见与结论", code="report-empty")
    req = get_request(session, request_id=request_id)
    when = at or clock.now()
    if req.status == "accepted":
        transition(session, request_id=request_id, to="in_progress", actor=author, at=when)
    transition(session, request_id=request_id, to="completed", actor=author, at=when)
    rep = Report(
        request_id=req.id,
        findings=findings.strip(),
        conclusion=conclusion.strip(),
        critical=critical,
        author=author,
        issued_at=when,
        status="final",
        version=1,
    )
    session.add(rep)
    session.flush()
    delivery.enqueue(session, req=req, rep=rep)  # into the shared record, in this same transaction
    return rep


def amend_report(
    session: Session,
    *,
    request_id: int,
    findings: str,
    conclusion: str,
    reason: str,
    author: str,
    critical: bool | None = None,
    at: datetime | None = None,
) -> Report:
    """Correct a final report (DiagnosticReport.status amended, next version, sent again with 修改标志 2)."""
    if not conclusion.strip() or not findings.strip():
        raise Invalid("报告须包含所见与结论", code="report-empty")
    if not reason.strip():
        raise Invalid("修改报告必须说明原因", code="reason-required")
    req = get_request(session, request_id=request_id)
    rep = session.scalar(select(Report).where(Report.request_id == request_id).with_for_update())
    if rep is None:
        raise Conflict("该申请尚无报告，不能修改", code="no-report")
    when = at or clock.now()
    if when < rep.issued_at:
        raise Invalid("修改时间早于报告时间", code="bad-time")
    rep.findings, rep.conclusion = findings.strip(), conclusion.strip()
    if critical is not None:
        rep.critical = critical
    rep.status, rep.version, rep.amended_at, rep.amend_reason = (
        "amended",
        rep.version + 1,
        when,
        reason.strip(),
    )
    session.add(
        History(
            request_id=req.id,
            from_status=req.status,
            to_status=req.status,
            actor=author,
            reason=f"修改报告（第 {rep.version} 版）：{reason.strip()}"[:256],
            at=when,
        )
    )
    session.flush()
    delivery.enqueue(session, req=req, rep=rep)
    return rep


def get_report(session: Session, *, request_id: int) -> Report | None:
    """The report of a request, if written."""
    return session.scalar(select(Report).where(Report.request_id == request_id))


def get_report_by_id(session: Session, *, report_id: int) -> Report:
    """One DiagnosticReport, or NotFound."""
    rep = session.get(Report, report_id)
    if rep is None:
        raise NotFound(f"没有诊断报告 {report_id}", code="report-not-found")
    return rep


def get_history(session: Session, *, request_id: int) -> list[History]:
    """The Task's transitions, oldest first."""
    return list(session.scalars(select(History).where(History.request_id == request_id).order_by(History.id)))


def may_work(actor_institution: str | None, req: Request) -> bool:
    """Whether staff of an institution may work on the request (the performing hub)."""
    return actor_institution is not None and actor_institution == req.performer_code


def may_see(actor_institution: str | None, req: Request) -> bool:
    """Whether staff of an institution may see the request (requester or performer)."""
    return actor_institution is not None and actor_institution in (req.requester_code, req.performer_code)


def check_worker(actor_institution: str | None, req: Request) -> None:
    """Forbidden unless the actor belongs to the performing centre's hospital."""
    if not may_work(actor_institution, req):
        raise Forbidden("只有承担该中心业务的医院的医生可以处理此申请", code="not-performer")
