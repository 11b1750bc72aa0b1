"""The toolkit every domain's pages share: render with the signed-in caller, a safe `next`, the
session cookie (set with the site's Secure setting, cleared with the token revoked), and one sign-in
with throttling and audit for the portal and the booking pages alike."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from rhip.errors import RhipError, TooManyRequests, Unauthorized
from rhip.security import masking, service as security, throttle
from rhip.security.deps import COOKIE, audit_refusal, client_context, principal_from_request, revocations
from rhip.security.models import User
from rhip.security.service import Principal


def current(request: Request) -> Principal | None:
    """The signed-in caller (cookie or header), or None: pages stay public."""
    try:
        return principal_from_request(request)
    except RhipError:
        return None


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A template with `me` (the caller) and the masking helpers in its context."""
    ctx = {"me": current(request), "mask_id": masking.mask_id, "mask_phone": masking.mask_phone, **context}
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, name, ctx, status_code=status
    )
    return response


def safe_next(value: str | None, *, default: str = "/", prefix: str = "/") -> str:
    """A same-site path to go to after sign-in (no scheme, host, `//`, backslash or control characters)."""
    if (
        value
        and value.startswith(prefix)
        and not value.startswith("//")
        and "//" not in value
        and "\\" not in value
        and all(c >= " " and c != "\x7f" for c in value)
        and len(value) <= 300
    ):
        return value
    return default


def back(url: str, msg: str) -> RedirectResponse:
    """A 303 to a page with a message shown on it."""
    sep = "&" if "?" in url else "?"
    return RedirectResponse(f"{url}{sep}msg={quote(msg)}", status_code=303)


def set_session(request: Request, response: Response, token: str, ttl: timedelta) -> None:
    """Put the token in the session cookie: HttpOnly, SameSite=Strict, Secure on an HTTPS site."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(ttl.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=bool(request.app.state.settings.secure_cookies),
        path="/",
    )


def end_session(request: Request, session: Session, response: Response) -> None:
    """Revoke the caller's token (if any) and clear the cookie."""
    principal = current(request)
    if principal is not None and principal.jti:
        with session.begin():
            security.revoke_token(session, principal)
            security.audit(
                session,
                actor=principal.subject,
                role=principal.role.value,
                institution_code=principal.institution_code,
                action="logout",
                **client_context(request),
            )
        revocations(request).add(principal.jti)
    response.delete_cookie(COOKIE, path="/", secure=bool(request.app.state.settings.secure_cookies))


def sign_in(
    request: Request, session: Session, *, username: str, password: str
) -> tuple[str, timedelta, User]:
    """Check a password under the throttle and issue a token; failures and lockouts are audited.

    Per account and per client address: past the free failures each further one locks the key for a
    doubling delay (429 with Retry-After); a locked key is refused before the password is checked.
    """
    settings = request.app.state.settings
    username = username.strip()[:64]
    ctx = client_context(request)
    addr = ctx["client_addr"] or "-"
    try:
        with session.begin():
            throttle.check(session, throttle.ACCOUNT, username)
            throttle.check(session, throttle.ADDRESS, addr)
    except TooManyRequests as exc:
        audit_refusal(request, status=429, code=exc.code)
        raise
    try:
        with session.begin():
            user = security.authenticate(session, username=username, password=password)
            throttle.clear(session, throttle.ACCOUNT, username)
            security.audit(
                session,
                actor=masking.mask_text(username),
                role=user.role,
                institution_code=user.institution_code,
                action="login",
                **ctx,
            )
    except (Unauthorized, RhipError) as exc:
        # the failure is counted and recorded in its own transaction, after the refused one rolled back
        with session.begin():
            locked = throttle.fail(session, throttle.ACCOUNT, username)
            locked_addr = throttle.fail(session, throttle.ADDRESS, addr)
            security.audit(
                session, actor=masking.mask_text(username), action="login", outcome="denied", **ctx
            )
            if locked or locked_addr:
                security.audit(
                    session,
                    actor=masking.mask_text(username),
                    action="login.lockout",
                    outcome="locked",
                    detail={"account": locked, "address": locked_addr},
                    **ctx,
                )
        raise exc from None
    ttl = timedelta(minutes=settings.token_ttl_minutes)
    token = security.issue_token(
        settings.resolved_secret_key,
        subject=user.username,
        role=user.role,
        institution_code=user.institution_code,
        ttl=ttl,
        name=user.display_name,
    )
    return token, ttl, user
