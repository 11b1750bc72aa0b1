"""Identity JSON API, mounted at /api/v1/identity: search and read persons (masked by role), the review
queue, merge / separate decisions, unmerge, and linking a record. Every lookup is audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from rhip.errors import Forbidden
from rhip.identity import service as svc, steward
from rhip.identity.schemas import LinkResult, PersonRead, ReviewDecision, ReviewRead, UnmergeRequest
from rhip.security.deps import SessionDep, audit_read, require
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter()
STEWARDS = (Role.manager, Role.admin)
SEE_ALL = (Role.manager, Role.auditor, Role.admin)  # see names and ID numbers unmasked
LOOKERS = (*SEE_ALL, Role.doctor, Role.agent)  # doctors and hotline agents see them masked
Lookers = Annotated[Principal, Depends(require(*LOOKERS))]
Viewers = Annotated[Principal, Depends(require(*SEE_ALL))]
Stewards = Annotated[Principal, Depends(require(*STEWARDS))]
Linkers = Annotated[Principal, Depends(require(Role.uploader, Role.admin))]


def shown(person: PersonRead, who: Principal) -> PersonRead:
    """The person as this caller may see it (security.masking's "linkage" view)."""
    return svc.shown(person, who)


@router.get("/persons", response_model=list[PersonRead])
def search_persons(
    request: Request,
    session: SessionDep,
    who: Lookers,
    q: Annotated[str, Query(min_length=1, max_length=40, description="姓名、拼音或身份证号码")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[PersonRead]:
    """Persons by name, pinyin or ID number (masked for doctors and agents)."""
    with session.begin():
        found = svc.search_persons(session, q=q, limit=limit)
        audit_read(session, request, who, what="identity.search", kind=svc.query_kind(q), results=len(found))
    return [shown(p, who) for p in found]


@router.get("/persons/{person_id}", response_model=PersonRead)
def read_person(person_id: str, request: Request, session: SessionDep, who: Lookers) -> PersonRead:
    """One person with every linked record."""
    with session.begin():
        person = svc.get_person(session, person_id=person_id)
        audit_read(session, request, who, what="identity.person", target=person_id)
    return shown(person, who)


@router.post("/persons/{person_id}/unmerge", response_model=PersonRead)
def unmerge_person(
    person_id: str, session: SessionDep, who: Stewards, body: UnmergeRequest | None = None
) -> PersonRead:
    """Undo the latest merge into this person (or the given event); returns the person restored."""
    req = body or UnmergeRequest()
    with session.begin():
        event = steward.unmerge(
            session, person_id=person_id, actor=who.subject, event_id=req.event_id, reason=req.reason
        )
        return svc.get_person(session, person_id=event.to_person_id)


@router.get("/reviews", response_model=list[ReviewRead])
def list_reviews(
    request: Request,
    session: SessionDep,
    who: Viewers,
    status: Annotated[str, Query(pattern="^(open|merged|separated)$")] = "open",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[ReviewRead]:
    """The review queue (uncertain pairs), most probable first."""
    with session.begin():
        items = steward.get_reviews(session, status=status, limit=limit, offset=offset)
        audit_read(session, request, who, what="identity.reviews", status=status, results=len(items))
    return items


@router.post("/reviews/{review_id}", response_model=ReviewRead)
def decide_review(review_id: int, body: ReviewDecision, session: SessionDep, who: Stewards) -> ReviewRead:
    """A data steward's decision: merge (the record's person into the candidate) or separate."""
    with session.begin():
        return steward.decide(
            session, review_id=review_id, decision=body.decision, actor=who.subject, reason=body.reason
        )


@router.post("/link", response_model=LinkResult)
def link(body: svc.LinkRequest, session: SessionDep, who: Linkers) -> LinkResult:
    """Link one patient record now (an institution's own records only)."""
    if who.role == Role.uploader and who.institution_code != body.institution_code:
        raise Forbidden("只能关联本机构的患者记录", code="other-institution")
    with session.begin():
        return svc.link_record(session, **body.model_dump())
