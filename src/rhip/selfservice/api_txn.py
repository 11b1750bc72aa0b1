"""The terminals' write, POST /api/v1/selfservice/transactions — the domain's hot route.

Its own router, included by the web app near the front: FastAPI tries routes in order, one regular
expression each, and behind the other routers this route spent most of its CPU failing ~400 matches
(measured with pyinstrument: routing was ~3/4 of a transaction's time). The other self-service routes
are in api.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from rhip.db.engine import Database
from rhip.errors import Invalid
from rhip.selfservice import pgpost, service as svc
from rhip.selfservice.api_common import Posters, txn_json
from rhip.selfservice.schemas import TransactionCreate, TransactionRead


@asynccontextmanager
async def _lifespan(_app: Any) -> AsyncIterator[None]:
    yield
    await pgpost.close_all()  # the transaction batcher's own PostgreSQL connections


router = APIRouter(lifespan=_lifespan)


def _answer(body: dict[str, Any], created: bool) -> Response:
    # a Response, not the model: FastAPI would validate the answer a second time (the route is hot)
    return Response(orjson.dumps(body), status_code=201 if created else 200, media_type="application/json")


async def _body(request: Request) -> TransactionCreate:
    """The JSON body validated by the model in one step (pydantic parses the bytes itself); a bad body is
    FastAPI's own 422 (RequestValidationError, locations under "body"), as when FastAPI reads it."""
    raw = await request.body()
    if not raw:
        raise RequestValidationError([{"loc": ("body",), "msg": "Field required", "type": "missing"}])
    try:
        return TransactionCreate.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


# the body is read by _body, not by FastAPI's dependency solver (about a tenth of the route's CPU); the
# OpenAPI document still shows it
_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": TransactionCreate.model_json_schema()}},
    }
}


@router.post("/transactions", response_model=TransactionRead, status_code=201, openapi_extra=_BODY_DOC)
async def post_transaction(request: Request, actor: Posters) -> Response:
    """Post one transaction; the same number posted again answers 200 with the first (idempotent)."""
    body = await _body(request)
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
                return _answer(txn_json(values, txn_id=new_id, terminal_code=term.code, replayed=False), True)

    def post_alone() -> Response:
        with db.session() as session, session.begin():
            term = svc.resolve_terminal(session, actor=actor, terminal_code=body.terminal_code)
            posted = svc.post(session, terminal=term, txn=txn)
            out = txn_json(
                posted.values, txn_id=posted.txn_id, terminal_code=term.code, replayed=not posted.created
            )
            return _answer(out, posted.created)

    return await run_in_threadpool(post_alone)
