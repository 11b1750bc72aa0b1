"""Self-service JSON API, mounted at /api/v1/selfservice: terminals, their keys and status, the transactions
list, file imports (the single post, the hot route, is in api_txn.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile
from starlette.concurrency import run_in_threadpool

from rhip.errors import Forbidden, Invalid
from rhip.security.deps import SessionDep
from rhip.security.roles import Role
from rhip.selfservice import service as svc
from rhip.selfservice.api_common import Posters, Staff, audited_read, txn_json
from rhip.selfservice.schemas import (
    ImportRead,
    LineErrorRead,
    TerminalCreate,
    TerminalKey,
    TerminalRead,
    TerminalStatus,
    TransactionRead,
)

router = APIRouter()
MAX_FILE = 20 * 1024 * 1024


def _row_json(t: svc.TerminalTransaction, code: str) -> dict[str, object]:
    values = {c.name: getattr(t, c.name) for c in svc.TerminalTransaction.__table__.c}
    return txn_json(values, txn_id=t.id, terminal_code=code, replayed=False)


def _terminal_read(t: svc.Terminal) -> TerminalRead:
    read = TerminalRead.model_validate(t)
    read.has_key = t.key_hash is not None
    return read


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
        # the rows carry (masked) ID numbers of the residents who registered or paid: a read, recorded
        audited_read(session, actor, "selfservice.transactions.read", terminal_code or inst, rows=len(rows))
        return [TransactionRead.model_validate(_row_json(t, code)) for t, code in rows]


@router.get("/kiosk/slots")
def kiosk_slots(session: SessionDep, actor: Posters) -> list[dict[str, object]]:
    """Today's places the public can still take at the caller's hospital (the kiosk's 当日挂号 list)."""
    if not actor.institution_code:
        raise Invalid("调用方不属于任何机构", code="no-institution")
    with session.begin():
        return svc.today_slots(session, hospital_code=actor.institution_code)
