"""The 数据质控 dashboard: the month's district and hospital tables (sortable, searchable), a unit's trend and
calendar of upload days, the problem list and exports. Managers see every unit; an uploader its own.
"""

from __future__ import annotations

import calendar
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from rhip import charts, months
from rhip.clock import local_now
from rhip.quality import dimensions, service
from rhip.quality.api import MonthQ, lake_of, visible_figures
from rhip.quality.figures import MonthFigures, months_with_data, visit_history
from rhip.quality.layouts import cumulative_text, thousands
from rhip.quality.models import ITEM_LABELS
from rhip.security.deps import SessionDep, require
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter(include_in_schema=False)
VIEWERS = (Role.uploader, Role.manager, Role.admin, Role.auditor)


SCORE_BINS = (
    (0, 60, "60 分以下"),
    (60, 70, "60–69"),
    (70, 80, "70–79"),
    (80, 90, "80–89"),
    (90, 101, "90–100"),
)
TOP = 10


def chart_panels(
    fig: MonthFigures, scores: dict[str, Any], history: dict[str, int], unit_name: str
) -> list[charts.Panel]:
    """The dashboard's charts, each with the rows of the table printed beside it."""
    panels = []
    rows = [(u.name, u.uploads) for u in fig.of_kind("district")]
    if rows:
        svg = charts.bar_chart("各区定时数据上传量", [r[0] for r in rows], [r[1] for r in rows], unit="条")
        panels.append(charts.panel(svg, ("区", "上传量（条）"), rows))
    top = sorted(fig.of_kind("hospital"), key=lambda u: -u.uploads)[:TOP]
    if top:
        rows = [(u.name, u.uploads) for u in top]
        title = f"定时数据上传量前 {len(top)} 位的医院"
        svg = charts.hbar_chart(title, [r[0] for r in rows], [r[1] for r in rows], unit="条")
        panels.append(charts.panel(svg, ("医院", "上传量（条）"), rows))
    values = [a.score for a in scores.values() if a.score is not None]
    if values:
        rows = [(label, sum(1 for v in values if lo <= v < hi)) for lo, hi, label in SCORE_BINS]
        svg = charts.bar_chart(
            "质量评分分布（接入单位数）", [r[0] for r in rows], [r[1] for r in rows], unit="个"
        )
        panels.append(charts.panel(svg, ("评分", "单位数"), rows))
    if history:
        rows = list(history.items())
        title = f"{unit_name}门急诊人次月度趋势"
        svg = charts.line_chart(title, [r[0] for r in rows], [r[1] for r in rows], unit="人次")
        panels.append(charts.panel(svg, ("月份", "门急诊人次"), rows))
    return panels


def calendar_weeks(month: str, days: list[Any]) -> list[list[tuple[int, bool] | None]]:
    """Weeks (Monday first) of the month: (day, uploaded) or None for padding."""
    first, _ = months.day_bounds(month)
    uploaded = {d.day for d in days}
    weeks = []
    for week in calendar.Calendar(firstweekday=0).monthdayscalendar(first.year, first.month):
        weeks.append([(d, d in uploaded) if d else None for d in week])
    return weeks


@router.get("/quality", response_class=HTMLResponse)
def dashboard(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*VIEWERS))],
    month: MonthQ = None,
    unit: str | None = None,
) -> HTMLResponse:
    """数据质控：本月各区、各医院数据采集情况、质量评分、趋势、上传日历与问题清单。"""
    lake = lake_of(request)
    with session.begin():
        available = months_with_data(session)
        m = month or months.latest(available, months.previous(local_now().date()))
        fig, assessed = visible_figures(session, lake=lake, month=m, principal=principal)
        scores = {a.code: a for a in assessed}
        chosen = (
            next((u for u in fig.units if u.code == unit), None) or (fig.of_kind("hospital") or fig.units)[0]
        )
        history = visit_history(session, lake=lake, month=m, months=12).get(chosen.code, {})
        code = None if principal.role in service.MANAGERS else chosen.code
        items, total = service.get_all_items(session, institution_code=code, limit=100)
        inspections = service.get_all_inspections(session, institution_code=code)
    names = {u.code: u.name for u in fig.units}
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        "quality/dashboard.html",
        {
            "month": m,
            "label": months.label(m),
            "available": sorted({*available, m}, reverse=True),
            "panels": chart_panels(fig, scores, history, chosen.name),
            "fig": fig,
            "districts": fig.of_kind("district"),
            "hospitals": fig.of_kind("hospital"),
            "scores": scores,
            "chosen": chosen,
            "weeks": calendar_weeks(m, chosen.days),
            "items": items,
            "items_total": total,
            "inspections": inspections,
            "item_labels": ITEM_LABELS,
            "dimensions": dimensions.DIMENSIONS,
            "names": names,
            "thousands": thousands,
            "cumulative": cumulative_text(fig.cumulative),
            "is_manager": principal.role in service.MANAGERS,
        },
    )
    return response
