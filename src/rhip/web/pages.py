"""Portal pages owned by the web layer: the home page that links every part of the platform."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from rhip.errors import RhipError
from rhip.security import pagekit
from rhip.security.deps import SessionDep, public

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


@router.get("/docs", response_class=HTMLResponse, dependencies=[Depends(public())])
def docs(request: Request) -> HTMLResponse:
    """Swagger UI for the OpenAPI schema, from the vendored swagger-ui-bundle files."""
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "docs.html", {"openapi_url": request.app.openapi_url}
    )
    return response


@router.get("/login", response_class=HTMLResponse, dependencies=[Depends(public())])
def login_page(
    request: Request,
    next: Annotated[str | None, Query(max_length=300)] = None,
    msg: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """The sign-in page for everyone (staff, and residents with their ID number)."""
    return pagekit.render(request, "login.html", {"next": pagekit.safe_next(next), "msg": msg})


@router.post("/login", dependencies=[Depends(public())])
def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=128)],
    next: Annotated[str, Form(max_length=300)] = "/",
) -> Response:
    """Check the password (throttled), set the token cookie and go back to where the user was going."""
    target = pagekit.safe_next(next)
    try:
        token, ttl, _user = pagekit.sign_in(request, session, username=username, password=password)
    except RhipError as exc:
        return pagekit.back(f"/login?next={quote(target)}", exc.detail)
    response = RedirectResponse(target, status_code=303)
    pagekit.set_session(request, response, token, ttl)
    return response


@router.api_route("/logout", methods=["GET", "POST"], dependencies=[Depends(public())])
def logout(request: Request, session: SessionDep) -> Response:
    """Revoke the session's token and forget the cookie."""
    response = RedirectResponse("/", status_code=303)
    pagekit.end_session(request, session, response)
    return response
