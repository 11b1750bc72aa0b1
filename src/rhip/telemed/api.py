"""Telemedicine JSON API, mounted at /api/v1/telemed: centres, connections and coverage, turnaround
limits, requests and their Task transitions, reports, worklists and TAT."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from rhip import clock
from rhip.errors import Forbidden, Invalid
from rhip.security import masking, service as security
from rhip.security.deps import SessionDep, public, require
from rhip.security.roles import Role
from rhip.security.service import Principal
from rhip.telemed import service as svc
from rhip.telemed.models import Request
from rhip.telemed.schemas import (
    ConnectionCreate,
    ConnectionRead,
    CoverageRead,
    DisconnectIn,
    HistoryRead,
    LimitRead,
    LimitUpdate,
    RequestCreate,
    RequestRead,
    TatRead,
    TransitionIn,
    status_label,
)

router = APIRouter()
SessionDep = SessionDep
Managers = Annotated[Principal, Depends(require(Role.manager, Role.admin))]
Clinicians = Annotated[Principal, Depends(require(Role.doctor, Role.family_doctor))]
Viewers = Annotated[Principal, Depends(require(Role.doctor, Role.family_doctor, Role.manager, Role.admin))]
STAFF = (Role.manager, Role.admin)


def month_window(month: str | None) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) of YYYY-MM in Nanjing time (default this month)."""
    try:
        if month:
            y, m = (int(x) for x in month.split("-"))
            first = date(y, m, 1)
        else:
            first = clock.local_now().date().replace(day=1)
    except ValueError:
        raise Invalid(f"月份格式应为 YYYY-MM：{month}", code="bad-month") from None
    nxt = (first + timedelta(days=32)).replace(day=1)
    start = datetime(first.year, first.month, 1, tzinfo=clock.SHANGHAI)
    return start, datetime(nxt.year, nxt.month, 1, tzinfo=clock.SHANGHAI)


# the request columns every reader gets as they are; the patient's are masked outside the care team
PLAIN = (
    "id", "centre_code", "service_type", "priority", "requester_code", "requester_name", "performer_code",
    "department", "patient_sex", "scheduled_at", "status", "status_reason", "assignee", "requested_at",
    "accepted_at", "started_at", "ended_at",
)  # fmt: skip


def request_dict(
    req: Any, *, full: bool, due_at: datetime | None = None, overdue: bool | None = None
) -> dict[str, Any]:
    """A request (ORM object or row) as the caller may see it: patient fields masked outside the care team."""
    out = {k: getattr(req, k) for k in PLAIN}
    out.update(
        patient_id_number=req.patient_id_number if full else masking.mask_id(req.patient_id_number),
        patient_name=req.patient_name if full else masking.mask_name(req.patient_name),
        patient_birth_date=req.patient_birth_date if full else None,
        person_id=req.person_id if full else None,
        reason=req.reason if full else None,
        status_label=status_label(req.status),
        due_at=due_at,
        overdue=overdue,
    )
    return out


def request_read(
    req: Request, *, full: bool, due_at: datetime | None = None, overdue: bool | None = None
) -> RequestRead:
    """A request as the caller may see it (see request_dict)."""
    return RequestRead(**request_dict(req, full=full, due_at=due_at, overdue=overdue))


def _visible(session: SessionDep, who: Principal, request_id: int) -> tuple[Request, bool]:
    """The request if the caller may see it, and whether they see the patient in full (audited)."""
    return svc.visible_request(session, request_id=request_id, who=who)


# ------------------------------------------------------------------ centres, connections, limits


@router.get(
    "/centres/{centre_code}/connections",
    response_model=list[ConnectionRead],
    dependencies=[Depends(public())],
)
def list_connections(session: SessionDep, centre_code: str, on: date | None = None) -> list[ConnectionRead]:
    """Institutions and sites connected to a centre on a day (default today)."""
    with session.begin():
        return [
            ConnectionRead.model_validate(c)
            for c in svc.get_all_connections(session, centre_code=centre_code, on=on)
        ]


@router.get("/centres/{centre_code}/coverage", response_model=CoverageRead, dependencies=[Depends(public())])
def get_coverage(session: SessionDep, centre_code: str, on: date | None = None) -> CoverageRead:
    """Connected totals by category, districts covered and not covered, cities."""
    with session.begin():
        cov = svc.coverage(session, centre_code=centre_code, on=on or clock.local_now().date())
    return cov


@router.post("/centres/{centre_code}/connections", response_model=ConnectionRead, status_code=201)
def create_connection(
    session: SessionDep, who: Managers, centre_code: str, body: ConnectionCreate
) -> ConnectionRead:
    """Connect an institution or site to a centre."""
    with session.begin():
        conn = svc.connect(session, centre_code=centre_code, **body.model_dump())
        security.audit(
            session,
            actor=who.subject,
            role=who.role.value,
            action="telemed.connect",
            target=f"{centre_code}:{conn.site_key}",
        )
        return ConnectionRead.model_validate(conn)


@router.post("/connections/{connection_id}/disconnect", response_model=ConnectionRead)
def disconnect(session: SessionDep, who: Managers, connection_id: int, body: DisconnectIn) -> ConnectionRead:
    """End a connection."""
    with session.begin():
        conn = svc.disconnect(session, connection_id=connection_id, on=body.on)
        security.audit(
            session,
            actor=who.subject,
            role=who.role.value,
            action="telemed.disconnect",
            target=str(connection_id),
        )
        return ConnectionRead.model_validate(conn)


@router.get("/limits", response_model=list[LimitRead], dependencies=[Depends(public())])
def list_limits(session: SessionDep, centre_code: str | None = None) -> list[LimitRead]:
    """Turnaround limits per centre and service type."""
    with session.begin():
        return [LimitRead.model_validate(x) for x in svc.get_limits(session, centre_code=centre_code)]


@router.put("/limits/{centre_code}/{service_type}", response_model=LimitRead)
def put_limit(
    session: SessionDep, who: Managers, centre_code: str, service_type: str, body: LimitUpdate
) -> LimitRead:
    """Set a service type's turnaround limit."""
    with session.begin():
        lim = svc.set_limit(
            session,
            centre_code=centre_code,
            service_type=service_type,
            label=body.label,
            limit_minutes=body.limit_minutes,
        )
        security.audit(
            session,
            actor=who.subject,
            role=who.role.value,
            action="telemed.limit",
            target=f"{centre_code}/{service_type}",
            detail={"minutes": body.limit_minutes},
        )
        return LimitRead.model_validate(lim)


# ------------------------------------------------------------------ requests and tasks


@router.post("/requests", response_model=RequestRead, status_code=201)
def create_request(session: SessionDep, who: Clinicians, body: RequestCreate) -> RequestRead:
    """File a request with a centre from the caller's institution."""
    if not who.institution_code:
        raise Forbidden("提交申请需要绑定所在机构的账号", code="no-institution")
    if body.requester_code and body.requester_code != who.institution_code:
        raise Forbidden("只能以本机构名义提交申请", code="other-institution")
    data = body.model_dump(exclude={"requester_code"})
    with session.begin():
        req = svc.create_request(session, requester_code=who.institution_code, actor=who.subject, **data)
        return request_read(req, full=True)


@router.get("/requests", response_model=list[RequestRead])
def list_requests(
    session: SessionDep,
    who: Viewers,
    centre_code: str | None = None,
    status: Annotated[list[str] | None, Query()] = None,
    service_type: str | None = None,
    month: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[RequestRead]:
    """Requests: a clinician sees their institution's (filed or performed), staff see all, masked."""
    since, until = month_window(month) if month else (None, None)
    with session.begin():
        common = dict(
            centre_code=centre_code,
            statuses=status,
            service_type=service_type,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
        if who.role in STAFF:
            full = svc.sees_patient(who)
            return [request_read(r, full=full) for r in svc.search_requests(session, **common)]  # type: ignore[arg-type]
        if not who.institution_code:
            return []
        mine = svc.search_requests(session, requester_code=who.institution_code, **common)  # type: ignore[arg-type]
        theirs = svc.search_requests(session, performer_code=who.institution_code, **common)  # type: ignore[arg-type]
        merged = {r.id: r for r in [*mine, *theirs]}
        rows = sorted(merged.values(), key=lambda r: (r.requested_at, r.id), reverse=True)[:limit]
        if rows:
            svc.audit_read(session, who=who, action="telemed.request.list", target=f"{len(rows)} requests")
        return [request_read(r, full=True) for r in rows]


@router.get("/requests/{request_id}", response_model=RequestRead)
def get_request(session: SessionDep, who: Viewers, request_id: int) -> RequestRead:
    """One request."""
    with session.begin():
        req, full = _visible(session, who, request_id)
        return request_read(req, full=full)


@router.get("/requests/{request_id}/history", response_model=list[HistoryRead])
def get_history(session: SessionDep, who: Viewers, request_id: int) -> list[HistoryRead]:
    """The Task's transitions."""
    with session.begin():
        _visible(session, who, request_id)
        return [HistoryRead.model_validate(h) for h in svc.get_history(session, request_id=request_id)]


@router.post("/requests/{request_id}/transition", response_model=RequestRead)
def post_transition(session: SessionDep, who: Clinicians, request_id: int, body: TransitionIn) -> RequestRead:
    """Accept, start, reject (the performing hub) or cancel (either side) a Task; illegal moves are 409."""
    with session.begin():
        req = svc.act(
            session,
            request_id=request_id,
            to=body.status,
            who=who,
            reason=body.reason,
            assignee=body.assignee,
        )
        return request_read(req, full=True)


@router.get("/centres/{centre_code}/worklist", response_model=list[RequestRead])
def get_worklist(
    session: SessionDep,
    who: Viewers,
    centre_code: str,
    service_type: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    after_time: datetime | None = None,
    after_id: int | None = None,
) -> Response:
    """A centre's open tasks, oldest first, with deadline and overdue flag (keyset paging: pass the last
    item's requested_at and id as after_time and after_id for the next page; no total is counted)."""
    hub = svc.centre(centre_code).hub_code
    if who.role not in STAFF and who.institution_code != hub:
        raise Forbidden("只有承担该中心业务的医院的医生可以查看工作列表", code="not-performer")
    after = (after_time, after_id) if after_time and after_id is not None else None
    full = who.role not in STAFF
    with session.begin():
        items = svc.worklist(
            session, centre_code=centre_code, service_type=service_type, limit=limit, after=after
        )
    if full and items:  # audited before anything is returned, in its own short write
        with svc.short_write(session):
            svc.audit_worklist(session, who=who, centre_code=centre_code, count=len(items))
    # rows straight to JSON (no ORM objects, no second validation against the response model)
    body = [request_dict(i.request, full=full, due_at=i.due_at, overdue=i.overdue) for i in items]
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/centres/{centre_code}/tat", response_model=list[TatRead])
def get_tat(session: SessionDep, who: Viewers, centre_code: str, month: str | None = None) -> list[TatRead]:
    """Turnaround per service type of the requests completed in a month: median, p90, limit, overdue."""
    since, until = month_window(month)
    with session.begin():
        svc.centre(centre_code)
        return [
            TatRead(
                centre_code=t.centre_code,
                service_type=t.service_type,
                label=t.label,
                count=t.count,
                median_minutes=t.median,
                p90_minutes=t.p90,
                limit_minutes=t.limit_minutes,
                overdue=t.overdue,
            )
            for t in svc.tat(session, centre_code=centre_code, since=since, until=until)
        ]
