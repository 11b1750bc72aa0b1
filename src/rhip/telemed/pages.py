"""远程医疗 pages: the five centres, each centre's dashboard, the expert's worklist and reading page (series
previews through rhip, the ECG strip, the report form), the requester's request form and status list."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip import charts, clock
from rhip.errors import Forbidden, NotFound, RhipError
from rhip.registry import data as reg
from rhip.security import masking
from rhip.security.deps import SessionDep, require
from rhip.security.roles import Role
from rhip.security.service import Principal
from rhip.telemed import ecg_dicom, pacs as pacs_mod, service as svc, stats
from rhip.telemed.models import Attachment, Request as Req, Series, Study
from rhip.telemed.workflow import LABELS

router = APIRouter(include_in_schema=False)
STAFF = (Role.manager, Role.admin)
Viewer = Annotated[Principal, Depends(require(Role.doctor, Role.family_doctor, Role.manager, Role.admin))]
Clinician = Annotated[Principal, Depends(require(Role.doctor, Role.family_doctor))]
CENTRE_LABELS = {"consult": "会诊", "imaging": "影像", "ecg": "心电", "lab": "临检", "pathology": "病理"}


def _render(request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        name,
        {"labels": LABELS, "centre_labels": CENTRE_LABELS, "inst": reg.get, "local": _local, **context},
    )
    return response


def _local(t: datetime | None) -> str:
    return t.astimezone(clock.SHANGHAI).strftime("%Y-%m-%d %H:%M") if t else ""


def _back(url: str, msg: str) -> RedirectResponse:
    sep = "&" if "?" in url else "?"
    return RedirectResponse(f"{url}{sep}msg={quote(msg)}", status_code=303)


def _month(month: str | None) -> str:
    if month and len(month) == 7 and month[4] == "-" and month.replace("-", "").isdigit():
        return month
    return clock.local_now().strftime("%Y-%m")


@router.get("/telemed", response_class=HTMLResponse)
def index(request: Request, session: SessionDep, who: Viewer, month: str | None = None) -> HTMLResponse:
    """远程医疗：五大中心本月概况与报告段落。"""
    m = _month(month)
    with session.begin():
        fig = stats.month_figures(session, month=m)
        paras = stats.paragraphs(fig)
    centres = [(svc.centre(c), fig.centres[c]) for c in svc.CENTRE_CODES]
    return _render(
        request, "telemed/index.html", {"month": m, "centres": centres, "paragraphs": paras, "who": who}
    )


def _daily(session: Session, centre_code: str, start: datetime, end: datetime) -> tuple[list[str], list[int]]:
    rows = session.execute(
        select(Req.requested_at).where(
            Req.centre_code == centre_code, Req.requested_at >= start, Req.requested_at < end
        )
    ).scalars()
    days = [(start + timedelta(days=i)).strftime("%m-%d") for i in range((end - start).days)]
    counts = dict.fromkeys(days, 0)
    for t in rows:
        counts[t.astimezone(clock.SHANGHAI).strftime("%m-%d")] = (
            counts.get(t.astimezone(clock.SHANGHAI).strftime("%m-%d"), 0) + 1
        )
    return days, [counts[d] for d in days]


@router.get("/telemed/centres/{centre_code}", response_class=HTMLResponse)
def dashboard(
    request: Request, session: SessionDep, who: Viewer, centre_code: str, month: str | None = None
) -> HTMLResponse:
    """一个中心的看板：接入情况、本月业务量、任务状态、报告时限（中位数、P90、超时）、上传量排名。"""
    m = _month(month)
    start, end, _last = stats.bounds(m)
    with session.begin():
        c = svc.centre(centre_code)
        fig = stats.month_figures(session, month=m).centres[centre_code]
        tat = svc.tat(session, centre_code=centre_code, since=start, until=end)
        counts = svc.status_counts(session, centre_code=centre_code)
        overdue = svc.overdue_open(session, centre_code=centre_code)
        days, per_day = _daily(session, centre_code, start, end)
    top_chart = (
        charts.hbar_chart(f"{m} 上传量前 3 名", [n for n, _ in fig.top], [v for _, v in fig.top], unit="份")
        if fig.top
        else ""
    )
    cat_chart = charts.bar_chart(
        "接入机构类别", list(fig.coverage.by_category), list(fig.coverage.by_category.values()), unit="家"
    )
    day_chart = charts.line_chart(f"{m} 每日申请数", days, per_day, unit="份")
    return _render(
        request,
        "telemed/dashboard.html",
        {
            "month": m,
            "centre": c,
            "fig": fig,
            "tat": tat,
            "counts": counts,
            "overdue": overdue,
            "top_chart": top_chart,
            "cat_chart": cat_chart,
            "day_chart": day_chart,
            "days": list(zip(days, per_day, strict=True)),
            "who": who,
            "is_hub": who.institution_code == c.hub_code,
        },
    )


@router.get("/telemed/centres/{centre_code}/worklist", response_class=HTMLResponse)
def worklist_page(
    request: Request, session: SessionDep, who: Viewer, centre_code: str, msg: str | None = None
) -> HTMLResponse:
    """专家工作列表：本中心待处理的申请（最早的在前），带时限和超时标记。"""
    with session.begin():
        c = svc.centre(centre_code)
        if who.role not in STAFF and who.institution_code != c.hub_code:
            raise Forbidden("只有承担该中心业务的医院的医生可以查看工作列表", code="not-performer")
        items = svc.worklist(session, centre_code=centre_code, limit=200)
        counts = svc.open_counts(session, centre_code=centre_code)
    full = who.role not in STAFF
    if full and items:
        with svc.short_write(session):
            svc.audit_worklist(session, who=who, centre_code=centre_code, count=len(items))
    shown = {k: str(n) if n <= svc.COUNT_CAP else f"{svc.COUNT_CAP}+" for k, n in counts.items()}
    return _render(
        request,
        "telemed/worklist.html",
        {
            "centre": c,
            "items": items,
            "counts": shown,
            "full": full,
            "msg": msg,
            "mask_name": masking.mask_name,
        },
    )


def _strip(att: Attachment, client: pacs_mod.Pacs | None) -> str:
    """An ECG's strip, or a note when it lives in a PACS that does not answer now (the page still opens)."""
    try:
        return ecg_dicom.strip(att, client)
    except (pacs_mod.PacsUnavailable, NotFound):
        return (
            f'<p class="muted">心电图 {escape(att.name)} 暂不能显示：它保存在影像归档系统（Orthanc）中，'
            "影像归档系统现在不可用或已没有该对象。</p>"
        )


@router.get("/telemed/read/{request_id}", response_class=HTMLResponse)
def reading(
    request: Request, session: SessionDep, who: Viewer, request_id: int, msg: str | None = None
) -> HTMLResponse:
    """阅片/诊断页：申请信息、影像序列预览（经 rhip 转发）、心电图、处理记录与报告。"""
    with session.begin():
        req, full = svc.visible_request(session, request_id=request_id, who=who)
        staff = not full
        study = session.scalar(select(Study).where(Study.request_id == req.id))
        series = (
            list(session.scalars(select(Series).where(Series.study_id == study.id).order_by(Series.number)))
            if study
            else []
        )
        attachments = list(session.scalars(select(Attachment).where(Attachment.request_id == req.id)))
        client = pacs_mod.client_for(
            request.app.state.settings.data_dir, request.app.state.settings.orthanc_url
        )
        strips = [_strip(a, client) for a in attachments if a.kind == "ecg"]
        slides = [a for a in attachments if a.kind == "slide"]
        history = svc.get_history(session, request_id=req.id)
        report = svc.get_report(session, request_id=req.id)
        limit = svc.get_limit(session, centre_code=req.centre_code, service_type=req.service_type)
        due = req.requested_at + timedelta(minutes=limit.limit_minutes)
    return _render(
        request,
        "telemed/reading.html",
        {
            "req": req,
            "centre": svc.centre(req.centre_code),
            "study": study,
            "series": series,
            "strips": strips,
            "slides": slides,
            "history": history,
            "report": report,
            "limit": limit,
            "due": due,
            "overdue": req.status in ("requested", "accepted", "in_progress") and due < clock.now(),
            "can_work": svc.may_work(who.institution_code, req)
            and who.role in (Role.doctor, Role.family_doctor),
            "full": not staff,
            "msg": msg,
            "mask_name": masking.mask_name,
            "mask_id": masking.mask_id,
        },
    )


@router.post("/telemed/read/{request_id}/transition")
def page_transition(
    session: SessionDep,
    who: Clinician,
    request_id: int,
    status: Annotated[str, Form(max_length=16)],
    reason: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """接收、开始诊断、拒绝或取消。"""
    try:
        with session.begin():
            svc.act(
                session,
                request_id=request_id,
                to=status,
                who=who,
                reason=reason or None,
                assignee=who.name or who.subject,
            )
    except RhipError as exc:
        return _back(f"/telemed/read/{request_id}", exc.detail)
    return _back(f"/telemed/read/{request_id}", f"已{LABELS.get(status, status)}")


@router.post("/telemed/read/{request_id}/report")
def page_report(
    session: SessionDep,
    who: Clinician,
    request_id: int,
    findings: Annotated[str, Form(max_length=20000)],
    conclusion: Annotated[str, Form(max_length=5000)],
    critical: Annotated[bool, Form()] = False,
) -> Response:
    """提交诊断报告（完成任务并通知申请方）。"""
    try:
        with session.begin():
            svc.report_by(
                session,
                request_id=request_id,
                who=who,
                findings=findings,
                conclusion=conclusion,
                critical=critical,
            )
    except RhipError as exc:
        return _back(f"/telemed/read/{request_id}", exc.detail)
    return _back(f"/telemed/read/{request_id}", "报告已提交，申请方已收到通知")


@router.get("/telemed/requests", response_class=HTMLResponse)
def my_requests(
    request: Request, session: SessionDep, who: Clinician, msg: str | None = None, status: str | None = None
) -> HTMLResponse:
    """申请方：本机构提交的申请及其状态、报告。"""
    with session.begin():
        rows = svc.search_requests(
            session,
            requester_code=who.institution_code or "-",
            statuses=[status] if status in LABELS else None,
            limit=200,
        )
        n = (
            session.scalar(select(func.count()).where(Req.requester_code == (who.institution_code or "-")))
            or 0
        )
        if rows:
            svc.audit_read(session, who=who, action="telemed.request.list", target=f"{len(rows)} requests")
        connected = [
            c.centre_code
            for c in svc.get_all_connections(session, institution_code=who.institution_code or "-")
        ]
        limits = {c: svc.get_limits(session, centre_code=c) for c in connected}
    return _render(
        request,
        "telemed/requests.html",
        {"rows": rows, "total": n, "msg": msg, "limits": limits, "who": who, "status": status},
    )


@router.post("/telemed/requests")
def submit_request(
    session: SessionDep,
    who: Clinician,
    centre_service: Annotated[str, Form(max_length=64)],
    patient_id_number: Annotated[str, Form(max_length=32)] = "",
    patient_name: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    priority: Annotated[str, Form(max_length=8)] = "routine",
    scheduled_at: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """提交远程医疗申请。"""
    centre_code, _, stype = centre_service.partition("/")
    try:
        when = datetime.fromisoformat(scheduled_at).replace(tzinfo=clock.SHANGHAI) if scheduled_at else None
        with session.begin():
            req = svc.create_request(
                session,
                centre_code=centre_code,
                service_type=stype,
                requester_code=who.institution_code or "",
                actor=who.subject,
                requester_name=who.name,
                patient_id_number=patient_id_number or None,
                patient_name=patient_name or None,
                reason=reason or None,
                priority=priority,
                scheduled_at=when,
            )
            rid = req.id
    except ValueError:
        return _back("/telemed/requests", "会诊时间格式错误")
    except RhipError as exc:
        return _back("/telemed/requests", exc.detail)
    return _back("/telemed/requests", f"已提交申请 {rid}")
