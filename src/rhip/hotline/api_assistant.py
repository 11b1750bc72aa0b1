"""The assistant 宁宁's JSON API, mounted at /api/v1/assistant: open to everyone; a signed-in resident's own
appointments are looked up for them."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from rhip.errors import RhipError
from rhip.hotline import assistant
from rhip.hotline.schemas import ChatReply, ChatRequest
from rhip.security.deps import SessionDep, principal_from_request, public
from rhip.security.service import Principal

router = APIRouter()


def signed_in(request: Request) -> Principal | None:
    """The caller when signed in (token or cookie), else None: the chat is public."""
    try:
        return principal_from_request(request)
    except RhipError:
        return None


@router.post("/chat", response_model=ChatReply, dependencies=[Depends(public())])
def chat(body: ChatRequest, request: Request, session: SessionDep) -> ChatReply:
    """Ask 宁宁: crisis words always get the fixed 12356/120 answer and a human follow-up; unsure answers go
    to a human agent as a work order."""
    me = signed_in(request)
    with session.begin():
        return assistant.chat(
            session,
            message=body.message,
            conversation=body.conversation,
            actor=me,
            settings=request.app.state.settings,
        )
