"""The booking write of the JSON API, POST /api/v1/booking/appointments — the platform's hottest route.

Its own router, included by the web app first: FastAPI tries routes in order, one regular expression
each, and behind every other router this route cost ~50 failed matches per request (about a third of
a sold-out answer's CPU). The other booking routes are in api.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from rhip.booking import entry, pgbatch
from rhip.booking.api_common import Bookers, bookers
from rhip.booking.booker import default_tranche, refuse_from_memory
from rhip.booking.schemas import AppointmentCreate, AppointmentRead, appointment_fields
from rhip.booking.soldout import full_in_memory
from rhip.db.engine import Database
from rhip.errors import Invalid, RhipError
from rhip.security.roles import Role
from rhip.security.service import Principal


@asynccontextmanager
async def _lifespan(_app: Any) -> AsyncIterator[None]:
    yield
    await pgbatch.close_all()  # the booking route's own PostgreSQL connections


class _LeanRoute(APIRoute):
    """FastAPI's route, with a short path for a well-formed request; anything else is FastAPI's own.

    FastAPI's generic handler (body reading, content-type, the dependency solver, parameter checks)
    costs more CPU than a sold-out answer itself. A request with a JSON body and a valid Idempotency-Key
    header skips it: the same principal dependency (the route's only one) is awaited, a slot this
    process remembers full is refused from the raw body at once (refuse_if_sold_out: the request's own
    checks, without the body's model), else the same model validates the same body and the same endpoint runs.
    Any other request (bad JSON, other content type, invalid fields, a long key) goes through FastAPI,
    so every answer, 422s included, is what FastAPI gives.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The lean handler in front of FastAPI's."""
        standard = super().get_route_handler()
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            key = request.headers.get("idempotency-key")
            if request.headers.get("content-type") != "application/json" or (key and len(key) > 120):
                return await standard(request)
            try:
                raw = orjson.loads(await request.body())
            except orjson.JSONDecodeError:
                return await standard(request)  # FastAPI words the 422 (the body is cached)
            try:
                principal = await bookers(request)
                # sold out a moment ago: answered from the raw body, without the body's model
                refuse_if_sold_out(request, principal, raw, key)
            except RhipError as exc:
                return await _render(request, exc)
            try:
                body = AppointmentCreate.model_validate(raw)
            except ValidationError:
                return await standard(request)
            try:
                response: Response = await endpoint(
                    body=body, request=request, principal=principal, idempotency_key=key
                )
            except RhipError as exc:
                return await _render(request, exc)
            return response

        return handler


def _person(given: str | None, principal: Principal) -> str:
    """The person booked for: the one named, or the resident themself."""
    person = given or (principal.subject if principal.role is Role.resident else None)
    if person is None:
        raise Invalid("代他人预约时必须提供就诊人身份证号码 person_id", code="person-required")
    return person


_OPTIONAL_TEXT = ("person_id", "person_name", "channel", "tranche", "idempotency_key")


def refuse_if_sold_out(request: Request, principal: Principal, raw: Any, header_key: str | None) -> None:
    """Raise slot-full when this process remembers the slot's tranche full, from the raw JSON body, without
    the body's model: for a body whose fields have the model's types (anything else goes on to the model),
    the request's own checks first (person, not-self, channel, tranche: the same precise refusals), then
    the memory (a retry of one of the slot's bookings goes on, to be answered with its booking)."""
    if not isinstance(raw, dict) or type(raw.get("slot_id")) is not int:
        return
    if not all(isinstance(raw.get(f), str | None) for f in _OPTIONAL_TEXT):
        return
    key = raw.get("idempotency_key") or header_key
    if key is not None and len(key) > 120:
        return
    engine = request.app.state.db.engine
    tranche = raw.get("tranche") or default_tranche(principal)
    scoped = f"{principal.subject}:{key}" if key else None
    if not full_in_memory(id(engine), raw["slot_id"], tranche, scoped):
        return  # the common case: nothing remembered, nothing checked twice
    refuse_from_memory(
        engine,
        slot_id=raw["slot_id"],
        person=_person(raw.get("person_id"), principal),
        actor=principal,
        tranche=raw.get("tranche"),
        channel=raw.get("channel"),
        idempotency_key=key,
    )


async def _render(request: Request, exc: RhipError) -> Response:
    """A refusal (a sold-out answer above all) rendered by the app's own handler, here: the same
    problem+json, without the exception's trip through Starlette's handler wrappers."""
    render = request.app.exception_handlers.get(RhipError)
    if render is None:
        raise exc
    refused: Response = await render(request, exc)
    return refused


router = APIRouter(lifespan=_lifespan, route_class=_LeanRoute)


@router.post("/appointments", response_model=AppointmentRead, status_code=201)
async def create_appointment(
    body: AppointmentCreate,
    request: Request,
    principal: Bookers,
    idempotency_key: Annotated[str | None, Header(max_length=120)] = None,
) -> Response:
    """Book a place (real name). Residents book for themselves; agents, channels and doctors on behalf.

    409 names the rule that refuses it (slot-full, limit-daily, suspended, ...); a retried request with
    the same Idempotency-Key answers 200 with the first booking.
    """
    person = _person(body.person_id, principal)
    key = body.idempotency_key or idempotency_key
    person_name = body.person_name or (principal.name if principal.role is Role.resident else None)
    db: Database = request.app.state.db
    # the request's checks and the sold-out memory on the event loop (no thread, no database), then the
    # batched call (PostgreSQL) or the one-by-one write in a thread (SQLite): booking/entry.py
    answer, created = await entry.book(
        db,
        slot_id=body.slot_id,
        person=person,
        person_name=person_name,
        actor=principal,
        channel=body.channel,
        tranche=body.tranche,
        idempotency_key=key,
    )
    return _answer(appointment_fields(answer), created)


def _answer(fields: dict[str, Any], created: bool) -> Response:
    # a Response, not the model: FastAPI would validate the model again; orjson writes the same JSON
    return Response(orjson.dumps(fields), status_code=201 if created else 200, media_type="application/json")
