"""Core JSON routes: health check, sign-in, the caller's identity, the audit log, API keys."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.orm import Session

import rhip
from rhip.errors import Unauthorized
from rhip.registry import service as registry
from rhip.security import service as security
from rhip.security.deps import SessionDep, public, require
from rhip.security.models import User
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter()


class Health(BaseModel):
    status: str
    version: str
    database: str


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str


class PrincipalRead(BaseModel):
    subject: str
    role: str
    role_label: str
    institution_code: str | None
    via: str


class AuditRead(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str | None
    institution_code: str | None
    action: str
    target: str | None
    outcome: str
    detail: dict[str, Any] | None


class ApiKeyCreate(BaseModel):
    institution_code: str
    name: str


class ApiKeyCreated(BaseModel):
    prefix: str
    institution_code: str
    name: str
    api_key: str


class Live(BaseModel):
    status: str
    version: str


_LIVE = Live(status="ok", version=rhip.__version__).model_dump_json().encode()


@router.get("/livez", response_model=Live, tags=["core"], dependencies=[Depends(public())])
async def livez() -> Response:
    """Liveness: the process answers (touches nothing else: the stack's trivial endpoint)."""
    return Response(_LIVE, media_type="application/json")


@router.get("/healthz", response_model=Health, tags=["core"], dependencies=[Depends(public())])
def healthz(session: SessionDep) -> Health:
    """Liveness and database reachability."""
    with session.begin():
        session.execute(text("SELECT 1"))
    return Health(status="ok", version=rhip.__version__, database=session.get_bind().dialect.name)


def sign_in(
    request: Request, session: Session, *, username: str, password: str
) -> tuple[str, timedelta, User]:
    """Check a password and issue a token (with its lifetime); a refusal is audited, then raised."""
    settings = request.app.state.settings
    try:
        with session.begin():
            user = security.authenticate(session, username=username, password=password)
    except Unauthorized:
        # the failed attempt is recorded in its own transaction, after the refused one rolled back
        with session.begin():
            security.audit(session, actor=username, action="login", outcome="denied")
        raise
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


@router.post("/api/v1/auth/token", response_model=TokenRead, tags=["auth"], dependencies=[Depends(public())])
def login(
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    session: SessionDep,
) -> TokenRead:
    """Exchange a username and password for a bearer token (OAuth2 password form)."""
    token, ttl, user = sign_in(request, session, username=username, password=password)
    return TokenRead(access_token=token, expires_in=int(ttl.total_seconds()), role=user.role)


@router.get("/api/v1/auth/me", response_model=PrincipalRead, tags=["auth"])
def me(principal: Annotated[Principal, Depends(require(*Role))]) -> PrincipalRead:
    """Who the credentials belong to."""
    return PrincipalRead(
        subject=principal.subject,
        role=principal.role.value,
        role_label=principal.role.label,
        institution_code=principal.institution_code,
        via=principal.via,
    )


@router.get("/api/v1/audit", response_model=list[AuditRead], tags=["audit"])
def audit_log(
    session: SessionDep,
    _p: Annotated[Principal, Depends(require(Role.auditor, Role.admin))],
    limit: int = 100,
    offset: int = 0,
    action: str | None = None,
) -> list[AuditRead]:
    """The audit log, newest first (auditors and admins)."""
    events = security.audit_events(
        session, limit=min(max(limit, 1), 1000), offset=max(offset, 0), action=action
    )
    return [AuditRead.model_validate(e, from_attributes=True) for e in events]


@router.post("/api/v1/auth/api-keys", response_model=ApiKeyCreated, status_code=201, tags=["auth"])
def create_api_key(
    body: ApiKeyCreate,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.admin, Role.manager))],
) -> ApiKeyCreated:
    """Issue an upload API key for an institution (shown once)."""
    with session.begin():
        inst = registry.get_institution(session, code=body.institution_code)
        key, plain = security.create_api_key(session, institution_code=inst.code, name=body.name)
        security.audit(
            session,
            actor=principal.subject,
            role=principal.role.value,
            action="api_key.issue",
            target=key.prefix,
            institution_code=inst.code,
        )
    return ApiKeyCreated(prefix=key.prefix, institution_code=inst.code, name=key.name, api_key=plain)
