"""Core JSON routes: health check, sign-in, the caller's identity, the audit log, API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import text

import rhip
from rhip.registry import service as registry
from rhip.security import masking, pagekit, service as security
from rhip.security.deps import SessionDep, public, require
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
    client_addr: str | None = None
    user_agent: str | None = None


class ApiKeyCreate(BaseModel):
    institution_code: str = Field(max_length=32)
    name: str = Field(max_length=128)


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


@router.post("/api/v1/auth/token", response_model=TokenRead, tags=["auth"], dependencies=[Depends(public())])
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=128)],
    session: SessionDep,
) -> TokenRead:
    """Exchange a username and password for a bearer token (OAuth2 password form); throttled."""
    token, ttl, user = pagekit.sign_in(request, session, username=username, password=password)
    return TokenRead(access_token=token, expires_in=int(ttl.total_seconds()), role=user.role)


@router.post("/api/v1/auth/logout", status_code=204, tags=["auth"])
def logout(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*Role))],
) -> Response:
    """Revoke the token this request carries (it is refused from now on, in every worker)."""
    response = Response(status_code=204)
    pagekit.end_session(request, session, response)
    return response


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
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> list[AuditRead]:
    """The audit log, newest first (auditors and admins); ID numbers in it are masked."""
    with session.begin():
        events = security.audit_events(session, limit=limit, offset=offset, action=action)
    out = []
    for e in events:
        row = AuditRead.model_validate(e, from_attributes=True)
        row.actor = masking.mask_text(row.actor)
        row.target = masking.mask_text(row.target) if row.target else None
        out.append(row)
    return out


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
