"""The record views' routes (GET /api/v1/records/me and /api/v1/records/{person_id}), in a router of their own
so the app matches them first: behind every other router a view paid ~0.5 ms of CPU in failed route matches
(web/app.py's ROUTERS). `/records/me` comes before `/records/{person_id}`, which would otherwise take "me"."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response

from rhip.records.api import Clinician, Day, Kinds, PersonId, Resident, _timeline, day_range
from rhip.records.schemas import TimelineRead
from rhip.security.deps import SessionDep

router = APIRouter()


@router.get("/records/me", response_model=TimelineRead, tags=["records"])
def my_record(
    session: SessionDep, principal: Resident, kind: Kinds = None, start: Day = None, end: Day = None
) -> Response:
    """My own record across institutions (实名注册居民)."""
    s, e = day_range(start, end)
    return _timeline(session, principal, None, kinds=kind, start=s, end=e)


@router.get("/records/{person_id}", response_model=TimelineRead, tags=["records"])
def person_record(
    person_id: PersonId,
    session: SessionDep,
    principal: Clinician,
    kind: Kinds = None,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    institution: Annotated[str | None, Query(max_length=32)] = None,
    with_reminders: Annotated[
        bool, Query(alias="reminders", description="同时返回智能提示（按同一批记录计算）")
    ] = False,
) -> Response:
    """A person's record across institutions, as far as consent allows (经患者授权); with `reminders=true`
    the smart reminders come in the same answer."""
    s, e = day_range(start, end)
    return _timeline(
        session,
        principal,
        person_id,
        with_reminders=with_reminders,
        kinds=kind,
        start=s,
        end=e,
        institution=institution,
    )
