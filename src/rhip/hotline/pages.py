"""Hotline pages (Chinese): the agent desk, an institution's work-order inbox, the manager's dashboard and the
resident's chat with 宁宁. Forms post to the same service functions as the JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from rhip.charts import Series, bar_chart
from rhip.clock import SHANGHAI, local_now
from rhip.errors import RhipError
from rhip.hotline import service as svc, sla, stats
from rhip.hotline.schemas import local
from rhip.security.deps import SessionDep, audit_read, public, require
from rhip.security.masking import mask_text
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter(include_in_schema=False)
Agent = Annotated[Principal, Depends(require(Role.agent))]
DeskUsers = Annotated[Principal, Depends(require(Role.agent, Role.manager, Role.admin))]
InboxUsers = Annotated[Principal, Depends(require(Role.doctor, Role.agent, Role.manager, Role.admin))]
Viewers = Annotated[Principal, Depends(require(Role.manager, Role.admin, Role.auditor))]
SLA_CLASS = {"ok": "sla-ok", "warn50": "sla-50", "warn75": "sla-75", "breach": "sla-breach"}


def _render(request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
    base = {
        "msg": request.query_params.get("msg", ""),
        "local": local,
        "states": svc.STATE_LABELS,
        "sla_labels": sla.LEVEL_LABELS,
        "sla_class": SLA_CLASS,
        "actions": svc.ACTION_LABELS,
        "categories": svc.CATEGORY_LABELS,
        "risks": svc.RISK_LEVELS,
        "mask": mask_text,
    }
    response: HTMLResponse = request.app.state.templates.TemplateResponse(request, name, {**base, **context})
    return response


def _back(url: str, msg: str) -> RedirectResponse:
    sep = "&" if "?" in url else "?"
    return RedirectResponse(f"{url}{sep}msg={quote(msg)}", status_code=303)


@router.get("/hotline", response_class=HTMLResponse)
def desk(request: Request, session: SessionDep, me: DeskUsers) -> HTMLResponse:
    """坐席工作台：登记来电、为来电者预约、危机干预、工单与时限颜色。"""
    with session.begin():
        calls, _n = svc.get_all_calls(session, limit=15, with_count=False)
        page = svc.get_all_orders(session, actor=me, open_only=True, limit=30)
        summary = svc.sla_counts(session)
        if calls:
            audit_read(session, request, me, what="hotline.calls", target="desk")
        if page.items:
            audit_read(session, request, me, what="hotline.work_orders", target="desk")
        return _render(
            request,
            "hotline/desk.html",
            {"me": me, "calls": calls, "orders": page.items, "total": page.count, "summary": summary},
        )


@router.post("/hotline/calls")
def desk_log_call(
    session: SessionDep,
    me: Agent,
    category: Annotated[str, Form(max_length=32)],
    caller: Annotated[str, Form(max_length=24)],
    note: Annotated[str, Form(max_length=2000)] = "",
    id_number: Annotated[str, Form(max_length=32)] = "",
    risk_level: Annotated[str, Form(max_length=16)] = "",
    transferred: Annotated[str, Form(max_length=4)] = "",
) -> RedirectResponse:
    """Log a call from the desk form."""
    try:
        with session.begin():
            call = svc.log_call(
                session,
                actor=me,
                category=category,
                caller=caller,
                note=note,
                id_number=id_number or None,
                risk_level=risk_level or None,
                outcome="transferred_12356" if transferred else "answered",
            )
            cid = call.id
    except RhipError as exc:
        return _back("/hotline", f"未登记：{exc.detail}")
    return _back("/hotline", f"已登记来电 #{cid}")


@router.post("/hotline/calls/{call_id}/book")
def desk_book(
    call_id: int,
    session: SessionDep,
    me: Agent,
    slot_id: Annotated[int, Form()],
    id_number: Annotated[str, Form(max_length=32)],
    name: Annotated[str, Form(max_length=32)] = "",
) -> RedirectResponse:
    """电话预约 from the desk form."""
    try:
        with session.begin():
            appt = svc.book_for_caller(
                session, call_id=call_id, slot_id=slot_id, id_number=id_number, name=name or None, actor=me
            )
            when = appt.starts_at.astimezone(SHANGHAI).strftime("%m-%d %H:%M")
    except RhipError as exc:
        return _back("/hotline", f"未预约：{exc.detail}")
    return _back("/hotline", f"已为来电 #{call_id} 预约 {when}")


@router.post("/hotline/orders/{order_id}/act")
def order_act(
    order_id: int,
    session: SessionDep,
    me: InboxUsers,
    action: Annotated[str, Form(max_length=16)],
    note: Annotated[str, Form(max_length=10_000)] = "",
    institution_code: Annotated[str, Form(max_length=16)] = "",
    back: Annotated[str, Form(max_length=40)] = "/hotline",
) -> RedirectResponse:
    """One step of an order's state machine from a page."""
    target = back if back in ("/hotline", "/hotline/inbox") else "/hotline"
    try:
        with session.begin():
            order = svc.act(
                session,
                order_id=order_id,
                action=action,
                actor=me,
                note=note,
                institution_code=institution_code or None,
            )
            text = f"工单 {order.number} 已{svc.ACTION_LABELS[action]}"
    except RhipError as exc:
        return _back(target, f"操作未完成：{exc.detail}")
    return _back(target, text)


@router.get("/hotline/inbox", response_class=HTMLResponse)
def inbox(
    request: Request,
    session: SessionDep,
    me: InboxUsers,
    institution: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    """机构工单收件箱：本机构待签收、办理中的工单，答复与退回。"""
    code = me.institution_code if me.role is Role.doctor else institution
    with session.begin():
        page = svc.get_all_orders(session, actor=me, institution_code=code, open_only=True, limit=50)
        if page.items:
            audit_read(session, request, me, what="hotline.work_orders", target=code or "inbox")
        return _render(
            request,
            "hotline/inbox.html",
            {"me": me, "orders": page.items, "total": page.count, "institution": code},
        )


@router.get("/hotline/dashboard", response_class=HTMLResponse)
def dashboard(
    request: Request,
    session: SessionDep,
    me: Viewers,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
) -> HTMLResponse:
    """热线月度看板：本月段落、每日分类来电图表与数字、工单时限。"""
    m = month or local_now().strftime("%Y-%m")
    with session.begin():
        fig = stats.month_figures(session, month=m)
        days, per = stats.by_day(session, month=m)
        summary = svc.sla_counts(session)
    series = [Series(svc.CATEGORY_LABELS[c], v) for c, v in per.items() if c in stats.MAIN_CATEGORIES]
    chart = bar_chart(
        f"{m} 每日来电（按分类）", [str(d) for d in days], series, unit="个", stacked=True, width=900
    )
    rows = [(d, [per[c][d - 1] for c in stats.MAIN_CATEGORIES]) for d in days]
    return _render(
        request,
        "hotline/dashboard.html",
        {
            "month": m,
            "fig": fig,
            "paragraph": stats.paragraph(fig),
            "province": stats.province_sentence(fig),
            "assistant": stats.assistant_sentence(fig),
            "chart": chart,
            "rows": rows,
            "cats": [svc.CATEGORY_LABELS[c] for c in stats.MAIN_CATEGORIES],
            "summary": summary,
        },
    )


@router.get("/assistant", response_class=HTMLResponse, dependencies=[Depends(public())])
def chat_page(request: Request) -> HTMLResponse:
    """与宁宁对话（手机可用）。"""
    return _render(request, "hotline/chat.html", {"now": datetime.now(SHANGHAI)})
