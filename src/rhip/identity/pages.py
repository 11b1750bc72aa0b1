"""主索引 pages: the review queue (two records side by side, differing fields highlighted; merge or keep
apart), search, and a person with every linked record and its merge history. Managers decide; auditors
read. Every view is audited."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from rhip.errors import RhipError
from rhip.identity import fulllink, service as svc, steward
from rhip.security.deps import SessionDep, audit_read, require
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter(include_in_schema=False)
Viewers = Annotated[Principal, Depends(require(Role.manager, Role.auditor, Role.admin))]
Stewards = Annotated[Principal, Depends(require(Role.manager, Role.admin))]
FIELDS = [
    ("name", "姓名"),
    ("sex", "性别"),
    ("birth_date", "出生日期"),
    ("id_number", "身份证号码"),
    ("phone", "联系电话"),
    ("district", "现住址行政区划"),
    ("institution_code", "机构"),
    ("local_id", "机构内患者ID"),
    ("source", "来源"),
]
SEX = {"1": "男", "2": "女"}
BANDS = {"auto": "自动关联", "review": "待审核", "new": "新建"}


def _render(request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
    ctx = {"fields": FIELDS, "sex": SEX, "bands": BANDS, **context}
    response: HTMLResponse = request.app.state.templates.TemplateResponse(request, name, ctx)
    return response


def _back(url: str, msg: str) -> RedirectResponse:
    return RedirectResponse(f"{url}?msg={quote(msg)}", status_code=303)


@router.get("/identity", response_class=HTMLResponse)
def queue(
    request: Request,
    session: SessionDep,
    who: Viewers,
    q: Annotated[str | None, Query(max_length=40)] = None,
    msg: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """The review queue and the person search."""
    found, error = [], None
    with session.begin():
        counts = fulllink.counts(session)
        reviews = steward.get_reviews(session, limit=50)
        if q:
            try:
                found = svc.search_persons(session, q=q)
            except RhipError as exc:
                error = exc.detail
        audit_read(
            session,
            request,
            who,
            what="identity.page.queue",
            reviews=len(reviews),
            kind=svc.query_kind(q) if q else None,
            results=len(found),
        )
    can_decide = who.role in (Role.manager, Role.admin)
    return _render(
        request,
        "identity/queue.html",
        {
            "counts": counts,
            "reviews": reviews,
            "q": q or "",
            "found": found,
            "error": error,
            "msg": msg,
            "can_decide": can_decide,
        },
    )


@router.get("/identity/persons/{person_id}", response_class=HTMLResponse)
def person(
    person_id: str,
    request: Request,
    session: SessionDep,
    who: Viewers,
    msg: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """One person: the records linked to it and its merges."""
    with session.begin():
        p = svc.get_person(session, person_id=person_id)
        events = steward.events_of(session, person_id=person_id)
        audit_read(session, request, who, what="identity.page.person", target=person_id)
    can_decide = who.role in (Role.manager, Role.admin)
    return _render(
        request, "identity/person.html", {"p": p, "events": events, "msg": msg, "can_decide": can_decide}
    )


@router.post("/identity/reviews/{review_id}")
def decide(
    review_id: int,
    session: SessionDep,
    who: Stewards,
    decision: Annotated[str, Form(max_length=16)],
) -> RedirectResponse:
    """Merge or keep apart, from the queue page."""
    try:
        with session.begin():
            steward.decide(session, review_id=review_id, decision=decision, actor=who.subject)
    except RhipError as exc:
        return _back("/identity", exc.detail)
    return _back("/identity", f"审核项 {review_id} 已{'合并' if decision == 'merge' else '确认为不同的人'}")


@router.post("/identity/persons/{person_id}/unmerge")
def unmerge(person_id: str, session: SessionDep, who: Stewards) -> RedirectResponse:
    """Undo the latest merge into this person."""
    try:
        with session.begin():
            event = steward.unmerge(session, person_id=person_id, actor=who.subject)
    except RhipError as exc:
        return _back(f"/identity/persons/{person_id}", exc.detail)
    return _back(f"/identity/persons/{event.to_person_id}", "已撤销合并")
