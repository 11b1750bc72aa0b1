"""MCH pages (Chinese): the worker's register (建册, 儿童登记) and visit forms, the risk colour as a badge,
the high-risk work list, and the district dashboard with the report year's indicators and a chart over months.
Forms post to the same services as the JSON API; a refused form comes back with the rule's message.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from rhip import charts
from rhip.errors import RhipError
from rhip.mch import indicators, rules, service as svc, stats
from rhip.mch.api import (
    FIGURES,
    READERS,
    WORKERS,
    actor_of,
    audit_read,
    child_for,
    institution_for,
    masked,
    pregnancy_for,
    scope_district,
)
from rhip.mch.models import (
    COLOUR_LABELS,
    COLOUR_MEANING,
    METHODS,
    OUTCOMES,
    PLACES,
    STATUS_LABELS,
    VISIT_LABELS,
)
from rhip.registry import data as reg_data
from rhip.security.deps import SessionDep, require
from rhip.security.service import Principal

router = APIRouter(include_in_schema=False)
Worker = Annotated[Principal, Depends(require(*WORKERS))]
Reader = Annotated[Principal, Depends(require(*READERS))]
Viewer = Annotated[Principal, Depends(require(*FIGURES))]
OptDate = Annotated[date | None, Form()]


def _render(request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
    ctx = {
        "colour_labels": COLOUR_LABELS,
        "colour_meaning": COLOUR_MEANING,
        "status_labels": STATUS_LABELS,
        "visit_labels": VISIT_LABELS,
        "methods": METHODS,
        "places": PLACES,
        "outcomes": OUTCOMES,
        "msg": request.query_params.get("msg"),
        "district_name": lambda c: d.name if (d := reg_data.district_by(c)) else c,
        "inst_name": lambda c: i.name if c and (i := reg_data.get(c)) else (c or ""),
        **context,
    }
    response: HTMLResponse = request.app.state.templates.TemplateResponse(request, name, ctx)
    return response


def _back(url: str, msg: str) -> RedirectResponse:
    sep = "&" if "?" in url else "?"
    return RedirectResponse(f"{url}{sep}msg={quote(msg)}", status_code=303)


def _do(session: Session, back: str, done: str, work: Callable[[], str]) -> RedirectResponse:
    """Run a form's service call in one transaction: on to `done` with its message, or back refused."""
    try:
        with session.begin():
            msg = work()
    except RhipError as exc:
        return _back(back, exc.detail)
    return _back(done, msg)


def _on_episode(
    session: Session, principal: Principal, pregnancy_id: int, work: Callable[[], str]
) -> Response:
    """A form on an episode: refused (403) outside the caller's district, else `_do` back to its page."""
    with session.begin():
        pregnancy_for(session, principal, pregnancy_id)
    url = f"/mch/pregnancies/{pregnancy_id}"
    return _do(session, url, url, work)


def _on_child(session: Session, principal: Principal, child_id: int, work: Callable[[], str]) -> Response:
    """A form on a child's record: refused (403) outside the caller's district, else `_do`."""
    with session.begin():
        child_for(session, principal, child_id)
    url = f"/mch/children/{child_id}"
    return _do(session, url, url, work)


def _name(p: Principal, name: str) -> str:
    return svc.mask_name(name) if masked(p) else name


@router.get("/mch", response_class=HTMLResponse)
def home(
    request: Request,
    session: SessionDep,
    principal: Reader,
    q: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """妇幼保健：建册与儿童登记表单、本区孕产妇和儿童名单。"""
    with session.begin():
        district = scope_district(principal)
        women, total = svc.get_all_pregnancies(session, district_code=district, q=q, limit=50)
        children, ctotal = svc.get_all_children(session, district_code=district, q=q, limit=50)
        audit_read(session, principal, "mch_home")
    return _render(
        request,
        "mch/index.html",
        {
            "women": women,
            "total": total,
            "children": children,
            "children_total": ctotal,
            "q": q or "",
            "name_of": lambda n: _name(principal, n),
            "can_write": principal.role in WORKERS,
            "today": svc.today().isoformat(),
        },
    )


@router.post("/mch/pregnancies")
def register_form(
    session: SessionDep,
    principal: Worker,
    local_id: Annotated[str, Form(max_length=64)],
    id_number: Annotated[str, Form(max_length=18)],
    name: Annotated[str, Form(max_length=64)],
    registered_on: Annotated[date, Form()],
    gestational_week: Annotated[int, Form()],
    colour: Annotated[str, Form(max_length=8)] = "",
    purple: Annotated[bool, Form()] = False,
    case_owner: Annotated[str, Form(max_length=64)] = "",
    factors: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """建册 from the form."""
    made: dict[str, int] = {}

    def work() -> str:
        p = svc.register_pregnancy(
            session,
            actor=actor_of(principal),
            institution_code=institution_for(principal, None),
            local_id=local_id,
            id_number=id_number,
            name=name,
            registered_on=registered_on,
            gestational_week=gestational_week,
            colour=colour or None,
            purple=purple,
            case_owner=case_owner or None,
            factors=factors,
        )
        made["id"] = p.id
        return f"已建册：{p.local_id}，预产期 {p.edd.isoformat()}"

    back = _do(session, "/mch", "/mch", work)
    if "id" in made:
        return _back(f"/mch/pregnancies/{made['id']}", "已建册")
    return back


@router.get("/mch/pregnancies/{pregnancy_id}", response_class=HTMLResponse)
def pregnancy_page(
    request: Request, pregnancy_id: int, session: SessionDep, principal: Reader
) -> HTMLResponse:
    """一名孕产妇的保健册：风险颜色、产前检查、评估记录、专案随访、分娩与产后访视。"""
    with session.begin():
        p = pregnancy_for(session, principal, pregnancy_id)
        parts = svc.visits_of(session, pregnancy_id=p.id)
        audit_read(session, principal, f"mch_pregnancy:{p.id}")
        week = rules.gestational_week(p.lmp, svc.today()) if p.status == "active" else None
        return _render(
            request,
            "mch/pregnancy.html",
            {
                "p": p,
                "parts": parts,
                "week": week,
                "name": _name(principal, p.name),
                "id_number": svc.mask_id(p.id_number) if masked(principal) else p.id_number,
                "can_write": principal.role in WORKERS,
                "today": svc.today().isoformat(),
                "is_case": svc.is_case(p.colour, p.purple),
            },
        )


@router.post("/mch/pregnancies/{pregnancy_id}/visits")
def visit_form(
    pregnancy_id: int,
    session: SessionDep,
    principal: Worker,
    visit_date: Annotated[date, Form()],
    systolic: Annotated[int | None, Form()] = None,
    diastolic: Annotated[int | None, Form()] = None,
    weight_kg: Annotated[float | None, Form()] = None,
    haemoglobin: Annotated[int | None, Form()] = None,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """初诊/复诊 from the form."""

    def work() -> str:
        v = svc.record_antenatal_visit(
            session,
            actor=actor_of(principal),
            pregnancy_id=pregnancy_id,
            visit_date=visit_date,
            institution_code=institution_for(principal, None),
            systolic=systolic,
            diastolic=diastolic,
            weight_kg=weight_kg,
            haemoglobin=haemoglobin,
            note=note,
        )
        return f"已登记{VISIT_LABELS[v.kind]}（孕 {v.gestational_week} 周）"

    return _on_episode(session, principal, pregnancy_id, work)


@router.post("/mch/pregnancies/{pregnancy_id}/assessments")
def assessment_form(
    pregnancy_id: int,
    session: SessionDep,
    principal: Worker,
    assessed_on: Annotated[date, Form()],
    colour: Annotated[str, Form(max_length=8)],
    purple: Annotated[bool, Form()] = False,
    case_owner: Annotated[str, Form(max_length=64)] = "",
    factors: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """(Re-)grading from the form."""

    def work() -> str:
        a = svc.assess_risk(
            session,
            actor=actor_of(principal),
            pregnancy_id=pregnancy_id,
            assessed_on=assessed_on,
            colour=colour,
            purple=purple,
            factors=factors,
            case_owner=case_owner or None,
        )
        return f"风险评估：{COLOUR_LABELS[a.colour]}{'＋紫色' if a.purple else ''}"

    return _on_episode(session, principal, pregnancy_id, work)


@router.post("/mch/pregnancies/{pregnancy_id}/follow-ups")
def follow_up_form(
    pregnancy_id: int,
    session: SessionDep,
    principal: Worker,
    followed_on: Annotated[date, Form()],
    method: Annotated[str, Form(max_length=16)] = "clinic",
    note: Annotated[str, Form(max_length=2000)] = "",
    next_due_on: OptDate = None,
) -> Response:
    """专案随访 from the form."""

    def work() -> str:
        f = svc.record_follow_up(
            session,
            actor=actor_of(principal),
            pregnancy_id=pregnancy_id,
            followed_on=followed_on,
            method=method,
            note=note,
            next_due_on=next_due_on,
        )
        return f"已随访，下次随访 {f.next_due_on}"

    return _on_episode(session, principal, pregnancy_id, work)


@router.post("/mch/pregnancies/{pregnancy_id}/delivery")
def delivery_form(
    pregnancy_id: int,
    session: SessionDep,
    principal: Worker,
    delivered_on: Annotated[date, Form()],
    place: Annotated[str, Form(max_length=16)],
    method: Annotated[str, Form(max_length=16)],
    live_births: Annotated[int, Form()],
    stillbirths: Annotated[int, Form()] = 0,
    institution_code: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """分娩 from the form."""

    def work() -> str:
        p = svc.record_delivery(
            session,
            actor=actor_of(principal),
            pregnancy_id=pregnancy_id,
            delivered_on=delivered_on,
            place=place,
            method=method,
            live_births=live_births,
            stillbirths=stillbirths,
            institution_code=institution_code or None,
        )
        return f"已登记分娩（孕 {p.delivery_week} 周，活产 {p.live_births}）"

    return _on_episode(session, principal, pregnancy_id, work)


@router.post("/mch/pregnancies/{pregnancy_id}/postpartum-visits")
def postpartum_form(
    pregnancy_id: int,
    session: SessionDep,
    principal: Worker,
    visit_date: Annotated[date, Form()],
    kind: Annotated[str, Form(max_length=8)] = "visit",
) -> Response:
    """产后访视 / 42 天检查 from the form."""

    def work() -> str:
        v = svc.record_postpartum_visit(
            session,
            actor=actor_of(principal),
            pregnancy_id=pregnancy_id,
            visit_date=visit_date,
            institution_code=institution_for(principal, None),
            kind=kind,
        )
        return (
            "已登记产后 42 天检查"
            if v.kind == "check42"
            else f"已登记第 {v.seq} 次产后访视（产后第 {v.days_after} 天）"
        )

    return _on_episode(session, principal, pregnancy_id, work)


@router.post("/mch/children")
def child_form(
    session: SessionDep,
    principal: Worker,
    local_id: Annotated[str, Form(max_length=64)],
    name: Annotated[str, Form(max_length=64)],
    sex: Annotated[str, Form(max_length=1)],
    birth_date: Annotated[date, Form()],
    registered_on: Annotated[date, Form()],
    mother_id_number: Annotated[str, Form(max_length=18)] = "",
    pregnancy_id: Annotated[int | None, Form()] = None,
    birth_weight_g: Annotated[int | None, Form()] = None,
    birth_certificate_no: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """儿童登记 from the form."""
    made: dict[str, int] = {}

    def work() -> str:
        c = svc.register_child(
            session,
            actor=actor_of(principal),
            institution_code=institution_for(principal, None),
            local_id=local_id,
            name=name,
            sex=sex,
            birth_date=birth_date,
            registered_on=registered_on,
            pregnancy_id=pregnancy_id,
            mother_id_number=mother_id_number or None,
            birth_weight_g=birth_weight_g,
            birth_certificate_no=birth_certificate_no or None,
        )
        made["id"] = c.id
        return "已建立儿童保健档案"

    back = _do(session, "/mch", "/mch", work)
    return _back(f"/mch/children/{made['id']}", "已建立儿童保健档案") if "id" in made else back


@router.get("/mch/children/{child_id}", response_class=HTMLResponse)
def child_page(request: Request, child_id: int, session: SessionDep, principal: Reader) -> HTMLResponse:
    """一名儿童的保健档案：身份关联、新生儿访视、健康检查与生长测量、应检未检。"""
    with session.begin():
        c = child_for(session, principal, child_id)
        audit_read(session, principal, f"mch_child:{c.id}")
        visits = svc.child_visits(session, child_id=c.id)
        growth = [v for v in visits if v.weight_kg is not None]
        chart = (
            charts.line_chart(
                "体重（kg）随月龄",
                [f"{v.age_days // 30} 月" for v in growth],
                [float(v.weight_kg or 0) for v in growth],
                unit="kg",
                height=220,
            )
            if len(growth) >= 2
            else ""
        )
        return _render(
            request,
            "mch/child.html",
            {
                "c": c,
                "visits": visits,
                "due": svc.exams_due(session, child_id=c.id),
                "chart": chart,
                "name": _name(principal, c.name),
                "mask": (lambda x: svc.mask_id(x)) if masked(principal) else (lambda x: x),
                "can_write": principal.role in WORKERS,
                "today": svc.today().isoformat(),
            },
        )


@router.post("/mch/children/{child_id}/visits")
def child_visit_form(
    child_id: int,
    session: SessionDep,
    principal: Worker,
    visit_date: Annotated[date, Form()],
    kind: Annotated[str, Form(max_length=8)] = "exam",
    weight_kg: Annotated[float | None, Form()] = None,
    length_cm: Annotated[float | None, Form()] = None,
    head_cm: Annotated[float | None, Form()] = None,
) -> Response:
    """新生儿访视 / 健康检查 from the form."""

    def work() -> str:
        svc.record_child_visit(
            session,
            actor=actor_of(principal),
            child_id=child_id,
            visit_date=visit_date,
            institution_code=institution_for(principal, None),
            kind=kind,
            weight_kg=weight_kg,
            length_cm=length_cm,
            head_cm=head_cm,
        )
        return "已登记新生儿访视" if kind == "newborn" else "已登记健康检查"

    return _on_child(session, principal, child_id, work)


@router.post("/mch/children/{child_id}/link")
def child_link_form(
    child_id: int,
    session: SessionDep,
    principal: Worker,
    id_number: Annotated[str, Form(max_length=18)],
) -> Response:
    """The child's own ID number from the form."""

    def work() -> str:
        svc.link_child(session, actor=actor_of(principal), child_id=child_id, id_number=id_number)
        return "已关联儿童本人身份证号码"

    return _on_child(session, principal, child_id, work)


@router.get("/mch/high-risk", response_class=HTMLResponse)
def high_risk_page(
    request: Request, session: SessionDep, principal: Reader, on: date | None = None
) -> HTMLResponse:
    """高危孕产妇专案管理：橙色、红色、紫色孕产妇的下次随访日期与逾期天数。"""
    day = on or svc.today()
    with session.begin():
        rows = svc.high_risk_cases(session, on=day, district_code=scope_district(principal))
        audit_read(session, principal, "mch_high_risk")
        return _render(
            request,
            "mch/high_risk.html",
            {
                "rows": rows,
                "day": day,
                "overdue": sum(1 for r in rows if r.overdue),
                "name_of": lambda n: _name(principal, n),
            },
        )


@router.get("/mch/dashboard", response_class=HTMLResponse)
def dashboard(
    request: Request,
    session: SessionDep,
    principal: Viewer,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    district: Annotated[str | None, Query(pattern=r"^(\d{6})?$")] = None,
) -> HTMLResponse:
    """妇幼健康指标：报告年度（上年 10 月 1 日至本年 9 月 30 日）各区指标、机构明细与逐月趋势。"""
    today = svc.today()
    y = year or (today.year if today.month >= 10 else today.year - 1)
    start, end = rules.report_year(y)
    end_month = f"{end.year:04d}-{end.month:02d}"
    with session.begin():
        rep = indicators.report(session, year=y, district=district or None)
        series = stats.monthly_series(session, end_month=end_month, months=12)
    chart = charts.line_chart(
        f"{y} 年度逐月建册、分娩与儿童登记",
        [m[2:] for m in series["months"]],
        [
            charts.Series("妇女登记", [float(x) for x in series["registrations"]]),
            charts.Series("分娩", [float(x) for x in series["deliveries"]]),
            charts.Series("儿童登记", [float(x) for x in series["children"]]),
        ],
        unit="人",
    )
    early_chart = charts.line_chart(
        "逐月建册中孕 13 周前建册的比例", [m[2:] for m in series["months"]], series["early_share"], unit="%"
    )
    return _render(
        request,
        "mch/dashboard.html",
        {
            "rep": rep,
            "year": y,
            "start": start,
            "end": end,
            "district": district or "",
            "districts": reg_data.districts(),
            "defs": indicators.DEFINITIONS,
            "series": series,
            "chart": chart,
            "early_chart": early_chart,
        },
    )
