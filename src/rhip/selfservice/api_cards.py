"""Electronic health card API, mounted at /api/v1/cards: a resident's card and codes, and code resolution
by institutions and terminals (every resolution audited, refusals too)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from rhip.db.engine import Database
from rhip.errors import RhipError
from rhip.security import masking
from rhip.security.deps import SessionDep, require
from rhip.security.masking import Kind, Masker
from rhip.security.roles import Role
from rhip.security.service import Principal, audit
from rhip.selfservice import service as svc
from rhip.selfservice.api_common import audited_read, terminal_or
from rhip.selfservice.schemas import HealthCardCreate, HealthCardRead, ResolveRead, ResolveRequest

router = APIRouter()
Resident = Annotated[Principal, Depends(require(Role.resident))]
Resolvers = Annotated[Principal, Depends(terminal_or(Role.uploader, Role.doctor, Role.agent))]


def _secret(request: Request) -> str:
    return str(request.app.state.settings.resolved_secret_key)


def card_read(card: svc.HealthCard, secret: str) -> HealthCardRead:
    """The card with a fresh dynamic code."""
    code, expires = svc.dynamic_code(card, secret=secret)
    return HealthCardRead(
        card_id=card.card_id,
        name=card.name,
        id_number=masking.mask_id(card.id_number) or "",  # the card's face, even to its holder
        status=card.status,
        static_code=svc.static_code(card),
        dynamic_code=code,
        dynamic_expires_at=expires,
        person_id=card.person_id,
    )


@router.post("/health-card", response_model=HealthCardRead, status_code=201)
def claim_card(
    body: HealthCardCreate, request: Request, session: SessionDep, actor: Resident
) -> HealthCardRead:
    """The signed-in resident's electronic health card (created on first request, real name)."""
    with session.begin():
        card = svc.issue_health_card(session, id_number=actor.subject, name=body.name)
        audited_read(session, actor, "card.read", card.card_id)
        return card_read(card, _secret(request))


@router.get("/health-card", response_model=HealthCardRead)
def my_card(request: Request, session: SessionDep, actor: Resident) -> HealthCardRead:
    """The resident's card with a fresh dynamic code (valid 60 seconds, usable once)."""
    with session.begin():
        card = svc.get_health_card(session, id_number=actor.subject)
        audited_read(session, actor, "card.read", card.card_id)
        return card_read(card, _secret(request))


@router.post("/resolve", response_model=ResolveRead)
def resolve(body: ResolveRequest, request: Request, session: SessionDep, actor: Resolvers) -> ResolveRead:
    """Resolve a scanned code to the person (audited); refused when forged, expired or replayed."""
    try:
        full = Masker(actor, "card").shows(Kind.id_number)  # the terminal's and the doctor's
        with session.begin():
            r = svc.resolve(
                session,
                code=body.code,
                actor=actor,
                secret=_secret(request),
                second_factor=body.second_factor,
                channel=body.channel,
                id_shown="full" if full else "masked",
            )
        return ResolveRead(
            card_id=r.card_id,
            name=r.name,
            id_number=r.id_number if full else masking.mask_id(r.id_number) or "",
            person_id=r.person_id,
            code_kind=r.code_kind,
            channel=r.channel,
        )
    except RhipError as exc:
        db: Database = request.app.state.db
        with db.session() as s, s.begin():  # the refusal is recorded even though the request failed
            audit(
                s,
                actor=actor.subject,
                role=actor.role.value,
                action="card.resolve",
                outcome="refused",
                institution_code=actor.institution_code,
                detail={"code": exc.code},
            )
        raise
