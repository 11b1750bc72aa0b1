"""What the self-service routers share: the terminal-key dependency and a transaction's JSON answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from rhip.db.engine import Database
from rhip.errors import Forbidden
from rhip.security import masking
from rhip.security.deps import ROLES_ATTR, require
from rhip.security.roles import Role
from rhip.security.service import Principal, audit
from rhip.selfservice import service as svc


def terminal_or(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """Like require(): admits a terminal's own key (X-Terminal-Key, acting as its institution's uploader)
    or a bearer token / API key of the given roles. A key verified a moment ago is checked against the
    worker's memory (its SHA-256, KEY_TTL), without the database."""
    allowed = frozenset(roles)
    standard = require(*roles)

    async def dependency(request: Request) -> Principal:
        key = request.headers.get("x-terminal-key")
        if not key:
            return await standard(request)
        principal = svc.verify_key_cached(key)
        if principal is None:
            db: Database = request.app.state.db

            def lookup() -> Principal:
                with db.session() as s:
                    return svc.verify_key(s, key)

            principal = await run_in_threadpool(lookup)
        if principal.role not in allowed:
            raise Forbidden("终端密钥无权访问此接口", code="role-forbidden")
        request.state.principal = principal
        return principal

    setattr(dependency, ROLES_ATTR, allowed)
    return dependency


Staff = Annotated[Principal, Depends(terminal_or(Role.uploader, Role.manager, Role.admin))]
Posters = Annotated[Principal, Depends(terminal_or(Role.uploader))]


def txn_json(values: dict[str, Any], *, txn_id: int, terminal_code: str, replayed: bool) -> dict[str, Any]:
    """A transaction as the API answers it (TransactionRead's fields; the ID number masked)."""
    fen = values["amount_fen"]
    return {
        "id": txn_id,
        "terminal_code": terminal_code,
        "txn_no": values["txn_no"],
        "kind": values["kind"],
        "occurred_at": values["occurred_at"],
        "amount_fen": fen,
        "amount": svc.fen_to_yuan(fen) if fen is not None else None,
        "pay_method": values["pay_method"],
        "outcome": values["outcome"],
        "duration_ms": values["duration_ms"],
        "pages": values["pages"],
        "appointment_id": values["appointment_id"],
        "id_number": masking.mask_id(values["id_number"]),
        "replayed": replayed,
    }


def audited_read(session: Session, actor: Principal, action: str, target: str | None, **detail: Any) -> None:
    """Record a read of personal data (who, role, institution, what; never the data itself)."""
    audit(session, actor=actor.subject, role=actor.role.value, action=action, target=target,
          institution_code=actor.institution_code, detail=detail or None)  # fmt: skip
