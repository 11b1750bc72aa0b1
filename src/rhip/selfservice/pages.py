"""Self-service pages (Chinese): the kiosk simulator, the hospital's terminal dashboard, the city view
with the district map (/map), the resident's electronic health card with its QR codes."""

from __future__ import annotations

import io
import re
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from rhip.charts import Series, bar_chart
from rhip.clock import local_now
from rhip.errors import NotFound, RhipError
from rhip.registry import data as reg_data
from rhip.security import masking
from rhip.security.deps import SessionDep, public, require
from rhip.security.roles import Role
from rhip.security.service import Principal
from rhip.selfservice import citymap, geo, service as svc, stats
from rhip.selfservice.api_common import audited_read

router = APIRouter(include_in_schema=False)
Resident = Annotated[Principal, Depends(require(Role.resident))]
HospitalStaff = Annotated[Principal, Depends(require(Role.uploader, Role.manager, Role.admin))]
Managers = Annotated[Principal, Depends(require(Role.manager, Role.admin, Role.auditor))]
MonthQ = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")]


def _month(value: str | None) -> str:
    return value or local_now().strftime("%Y-%m")


def _render(request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
    response: HTMLResponse = request.app.state.templates.TemplateResponse(request, name, context)
    return response


def qr_svg(text: str, *, title: str, scale: int = 5) -> str:
    """A QR code as inline SVG (segno, error correction M)."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=scale, xmldecl=False, title=title, border=2)
    return out.getvalue().decode()


# ------------------------------------------------------------------ kiosk


@router.get("/selfservice/kiosk", response_class=HTMLResponse, dependencies=[Depends(public())])
def kiosk(request: Request) -> HTMLResponse:
    """自助机模拟：读卡（扫码或输入电子健康卡码）、当日挂号、缴费、取单；凭终端密钥调用接口。"""
    return _render(request, "selfservice/kiosk.html", {"kinds": svc.KINDS})


# ------------------------------------------------------------------ the hospital's dashboard


@router.get("/selfservice/terminals", response_class=HTMLResponse)
def dashboard(
    request: Request,
    session: SessionDep,
    me: HospitalStaff,
    month: MonthQ = None,
    institution: Annotated[str | None, Query(max_length=32)] = None,
) -> HTMLResponse:
    """本院自助终端：每台终端的交易量、金额、故障与平均耗时。管理员可选机构。"""
    m = _month(month)
    code = institution if me.role in (Role.manager, Role.admin) and institution else me.institution_code
    if not code:
        code = "H020"
    inst = reg_data.get(code)
    if inst is None:
        raise NotFound(f"机构代码不存在：{code}", code="no-institution")
    with session.begin():
        rows = stats.per_terminal(session, institution_code=code, month=m)
    top = sorted(rows, key=lambda r: -r["ok"])[:20]
    chart = bar_chart(
        f"{inst.name} {m} 各终端成功交易笔数（前 20 台）",
        [r["code"].rsplit("-", 1)[-1] for r in top],
        [float(r["ok"]) for r in top],
        unit="笔",
    )
    faults = sum(1 for r in rows if r["status"] == "fault")
    return _render(
        request,
        "selfservice/terminals.html",
        {
            "month": m,
            "inst": inst,
            "rows": rows,
            "chart": chart,
            "faults": faults,
            "failed": sum(r["failed"] for r in rows),
            "yuan": svc.fen_to_yuan,
            "kinds": svc.KINDS,
            "statuses": svc.STATUSES,
            "unused": sum(1 for r in rows if r["ok"] == 0),
        },
    )


# ------------------------------------------------------------------ the map and the city view


def _map_context(session: Any, figure: str, month: str) -> dict[str, Any]:
    options = citymap.available()
    if figure not in options:
        figure = "institutions"
    rows = citymap.district_rows(session, figure=figure, month=month)
    title = (
        f"南京市各区{options[figure]}（{month}）" if figure != "institutions" else "南京市各区医疗卫生机构数"
    )
    svg = geo.svg({r.name: r.value for r in rows}, title=title)
    table = citymap.table(session, month=month)
    districts = table[:-1]
    chart = bar_chart(
        f"各区在用自助终端与远程医疗接入机构（{month}）",
        [r["name"] for r in districts],
        [Series(options[f], [r[f] for r in districts]) for f in ("terminals", "telemed")],
        unit="",
    )
    return {
        "district_table": table,
        "table_figures": [(f, options[f]) for f in citymap.TABLE],
        "chart_svg": chart,
        "figure": figure,
        "options": options,
        "rows": rows,
        "map_svg": svg,
        "map_title": title,
        "source": geo.SOURCE,
        "kind_labels": citymap.KIND_LABELS,
        "month": month,
    }


@router.get("/map", response_class=HTMLResponse, dependencies=[Depends(public())])
def city_map(
    request: Request,
    session: SessionDep,
    figure: Annotated[str, Query(max_length=20)] = "institutions",
    month: MonthQ = None,
) -> HTMLResponse:
    """医疗电子地图（示意图）：各区按所选指标着色；各区机构数、在用终端、当月发卡、远程医疗接入机构表与图；列出各区机构。"""
    with session.begin():
        ctx = _map_context(session, figure, _month(month))
    return _render(request, "selfservice/map.html", ctx)


@router.get("/selfservice", response_class=HTMLResponse)
def city_view(request: Request, session: SessionDep, me: Managers, month: MonthQ = None) -> HTMLResponse:
    """全市自助服务：各区终端地图、终端使用表（2020 版式）、开卡量与电子健康卡用卡渠道。"""
    m = _month(month)
    start, end = stats.month_bounds(m)
    with session.begin():
        ctx = _map_context(session, "terminals", m)
        table = stats.table_2020(session, month=m)
        cards = stats.card_table(session, month=m)
        uses = svc.uses_by_channel(session, start=start, end=end)
    ctx.update(
        {
            "table": table,
            "cards": cards,
            "uses": [(svc.CARD_CHANNELS[c], uses.get(c, 0)) for c in svc.CARD_CHANNELS],
        }
    )
    return _render(request, "selfservice/city.html", ctx)


# ------------------------------------------------------------------ the resident's card


@router.get("/selfservice/card", response_class=HTMLResponse)
def card_page(request: Request, session: SessionDep, me: Resident) -> HTMLResponse:
    """我的电子健康卡：静态码（需核对身份证后四位）与动态码（60 秒有效，一次有效）。"""
    secret = request.app.state.settings.resolved_secret_key
    with session.begin():
        try:
            card = svc.get_health_card(session, id_number=me.subject)
        except RhipError:
            card = None
        ctx: dict[str, Any] = {"card": None, "name": me.name or ""}
        if card is not None:
            audited_read(session, me, "card.read", card.card_id, page="card")
            code, expires = svc.dynamic_code(card, secret=secret)
            ctx = {
                "card": card,
                "masked": masking.mask_id(card.id_number),  # the card's face, even to its holder
                "static_svg": qr_svg(svc.static_code(card), title="静态码"),
                "dynamic_svg": qr_svg(code, title="动态码"),
                "expires": expires.astimezone(local_now().tzinfo),
                "ttl": svc.DYNAMIC_TTL,
            }
    return _render(request, "selfservice/card.html", ctx)


@router.post("/selfservice/card")
def claim_card(
    session: SessionDep, me: Resident, name: Annotated[str, Form(min_length=1, max_length=64)]
) -> Response:
    """领取电子健康卡（实名：账号的身份证号 + 姓名）。"""
    with session.begin():
        svc.issue_health_card(session, id_number=me.subject, name=name)
    return RedirectResponse("/selfservice/card", status_code=303)


@router.get("/selfservice/card/dynamic.svg")
def dynamic_svg(request: Request, session: SessionDep, me: Resident) -> Response:
    """A fresh dynamic QR code as an SVG image (the card page reloads it before it expires)."""
    secret = request.app.state.settings.resolved_secret_key
    with session.begin():
        card = svc.get_health_card(session, id_number=me.subject)
        code, _expires = svc.dynamic_code(card, secret=secret)
    body = re.sub(r"<title>.*?</title>", "<title>动态码</title>", qr_svg(code, title="动态码"))
    return Response(body, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})
