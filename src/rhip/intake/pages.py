"""Portal pages for intake: an institution's recent uploads (receipts) and their problem lists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from rhip import charts, months
from rhip.clock import local_now
from rhip.intake import dashboard, service
from rhip.intake.api import audited_receipt
from rhip.intake.rules import RULES
from rhip.intake.schemas import batch_read
from rhip.security.deps import SessionDep, require
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter(include_in_schema=False)
VIEWERS = (Role.uploader, Role.manager, Role.admin, Role.auditor)


@router.get("/intake", response_class=HTMLResponse)
def uploads_page(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*VIEWERS))],
    institution: str | None = None,
    month: Annotated[str | None, Query(pattern=months.PATTERN)] = None,
) -> HTMLResponse:
    """数据采集：某月每日接收量、各上传方式、各规则拒收数（图与表），以及最近的上传回执与问题。"""
    code = principal.institution_code if principal.role is Role.uploader else institution
    available = dashboard.months_with_data(session, institution_code=code)
    m = months.check(month) if month else months.latest(available, months.of(local_now().date()))
    batches = [
        batch_read(session, b, problems_limit=0)
        for b in service.recent_batches(session, institution_code=code, limit=100)
    ]
    panels = _panels(session, m, code, [b.id for b in batches])
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        "intake/uploads.html",
        {
            "batches": batches,
            "institution": code,
            "channels": service.CHANNELS,
            "month": m,
            "available": sorted({*available, m}, reverse=True),
            "panels": panels,
        },
    )
    return response


def _panels(session: Session, month: str, code: str | None, batch_ids: list[str]) -> list[charts.Panel]:
    """Records per day of the month; per way in and rejections by rule of the receipts listed."""
    label = months.label(month)
    day = dashboard.per_day(session, month=month, institution_code=code)
    if not any(day.values()):
        return []
    way = {
        service.CHANNELS.get(k, k): n for k, n in dashboard.per_channel(session, batch_ids=batch_ids).items()
    }
    rule = {RULES.get(k, k): n for k, n in dashboard.rejections_by_rule(session, batch_ids=batch_ids).items()}
    out = [
        charts.panel(
            charts.line_chart(f"{label}每日接收记录数", list(day), list(day.values()), unit="条"),
            ("日期", "记录数"),
            list(day.items()),
        ),
        charts.panel(
            charts.bar_chart(
                f"最近 {len(batch_ids)} 个回执：各上传方式接收记录数",
                list(way),
                list(way.values()),
                unit="条",
            ),
            ("上传方式", "记录数"),
            list(way.items()),
        ),
    ]
    if rule:
        out.append(
            charts.panel(
                charts.hbar_chart(
                    f"最近 {len(batch_ids)} 个回执：各校验规则拒收记录数",
                    list(rule),
                    list(rule.values()),
                    unit="条",
                ),
                ("校验规则", "拒收数"),
                list(rule.items()),
            )
        )
    return out


@router.get("/intake/batches/{batch_id}", response_class=HTMLResponse)
def batch_page(
    batch_id: str,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*VIEWERS))],
) -> HTMLResponse:
    """一个回执：各数据表的接收、入库、重复、拒收数和问题清单（个人信息按角色遮蔽，调阅留痕）。"""
    b = audited_receipt(request, session, principal, batch_id, limit=500, what="page.intake.problems")
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "intake/batch.html", {"b": b, "rules": RULES, "channels": service.CHANNELS}
    )
    return response
