"""The assistant 宁宁's JSON API, mounted at /api/v1/assistant: open to everyone; a signed-in resident's own
appointments are looked up for them."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

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
def chat(body: ChatRequest, request: Request, session: SessionDep) -> Response:
    """Ask 宁宁: crisis words always get the fixed 12356/120 answer and a human follow-up; unsure answers go
    to a human agent as a work order."""
    me = signed_in(request)
    with session.begin():
        reply = assistant.chat(
            session,
            message=body.message,
            conversation=body.conversation,
            actor=me,
            settings=request.app.state.settings,
        )
    # the reply is already a validated ChatReply: serialised once by pydantic-core, not validated again
    # against response_model (which stays for the OpenAPI schema)
    return Response(reply.model_dump_json(), media_type="application/json")
