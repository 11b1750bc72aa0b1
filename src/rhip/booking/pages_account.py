"""Booking sign-in and real-name registration pages (Chinese): the throttled sign-in that sets the
rhip_token cookie, sign-up with a code texted to the phone the platform holds, and sign-out."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from rhip.booking import accounts, service as svc
from rhip.booking.pages import render, safe_next
from rhip.errors import RhipError
from rhip.security import pagekit, realname, service as security, throttle
from rhip.security.deps import SessionDep, client_context, public

router = APIRouter(include_in_schema=False)


@router.get("/booking/login", response_class=HTMLResponse, dependencies=[Depends(public())])
def login_page(
    request: Request,
    next: Annotated[str | None, Query(max_length=200)] = None,
    msg: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """Sign in, or register with a real name (身份证号码 + 姓名 + 密码)."""
    return render(request, "booking/login.html", {"next": safe_next(next), "msg": msg})


@router.post("/booking/login", dependencies=[Depends(public())])
def login(
    request: Request,
    session: SessionDep,
    id_number: Annotated[str, Form(max_length=32)],
    password: Annotated[str, Form(max_length=128)],
    next: Annotated[str, Form(max_length=200)] = "/booking/me",
) -> Response:
    """Check the password (the portal's one throttled sign-in) and set the token cookie."""
    target = safe_next(next)
    try:
        username = svc.person_id(id_number)
    except RhipError:
        username = id_number  # refused like any wrong password: the answer does not say why
    try:
        token, ttl, _user = pagekit.sign_in(request, session, username=username, password=password)
    except RhipError as exc:
        return pagekit.back(f"/booking/login?next={quote(target)}", exc.detail)
    response = RedirectResponse(target, status_code=303)
    pagekit.set_session(request, response, token, ttl)
    return response


@router.post("/booking/register", response_class=HTMLResponse, dependencies=[Depends(public())])
def register(
    request: Request,
    session: SessionDep,
    id_number: Annotated[str, Form(max_length=32)],
    name: Annotated[str, Form(min_length=2, max_length=32)],
    phone: Annotated[str, Form(max_length=20)],
    password: Annotated[str, Form(max_length=128)],
    next: Annotated[str, Form(max_length=200)] = "/booking/me",
) -> Response:
    """Real-name sign-up, step 1: a code goes to the phone the platform holds for that person."""
    secret = request.app.state.settings.resolved_secret_key
    addr = client_context(request)["client_addr"] or "-"
    try:
        with session.begin():
            throttle.check(session, throttle.SIGNUP_ADDRESS, addr)
        with session.begin():
            throttle.fail(session, throttle.SIGNUP_ADDRESS, addr)
            signup = accounts.register_resident(
                session, id_number=id_number, name=name, phone=phone, password=password, secret=secret
            )
    except RhipError as exc:
        return pagekit.back(f"/booking/login?next={quote(safe_next(next))}", exc.detail)
    return _verify_page(request, signup.id, safe_next(next), realname.ACCEPTED)


def _verify_page(request: Request, signup_id: str, target: str, msg: str, status: int = 200) -> HTMLResponse:
    return render(
        request, "booking/verify.html", {"signup_id": signup_id, "next": target, "msg": msg}, status
    )


@router.post("/booking/register/verify", response_class=HTMLResponse, dependencies=[Depends(public())])
def register_verify(
    request: Request,
    session: SessionDep,
    signup_id: Annotated[str, Form(max_length=64)],
    code: Annotated[str, Form(max_length=8)],
    next: Annotated[str, Form(max_length=200)] = "/booking/me",
) -> Response:
    """Step 2: the code from the text message; right, the account exists and the resident is signed in."""
    settings = request.app.state.settings
    try:
        with session.begin():
            user = accounts.confirm_resident(
                session, signup_id=signup_id, code=code, secret=settings.resolved_secret_key
            )
    except RhipError as exc:  # the phone's cap of people
        return _verify_page(request, signup_id, safe_next(next), exc.detail, status=exc.status)
    if user is None:
        return _verify_page(request, signup_id, safe_next(next), realname.REFUSED, status=422)
    ttl = timedelta(minutes=settings.token_ttl_minutes)
    token = security.issue_token(
        settings.resolved_secret_key, subject=user.username, role="resident", ttl=ttl, name=user.display_name
    )
    response = RedirectResponse(safe_next(next), status_code=303)
    pagekit.set_session(request, response, token, ttl)
    return response


@router.post("/booking/register/resend", response_class=HTMLResponse, dependencies=[Depends(public())])
def register_resend(
    request: Request,
    session: SessionDep,
    signup_id: Annotated[str, Form(max_length=64)],
    next: Annotated[str, Form(max_length=200)] = "/booking/me",
) -> Response:
    """Text a new code (once a minute)."""
    with session.begin():
        realname.resend_code(
            session, signup_id=signup_id, secret=request.app.state.settings.resolved_secret_key
        )
    return _verify_page(request, signup_id, safe_next(next), realname.ACCEPTED)


@router.post("/booking/logout", dependencies=[Depends(public())])
def logout(request: Request, session: SessionDep) -> Response:
    """Sign out: the token is revoked and the cookie dropped."""
    response = RedirectResponse("/booking", status_code=303)
    pagekit.end_session(request, session, response)
    return response
