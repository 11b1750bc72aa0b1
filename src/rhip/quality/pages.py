"""The 数据质控 dashboard: the month's district and hospital tables (sortable, searchable), a unit's trend and
calendar of upload days, the problem list and exports. Managers see every unit; an uploader its own.
"""

from __future__ import annotations

import calendar
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from rhip.quality import dimensions, service, stats
from rhip.quality.api import MonthQ, default_month, lake_of, visible_figures
from rhip.quality.models import ITEM_LABELS
from rhip.security.deps import SessionDep, require
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter(include_in_schema=False)
VIEWERS = (Role.uploader, Role.manager, Role.admin, Role.auditor)


def trend_svg(history: dict[str, int], *, width: int = 560, height: int = 180) -> str:
    """An inline SVG line chart of monthly visits (no external library, no script)."""
    if not history:
        return ""
    months, values = list(history), list(history.values())
    top = max(values) or 1
    pad_l, pad_b, pad_t = 56, 28, 12
    w, h = width - pad_l - 12, height - pad_b - pad_t
    step = w / max(1, len(values) - 1)
    pts = [(pad_l + i * step, pad_t + h - (v / top) * h) for i, v in enumerate(values)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3"><title>{m}：{v:,} 人次</title></circle>'
        for (x, y), m, v in zip(pts, months, values, strict=True)
    )
    labels = "".join(
        f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle">{m[2:]}</text>'
        for (x, _y), m in zip(pts, months, strict=True)
    )
    return (
        f'<svg class="trend" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="门急诊人次月度趋势">'
        f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{pad_l + w}" y2="{pad_t + h}" stroke="#999"/>'
        f'<text x="4" y="{pad_t + 10}">{top:,}</text><text x="4" y="{pad_t + h}">0</text>'
        f'<polyline fill="none" stroke="#b40000" stroke-width="2" points="{line}"/>{dots}{labels}</svg>'
    )


def calendar_weeks(month: str, days: list[Any]) -> list[list[tuple[int, bool] | None]]:
    """Weeks (Monday first) of the month: (day, uploaded) or None for padding."""
    first, _ = stats.month_bounds(month)
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
    m = month or default_month()
    lake = lake_of(request)
    with session.begin():
        fig, assessed = visible_figures(session, lake=lake, month=m, principal=principal)
        scores = {a.code: a for a in assessed}
        chosen = (
            next((u for u in fig.units if u.code == unit), None) or (fig.of_kind("hospital") or fig.units)[0]
        )
        history = stats.visit_history(session, lake=lake, month=m, months=12).get(chosen.code, {})
        code = None if principal.role in service.MANAGERS else chosen.code
        items, total = service.get_all_items(session, institution_code=code, limit=100)
        inspections = service.get_all_inspections(session, institution_code=code)
    names = {u.code: u.name for u in fig.units}
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        "quality/dashboard.html",
        {
            "month": m,
            "label": stats.month_label(m),
            "fig": fig,
            "districts": fig.of_kind("district"),
            "hospitals": fig.of_kind("hospital"),
            "scores": scores,
            "chosen": chosen,
            "trend": trend_svg(history),
            "weeks": calendar_weeks(m, chosen.days),
            "items": items,
            "items_total": total,
            "inspections": inspections,
            "item_labels": ITEM_LABELS,
            "dimensions": dimensions.DIMENSIONS,
            "names": names,
            "thousands": stats.thousands,
            "cumulative": stats.cumulative_text(fig.cumulative),
            "is_manager": principal.role in service.MANAGERS,
        },
    )
    return response
