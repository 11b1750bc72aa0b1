"""MCH pages (Chinese): the worker's register and lists, an episode with the risk colour as a badge, a child's
record with the growth chart, the high-risk work list, and the district dashboard with the report year's
indicators and a chart over months. The forms they post to are in `forms.py` (included in this router).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from rhip import charts
from rhip.mch import forms, indicators, rules, service as svc, stats
from rhip.mch.api import (
    FIGURES,
    READERS,
    WORKERS,
    audit_read,
    child_for,
    masker,
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
from rhip.security.masking import Kind
from rhip.security.service import Principal

router = APIRouter(include_in_schema=False)
router.include_router(forms.router)
Reader = Annotated[Principal, Depends(require(*READERS))]
Viewer = Annotated[Principal, Depends(require(*FIGURES))]


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


def _name(p: Principal, name: str) -> str:
    return masker(p).value(Kind.name, name) or ""


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
                "id_number": masker(principal).id(p.id_number),
                "can_write": principal.role in WORKERS,
                "today": svc.today().isoformat(),
                "is_case": svc.is_case(p.colour, p.purple),
            },
        )


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
                "mask": masker(principal).id,
                "can_write": principal.role in WORKERS,
                "today": svc.today().isoformat(),
            },
        )


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
