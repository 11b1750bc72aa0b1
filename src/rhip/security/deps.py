"""FastAPI dependencies: the database session and the caller's principal, checked against roles."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from rhip.db.engine import Database
from rhip.errors import Forbidden, Unauthorized
from rhip.security.roles import Role
from rhip.security.service import Principal, decode_token, verify_api_key

ROLES_ATTR = "__rhip_roles__"


def get_session(request: Request) -> Iterator[Session]:
    """A session on the app's database; the route opens the transaction."""
    db: Database = request.app.state.db
    with db.session() as session:
        yield session


# Routes take `session: SessionDep`: the session closes when the route function returns, before the
# response is sent, so a slow client never holds a pooled connection.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def principal_from_request(request: Request) -> Principal:
    """The authenticated caller (bearer token or X-API-Key), or Unauthorized."""
    header = request.headers.get("authorization", "")
    api_key = request.headers.get("x-api-key")
    secret: str = request.app.state.settings.resolved_secret_key
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization 头必须是 Bearer 令牌", code="bad-auth-header")
        return decode_token(secret, token.strip())
    if api_key:
        db: Database = request.app.state.db
        with db.session() as session:
            return verify_api_key(session, api_key)
    cookie = request.cookies.get("rhip_token")
    if cookie:
        return decode_token(secret, cookie)
    raise Unauthorized("需要登录：请提供 Bearer 令牌或 API 密钥", code="auth-required")


def require(*roles: Role) -> Callable[[Request], Principal]:
    """A dependency admitting only the given roles (401 without credentials, 403 for others)."""
    allowed = frozenset(roles)
    if not allowed:
        raise ValueError("require() needs at least one role")

    def dependency(request: Request) -> Principal:
        principal = principal_from_request(request)
        if principal.role not in allowed:
            names = "、".join(sorted(r.label for r in allowed))
            raise Forbidden(
                f"角色“{principal.role.label}”无权访问此接口；允许：{names}", code="role-forbidden"
            )
        return principal

    setattr(dependency, ROLES_ATTR, allowed)
    return dependency


def public() -> Callable[[], None]:
    """A marker dependency for routes anyone may call (so every route states its roles)."""

    def dependency() -> None:
        return None

    setattr(dependency, ROLES_ATTR, frozenset())
    return dependency


def declared_roles(endpoint_dependencies: list[Any]) -> frozenset[Role] | None:
    """The roles a route's dependencies declare, or None when it declares none."""
    for dep in endpoint_dependencies:
        roles = getattr(dep, ROLES_ATTR, None)
        if roles is not None:
            return frozenset(roles)
    return None
