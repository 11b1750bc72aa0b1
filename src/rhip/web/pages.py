"""Portal pages owned by the web layer: the home page that links every part of the platform."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from rhip.errors import Unauthorized
from rhip.security.deps import SessionDep, public
from rhip.web.core import sign_in

router = APIRouter(include_in_schema=False)

# (section, title, description, link or None while that part is being built)
PARTS: list[tuple[str, str, str, str | None]] = [
    (
        "基础",
        "机构注册库",
        "全市医院、社区卫生服务中心、区平台及都市圈城市，按区检索",
        "/registry/institutions",
    ),
    ("基础", "行政区", "12 个区（含江北新区）及其接入机构", "/registry/districts"),
    ("基础", "数据集目录", "机构上传的数据表、字段、代码绑定与业务主键", "/registry/datasets"),
    ("基础", "接口文档", "REST API 与 OpenAPI 说明", "/docs"),
    ("采集", "数据采集", "定时上传、实时上传、FHIR、CDA 文档；回执与问题清单", "/intake"),
    ("质控", "数据质控", "各区、各医院数据采集情况与质量评分", "/quality"),
    ("服务", "预约挂号", "12320 预约挂号平台：统一号源池、家庭医生优先号源、双向转诊", "/booking"),
    ("服务", "健康档案调阅", "经居民授权调阅跨机构档案，智能提示", None),
    ("服务", "12320 热线", "热线工单与智慧客服“宁宁”", None),
    ("服务", "远程医疗", "会诊、影像、心电、临检、病理五大中心", None),
    ("报告", "信息化简报", "南京卫生信息化简报（月度统计数据）", "/bulletin"),
]


@router.get("/", response_class=HTMLResponse, dependencies=[Depends(public())])
def home(request: Request) -> HTMLResponse:
    """The portal's home page (Chinese)."""
    sections: dict[str, list[tuple[str, str, str | None]]] = {}
    for section, title, desc, link in PARTS:
        sections.setdefault(section, []).append((title, desc, link))
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "home.html", {"sections": sections}
    )
    return response


def _safe_next(value: str | None) -> str:
    """Only same-site paths may be redirected to after sign-in."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


@router.get("/login", response_class=HTMLResponse, dependencies=[Depends(public())])
def login_page(
    request: Request,
    next: Annotated[str | None, Query(max_length=300)] = None,
    msg: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """The staff sign-in page (doctors, uploaders, agents, managers, auditors, admins)."""
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "login.html", {"next": _safe_next(next), "msg": msg}
    )
    return response


@router.post("/login", dependencies=[Depends(public())])
def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=128)],
    next: Annotated[str, Form(max_length=300)] = "/",
) -> Response:
    """Check the password, set the token cookie and go back to where the user was going."""
    target = _safe_next(next)
    try:
        token, ttl, _user = sign_in(request, session, username=username, password=password)
    except Unauthorized as exc:
        return RedirectResponse(f"/login?next={quote(target)}&msg={quote(exc.detail)}", status_code=303)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        "rhip_token", token, max_age=int(ttl.total_seconds()), httponly=True, samesite="strict", path="/"
    )
    return response


@router.get("/logout", dependencies=[Depends(public())])
def logout() -> Response:
    """Forget the token cookie."""
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie("rhip_token", path="/")
    return response
