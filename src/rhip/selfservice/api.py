"""Self-service JSON API, mounted at /api/v1/selfservice: terminals, their keys and status, transactions
posted by terminals (X-Terminal-Key) or by their institution (its uploader key), file imports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, File, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from rhip.db.engine import Database
from rhip.errors import Forbidden, Invalid
from rhip.security.deps import ROLES_ATTR, SessionDep, require
from rhip.security.roles import Role
from rhip.security.service import Principal
from rhip.selfservice import pgpost, service as svc
from rhip.selfservice.schemas import (
    ImportRead,
    LineErrorRead,
    TerminalCreate,
    TerminalKey,
    TerminalRead,
    TerminalStatus,
    TransactionCreate,
    TransactionRead,
)


@asynccontextmanager
async def _lifespan(_app: Any) -> AsyncIterator[None]:
    yield
    await pgpost.close_all()  # the transaction batcher's own PostgreSQL connections


router = APIRouter(lifespan=_lifespan)
MAX_FILE = 20 * 1024 * 1024


def terminal_or(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """Like require(): admits a terminal's own key (X-Terminal-Key, acting as its institution's uploader)
    or a bearer token / API key of the given roles."""
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
        return principal

    setattr(dependency, ROLES_ATTR, allowed)
    return dependency


Staff = Annotated[Principal, Depends(terminal_or(Role.uploader, Role.manager, Role.admin))]
Posters = Annotated[Principal, Depends(terminal_or(Role.uploader))]


def _terminal_read(t: svc.Terminal) -> TerminalRead:
    read = TerminalRead.model_validate(t)
    read.has_key = t.key_hash is not None
    return read


def _txn_read(t: svc.TerminalTransaction, code: str, replayed: bool = False) -> TransactionRead:
    return TransactionRead(
        id=t.id,
        terminal_code=code,
        txn_no=t.txn_no,
        kind=t.kind,
        occurred_at=t.occurred_at,
        amount_fen=t.amount_fen,
        amount=svc.fen_to_yuan(t.amount_fen) if t.amount_fen is not None else None,
        pay_method=t.pay_method,
        outcome=t.outcome,
        duration_ms=t.duration_ms,
        pages=t.pages,
        appointment_id=t.appointment_id,
        id_number=svc.mask_id(t.id_number),
        replayed=replayed,
    )


@router.get("/terminals", response_model=list[TerminalRead])
def list_terminals(
    session: SessionDep, actor: Staff, institution_code: str | None = None
) -> list[TerminalRead]:
    """Terminals: managers see every institution's, an institution its own."""
    if actor.role not in (Role.manager, Role.admin):
        institution_code = actor.institution_code
    with session.begin():
        return [_terminal_read(t) for t in svc.get_terminals(session, institution_code=institution_code)]


@router.post("/terminals", response_model=TerminalRead, status_code=201)
def create_terminal(body: TerminalCreate, session: SessionDep, actor: Staff) -> TerminalRead:
    """Register a terminal (managers anywhere, an institution at itself)."""
    svc.check_staff(actor, body.institution_code)
    if actor.via == "terminal":
        raise Forbidden("终端密钥不能登记终端", code="terminal-key")
    with session.begin():
        term = svc.create_terminal(session, **body.model_dump())
        return _terminal_read(term)


@router.post("/terminals/{code}/key", response_model=TerminalKey, status_code=201)
def issue_key(code: str, session: SessionDep, actor: Staff) -> TerminalKey:
    """A new key for a terminal, shown once (the previous key stops working)."""
    if actor.via == "terminal":
        raise Forbidden("终端密钥不能签发密钥", code="terminal-key")
    with session.begin():
        return TerminalKey(code=code, key=svc.issue_key(session, code=code, actor=actor))


@router.post("/terminals/{code}/status", response_model=TerminalRead)
def set_status(code: str, body: TerminalStatus, session: SessionDep, actor: Staff) -> TerminalRead:
    """Mark a terminal in use, faulty or removed."""
    with session.begin():
        return _terminal_read(svc.set_status(session, code=code, status=body.status, actor=actor, on=body.on))


def _answer(out: TransactionRead, created: bool) -> Response:
    # a Response, not the model: FastAPI would validate the model a second time (the route is hot)
    return Response(
        orjson.dumps(out.model_dump(mode="json")),
        status_code=201 if created else 200,
        media_type="application/json",
    )


@router.post("/transactions", response_model=TransactionRead, status_code=201)
async def post_transaction(body: TransactionCreate, request: Request, actor: Posters) -> Response:
    """Post one transaction; the same number posted again answers 200 with the first (idempotent)."""
    if body.amount is not None and body.amount_fen is not None:
        raise Invalid("amount 与 amount_fen 只能给一个", code="two-amounts")
    fen = svc.yuan_to_fen(body.amount) if body.amount is not None else body.amount_fen
    txn = svc.TxnIn(**body.model_dump(exclude={"terminal_code", "amount", "amount_fen"}), amount_fen=fen)
    db: Database = request.app.state.db
    if pgpost.batched(db):  # PostgreSQL: a plain transaction is queued on the event loop and sent in a batch
        term = svc.resolve_terminal_cached(actor=actor, terminal_code=body.terminal_code)
        values = svc.plain_row(term, txn) if term is not None else None
        if term is not None and values is not None:
            new_id = await pgpost.insert(db, pgpost.as_row(values))
            if new_id is not None:
                return _answer(_txn_read(svc.TerminalTransaction(id=new_id, **values), term.code), True)

    def post_alone() -> Response:
        with db.session() as session, session.begin():
            term = svc.resolve_terminal(session, actor=actor, terminal_code=body.terminal_code)
            posted = svc.post(session, terminal=term, txn=txn)
            return _answer(_txn_read(posted.txn, term.code, replayed=not posted.created), posted.created)

    return await run_in_threadpool(post_alone)


@router.post("/transactions/import", response_model=ImportRead)
async def import_transactions(
    session: SessionDep, actor: Posters, file: Annotated[UploadFile, File()]
) -> ImportRead:
    """Import a CSV file of transactions: good lines posted, bad lines answered with their line numbers."""
    raw = await file.read(MAX_FILE + 1)
    if len(raw) > MAX_FILE:
        raise Invalid("文件过大（至多 20 MB）", code="too-large")

    def run() -> ImportRead:
        with session.begin():
            r = svc.import_csv(session, raw=raw, actor=actor)
        return ImportRead(
            lines=r.lines,
            created=r.created,
            replayed=r.replayed,
            errors=[LineErrorRead(**e.__dict__) for e in r.errors],
        )

    return await run_in_threadpool(run)


@router.get("/transactions", response_model=list[TransactionRead])
def list_transactions(
    session: SessionDep, actor: Staff, terminal_code: str | None = None, limit: int = 100
) -> list[TransactionRead]:
    """The newest transactions (an institution sees its own, a terminal its own)."""
    inst = None if actor.role in (Role.manager, Role.admin) else actor.institution_code
    if actor.via == "terminal":
        terminal_code = actor.name
    with session.begin():
        rows = svc.get_transactions(
            session, terminal_code=terminal_code, institution_code=inst, limit=max(1, min(limit, 1000))
        )
        return [_txn_read(t, code) for t, code in rows]


@router.get("/kiosk/slots")
def kiosk_slots(session: SessionDep, actor: Posters) -> list[dict[str, object]]:
    """Today's places the public can still take at the caller's hospital (the kiosk's 当日挂号 list)."""
    if not actor.institution_code:
        raise Invalid("调用方不属于任何机构", code="no-institution")
    with session.begin():
        return svc.today_slots(session, hospital_code=actor.institution_code)
