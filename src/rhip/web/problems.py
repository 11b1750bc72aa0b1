"""RFC 9457 problem+json for every error, so no request ever sees a traceback."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from rhip.errors import RhipError
from rhip.security import masking
from rhip.security.deps import audit_refusal

AUDITED = frozenset({401, 403, 429})

PROBLEM = "application/problem+json"
log = logging.getLogger("rhip.web")

_HTTP_TITLES = {
    400: "请求格式错误",
    401: "未登录或凭证无效",
    403: "无权访问",
    404: "未找到",
    405: "不支持的请求方法",
    413: "上传内容过大",
    415: "不支持的文件格式",
    422: "数据校验未通过",
    429: "请求过于频繁",
}


def problem(
    status: int, title: str, detail: str, *, code: str, instance: str | None = None, **extra: Any
) -> Response:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": f"https://rhip.example/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 429 and "retry_after" in extra:
        headers = {"Retry-After": str(int(extra["retry_after"]))}
    # orjson: the same compact UTF-8 JSON as JSONResponse, in a fraction of the time (a sold-out
    # answer is a problem, and answering those fast is the point of the sold-out memory)
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM, headers=headers)


FHIR_JSON = "application/fhir+json"
_FHIR_ISSUE = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported"}
_FHIR_ISSUE |= {409: "conflict", 413: "too-costly", 415: "not-supported", 422: "invalid", 429: "throttled"}


def _answer(request: Request, status: int, title: str, detail: str, *, code: str, **extra: Any) -> Response:
    """problem+json, or under /fhir/ an OperationOutcome (what FHIR clients read), with the same code."""
    if not _path(request).startswith("/fhir/"):
        return problem(status, title, detail, code=code, instance=_path(request), **extra)
    body = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error" if status < 500 else "fatal",
                "code": _FHIR_ISSUE.get(status, "exception" if status >= 500 else "processing"),
                "details": {"coding": [{"system": "urn:rhip:problem", "code": code}], "text": title},
                "diagnostics": detail,
            }
        ],
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON, headers=headers)


def _path(request: Request) -> str:
    """The request's path as request.url.path gives it, without building the whole URL."""
    path: str = request.scope["path"]
    return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "") and not _path(request).startswith(
        ("/api", "/fhir")
    )


def _html_error(request: Request, status: int, title: str, detail: str) -> Response:
    templates = request.app.state.templates
    response: Response = templates.TemplateResponse(
        request, "error.html", {"status": status, "title": title, "detail": detail}, status_code=status
    )
    return response


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json (or an error page)."""

    @app.exception_handler(RhipError)
    async def _domain(request: Request, exc: RhipError) -> Response:
        if exc.status in AUDITED and not getattr(request.state, "refusal_audited", False):
            await run_in_threadpool(audit_refusal, request, status=exc.status, code=exc.code)
        if _wants_html(request) and exc.status == 401 and request.method == "GET":
            # a person without a session goes to the sign-in page and comes back afterwards
            target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
            return RedirectResponse(f"/login?next={target}", status_code=303)
        if _wants_html(request):
            return _html_error(request, exc.status, exc.title, exc.detail)
        return _answer(request, exc.status, exc.title, exc.detail, code=exc.code, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        detail = "；".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
        return _answer(request, 422, "请求参数校验未通过", detail, code="request-invalid", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        title = _HTTP_TITLES.get(exc.status_code, "请求错误")
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 404:
            detail = f"路径不存在：{masking.mask_text(request.url.path)}"
        if _wants_html(request):
            return _html_error(request, exc.status_code, title, detail)
        return _answer(request, exc.status_code, title, detail, code=f"http-{exc.status_code}")

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _out_of_range(request: Request, exc: Exception) -> Response:
        # a number past what the database stores (an id above 2**63, offset=10**20): the input's fault
        log.info("value out of range", extra={"path": request.url.path, "error": type(exc).__name__})
        if _wants_html(request):
            return _html_error(request, 422, "数据校验未通过", "数值超出范围")
        return problem(
            422, "数据校验未通过", "请求中的数值超出范围", code="out-of-range", instance=_path(request)
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        # two requests raced to write the same unique thing (the services check first, so only a race
        # gets here): the loser's transaction was rolled back whole, and it is told so, not given a 500
        log.info("integrity conflict on %s: %s", _path(request), type(exc.orig).__name__)
        title, detail = "状态冲突", "数据已被另一请求同时修改（并发冲突），本次操作未生效，请刷新后重试"
        if _wants_html(request):
            return _html_error(request, 409, title, detail)
        return problem(409, title, detail, code="conflict-race", instance=_path(request))

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> Response:
        # the client closed the connection before its body arrived (a cancelled upload, a load generator
        # stopping): nothing was read, so nothing was done; the answer goes nowhere and it is not our error
        log.info("client disconnected before the request body arrived", extra={"path": _path(request)})
        return problem(400, "请求未完成", "客户端在请求体传完之前断开了连接", code="client-disconnected")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.url.path})
        if _wants_html(request):
            return _html_error(request, 500, "服务器内部错误", "请稍后再试；问题已记录。")
        return _answer(request, 500, "服务器内部错误", "请稍后再试；问题已记录。", code="internal")


def html_error_response(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """An HTML error page (for page routes)."""
    response = _html_error(request, status, title, detail)
    assert isinstance(response, HTMLResponse)
    return response
