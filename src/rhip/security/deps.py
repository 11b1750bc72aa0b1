"""FastAPI dependencies: the database session and the caller's principal, checked against roles."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, TypedDict

import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from rhip.clock import now
from rhip.db.engine import Database
from rhip.errors import Forbidden, Unauthorized
from rhip.security import service as security
from rhip.security.roles import Role
from rhip.security.service import Principal, decode_token, verify_api_key

ROLES_ATTR = "__rhip_roles__"
log = logging.getLogger("rhip.security")


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session on the app's database; the route opens the transaction."""
    # async: creating a session does no I/O (it connects at its first statement), and a sync generator
    # would cost every request two extra trips through the thread pool
    db: Database = request.app.state.db
    session = db.session()
    try:
        yield session
    finally:
        if session.in_transaction():  # a transaction left open: its rollback talks to the database
            # on its own limiter: waiting for a request thread here, while holding a pooled connection
            # that those threads wait for, could deadlock under load
            await anyio.to_thread.run_sync(session.close, limiter=anyio.CapacityLimiter(1))
        else:
            session.close()


# Routes take `session: SessionDep`: the session closes when the route function returns, before the
# response is sent, so a slow client never holds a pooled connection.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


COOKIE = "rhip_token"


class Revocations:
    """Revoked token ids, read from the database at most once a second per worker (so a sign-out in one
    worker holds in every other within a second; the worker that signs out knows at once)."""

    REFRESH = 1.0
    FULL_RELOAD = 3600.0

    def __init__(self, db: Database) -> None:
        self.db = db
        self.jtis: set[str] = set()
        self.checked = 0.0
        self.loaded = 0.0
        self.since: datetime | None = None
        self.lock = threading.Lock()

    def add(self, jti: str) -> None:
        """Remember a token this worker revoked."""
        self.jtis.add(jti)

    def is_revoked(self, jti: str) -> bool:
        """Whether the token id was revoked."""
        t = time.monotonic()
        if t - self.checked > self.REFRESH and self.lock.acquire(blocking=False):
            # read in a thread of its own: this runs on the event loop, and waiting there for a pooled
            # connection that busy requests hold would stall every request of the worker
            self.checked = t
            threading.Thread(target=self._refresh_locked, args=(t,), daemon=True).start()
        return jti in self.jtis

    def _refresh_locked(self, t: float) -> None:
        try:
            self._refresh(t)
        except Exception:  # the database is away: keep what we know, try again in a second
            log.warning("revoked-token list not refreshed", exc_info=True)
        finally:
            self.lock.release()

    def refresh_now(self) -> None:
        """Read the list at once (start-up, tests)."""
        with self.lock:
            self._refresh(time.monotonic())

    def _refresh(self, t: float) -> None:
        full = t - self.loaded > self.FULL_RELOAD
        since = None if full or self.since is None else self.since - timedelta(seconds=5)
        with self.db.session() as session, session.begin():
            rows = security.revoked_since(session, since)
        if full:
            self.jtis = {jti for jti, _ in rows}
            self.loaded = t
        else:
            self.jtis.update(jti for jti, _ in rows)
        latest = max((at for _, at in rows), default=None)
        if latest is not None and (self.since is None or latest > self.since):
            self.since = latest
        elif self.since is None:
            self.since = now()


def revocations(request: Request) -> Revocations:
    """The app's revocation list (made on first use)."""
    state = request.app.state
    rev: Revocations | None = getattr(state, "revocations", None)
    if rev is None:
        rev = Revocations(state.db)
        state.revocations = rev
    return rev


def _checked(request: Request, principal: Principal) -> Principal:
    if principal.jti and revocations(request).is_revoked(principal.jti):
        raise Unauthorized("令牌已注销，请重新登录", code="token-revoked")
    request.state.principal = principal
    return principal


class ClientContext(TypedDict):
    """Where a request came from, as the audit log records it."""

    client_addr: str | None
    user_agent: str | None


def client_context(request: Request) -> ClientContext:
    """The caller's address and user agent, for the audit log (cut to the columns' sizes)."""
    client = request.client
    return {
        "client_addr": client.host[:64] if client else None,
        "user_agent": (request.headers.get("user-agent") or "")[:255] or None,
    }


def principal_from_request(request: Request) -> Principal:
    """The authenticated caller (bearer token, X-API-Key or the session cookie), or Unauthorized."""
    return _checked(request, _principal(request))


def _principal(request: Request) -> Principal:
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
    cookie = request.cookies.get(COOKIE)
    if cookie:
        return decode_token(secret, cookie)
    raise Unauthorized("需要登录：请提供 Bearer 令牌或 API 密钥", code="auth-required")


async def principal_async(request: Request) -> Principal:
    """The caller's principal without blocking the event loop: only API keys go to the thread pool."""
    # a token is checked in place (no I/O, ~20 µs); an API key is looked up in the database
    if request.headers.get("authorization") or not request.headers.get("x-api-key"):
        return principal_from_request(request)
    return await run_in_threadpool(principal_from_request, request)


def require(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency admitting only the given roles (401 without credentials, 403 for others)."""
    allowed = frozenset(roles)
    if not allowed:
        raise ValueError("require() needs at least one role")

    # async: a sync dependency would cost every request a round trip through the thread pool
    async def dependency(request: Request) -> Principal:
        principal = await principal_async(request)
        if principal.role not in allowed:
            names = "、".join(sorted(r.label for r in allowed))
            raise Forbidden(
                f"角色“{principal.role.label}”无权访问此接口；允许：{names}", code="role-forbidden"
            )
        return principal

    setattr(dependency, ROLES_ATTR, allowed)
    return dependency


def public() -> Callable[[], Awaitable[None]]:
    """A marker dependency for routes anyone may call (so every route states its roles)."""

    async def dependency() -> None:
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


# refusals written per client address and minute, per worker: a flood of bad tokens must not turn the
# audit log into the attacker's disk-filler (what is dropped is counted in the next row written)
REFUSALS_PER_MINUTE = 60
_refusals: dict[str, tuple[int, int, int]] = {}  # addr -> (minute, written, dropped)


def audit_refusal(request: Request, *, status: int, code: str) -> None:
    """Record a 401/403/429 with who (if known), their role and institution, address and user agent."""
    if getattr(request.state, "refusal_audited", False):
        return
    request.state.refusal_audited = True
    ctx = client_context(request)
    addr = ctx["client_addr"] or "-"
    minute = int(time.time() // 60)
    seen_minute, written, dropped = _refusals.get(addr, (minute, 0, 0))
    if seen_minute != minute:
        written = 0
    if written >= REFUSALS_PER_MINUTE:
        _refusals[addr] = (minute, written, dropped + 1)
        return
    if len(_refusals) > 10_000:
        _refusals.clear()
    _refusals[addr] = (minute, written + 1, 0)
    principal: Principal | None = getattr(request.state, "principal", None)
    detail: dict[str, Any] = {"status": status, "code": code[:64], "method": request.method}
    if dropped:
        detail["unrecorded_before"] = dropped
    db: Database = request.app.state.db
    with db.session() as session, session.begin():
        security.audit(
            session,
            actor=principal.subject if principal else "anonymous",
            role=principal.role.value if principal else None,
            institution_code=principal.institution_code if principal else None,
            action="refused",
            target=request.scope["path"][:255],
            outcome="denied",
            detail=detail,
            **ctx,
        )


def audit_read(
    session: Session,
    request: Request,
    principal: Principal,
    *,
    what: str,
    target: str | None = None,
    **detail: Any,
) -> None:
    """Record a read of personal data, action `read.<what>` (one row per request, in the route's
    transaction, so a read that fails writes none): who, role, institution, address, user agent.

    A resident's read is not recorded: the access checks let residents read only their own data."""
    if principal.role is Role.resident:
        return
    security.audit(
        session,
        actor=principal.subject,
        role=principal.role.value,
        institution_code=principal.institution_code,
        action=f"read.{what}"[:64],
        target=target,
        detail=detail or None,
        **client_context(request),
    )
