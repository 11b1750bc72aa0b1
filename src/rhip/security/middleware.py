"""One pure-ASGI middleware for every response's security headers and the CSRF check.

Headers: a Content-Security-Policy without inline scripts, `X-Content-Type-Options: nosniff`,
`frame-ancestors 'none'` (and X-Frame-Options for old browsers), `Referrer-Policy`, `Cache-Control:
no-store` on every answer to a request that carried credentials (personal data) unless the route set its
own, and HSTS when the site is served over HTTPS (`RHIP_SECURE_COOKIES`).

CSRF: a state-changing request (POST, PUT, PATCH, DELETE) that is authenticated by the session cookie
only, and every sign-in or sign-up form (login CSRF), must come from our own pages: `Sec-Fetch-Site`
must be `same-origin` (or `none`: typed by the user) and `Origin`, when sent, must be this site. A
request with neither header is refused: every browser since 2020 sends at least `Origin` on a POST.
Bearer tokens and API keys are not sent by browsers on their own, so they need no check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
COOKIE_NAME = b"rhip_token"

Refusal = Callable[[Scope, str], Awaitable[None]]


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


class SecurityMiddleware:
    """Security headers on every response; CSRF refusal (403 problem+json) before the app runs."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        https: bool = False,
        trusted_origins: Iterable[str] = (),
        login_paths: Iterable[str] = (),
        on_refusal: Refusal | None = None,
    ) -> None:
        self.app = app
        self.trusted = frozenset(o.rstrip("/").lower() for o in trusted_origins)
        self.login_paths = frozenset(login_paths)
        self.on_refusal = on_refusal
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"content-security-policy", CSP.encode()),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if https:
            common.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        self.common = common

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        credentialed = False
        cookie_only = False
        for key, value in headers:
            if key in (b"authorization", b"x-api-key"):
                credentialed = True
                cookie_only = False
                break
            if key == b"cookie" and COOKIE_NAME in value:
                credentialed = cookie_only = True
        if scope["method"] not in SAFE_METHODS and (cookie_only or scope["path"] in self.login_paths):
            reason = self._cross_site(scope, headers)
            if reason:
                await self._refuse(scope, send, reason)
                return

        extra = self.common

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = list(message.get("headers", ()))
                out.extend(extra)
                if credentialed and _header(out, b"cache-control") is None:
                    out.append((b"cache-control", b"no-store"))
                message["headers"] = out
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _cross_site(self, scope: Scope, headers: list[tuple[bytes, bytes]]) -> str | None:
        """Why the request may come from another site, or None when it is our own page's."""
        site = _header(headers, b"sec-fetch-site")
        origin = _header(headers, b"origin")
        if site is not None and site not in (b"same-origin", b"none"):
            return f"Sec-Fetch-Site: {site.decode('latin-1')[:32]}"
        if origin is not None:
            text = origin.decode("latin-1").rstrip("/").lower()
            host = (_header(headers, b"host") or b"").decode("latin-1").lower()
            if text in self.trusted or (host and urlsplit(text).netloc == host and text != "null"):
                return None
            return "Origin 不是本站"
        if site is None:
            return "缺少 Origin 与 Sec-Fetch-Site"
        return None

    async def _refuse(self, scope: Scope, send: Send, reason: str) -> None:
        body = orjson.dumps(
            {
                "type": "https://rhip.example/problems/cross-site-request",
                "title": "无权访问",
                "status": 403,
                "detail": f"跨站请求被拒绝（{reason}）：请从本站页面提交",
                "code": "cross-site-request",
                "instance": scope["path"],
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    *self.common,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        if self.on_refusal is not None:
            await self.on_refusal(scope, "cross-site-request")
