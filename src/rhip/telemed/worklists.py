"""Reading requests in bulk: searches, the centres' worklists (keyset pages of the open tasks), turnaround
figures and capped counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, text
from sqlalchemy.orm import Session

from rhip import clock
from rhip.errors import Invalid
from rhip.telemed.limits import centre, get_limits
from rhip.telemed.models import (
    OPEN_STATUSES,
    Request,
    TatLimit,
)
from rhip.telemed.workflow import LABELS, Tat, summarise

OPEN_SQL = text("telemed_requests.status IN ('requested', 'accepted', 'in_progress')")


@dataclass(frozen=True)
class WorkItem:
    """One open task on a centre's worklist (a row of WORK_COLUMNS), with its deadline and overdue flag."""

    request: Any
    due_at: datetime
    overdue: bool


# what a worklist row shows: read as plain rows (no ORM objects: a page of 50 cost more to build than to find)
WORK_COLUMNS = tuple(
    getattr(Request, c)
    for c in (
        "id", "centre_code", "service_type", "priority", "requester_code", "requester_name", "performer_code",
        "department", "patient_id_number", "patient_name", "patient_sex", "patient_birth_date", "person_id",
        "reason", "scheduled_at", "status", "status_reason", "assignee", "requested_at", "accepted_at",
        "started_at", "ended_at",
    )
)  # fmt: skip


def search_requests(
    session: Session,
    *,
    centre_code: str | None = None,
    requester_code: str | None = None,
    performer_code: str | None = None,
    statuses: list[str] | None = None,
    service_type: str | None = None,
    patient_id_number: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Request]:
    """Requests matching every given filter, newest first."""
    stmt: Select[tuple[Request]] = select(Request)
    if centre_code:
        centre(centre_code)
        stmt = stmt.where(Request.centre_code == centre_code)
    if requester_code:
        stmt = stmt.where(Request.requester_code == requester_code)
    if performer_code:
        stmt = stmt.where(Request.performer_code == performer_code)
    if statuses:
        bad = [s for s in statuses if s not in LABELS]
        if bad:
            raise Invalid(f"未知的任务状态：{'、'.join(bad)}", code="bad-status")
        stmt = stmt.where(Request.status.in_(statuses))
    if service_type:
        stmt = stmt.where(Request.service_type == service_type)
    if patient_id_number:
        stmt = stmt.where(Request.patient_id_number == patient_id_number.upper())
    if since:
        stmt = stmt.where(Request.requested_at >= since)
    if until:
        stmt = stmt.where(Request.requested_at < until)
    stmt = (
        stmt.order_by(Request.requested_at.desc(), Request.id.desc()).limit(min(limit, 1000)).offset(offset)
    )
    return list(session.scalars(stmt))


def worklist_query(
    *,
    centre_code: str,
    statuses: tuple[str, ...] = OPEN_STATUSES,
    service_type: str | None = None,
    limit: int = 50,
    after: tuple[datetime, int] | None = None,
) -> Select[Any]:
    """The worklist's SELECT: a range of the partial index of open tasks read in order (no sort, no
    closed task walked, no total counted), keyset-paged on (requested_at, id)."""
    # the open statuses as literal SQL: only then can SQLite and PostgreSQL prove the partial index applies
    in_states = OPEN_SQL if tuple(statuses) == OPEN_STATUSES else Request.status.in_(statuses)
    stmt = select(*WORK_COLUMNS).where(Request.centre_code == centre_code, in_states)
    if service_type:
        stmt = stmt.where(Request.service_type == service_type)
    if after:
        stmt = stmt.where(
            or_(
                Request.requested_at > after[0], and_(Request.requested_at == after[0], Request.id > after[1])
            )
        )
    return stmt.order_by(Request.requested_at, Request.id).limit(min(max(limit, 1), 500))


def worklist(
    session: Session,
    *,
    centre_code: str,
    statuses: tuple[str, ...] = OPEN_STATUSES,
    service_type: str | None = None,
    limit: int = 50,
    after: tuple[datetime, int] | None = None,
) -> list[WorkItem]:
    """A centre's open tasks, oldest first (keyset paging on requested_at, id), each with its deadline."""
    centre(centre_code)
    limits: dict[str, int] = {
        t: m
        for t, m in session.execute(
            select(TatLimit.service_type, TatLimit.limit_minutes).where(TatLimit.centre_code == centre_code)
        )
    }
    stmt = worklist_query(
        centre_code=centre_code, statuses=statuses, service_type=service_type, limit=limit, after=after
    )
    t = clock.now()
    out = []
    for req in session.execute(stmt):
        due = req.requested_at + timedelta(minutes=limits.get(req.service_type, 1440))
        out.append(WorkItem(request=req, due_at=due, overdue=due < t))
    return out


def tat(session: Session, *, centre_code: str | None, since: datetime, until: datetime) -> list[Tat]:
    """Turnaround (request to report, minutes) of the requests completed in [since, until), per type."""
    rows = session.execute(
        select(Request.centre_code, Request.service_type, Request.requested_at, Request.ended_at).where(
            Request.status == "completed",
            Request.ended_at >= since,
            Request.ended_at < until,
            *([Request.centre_code == centre_code] if centre_code else []),
        )
    ).all()
    durations: dict[tuple[str, str], list[float]] = {}
    for code, stype, start, end in rows:
        if end is not None:
            durations.setdefault((code, stype), []).append((end - start).total_seconds() / 60)
    out = []
    for lim in get_limits(session, centre_code=centre_code):
        mins = durations.get((lim.centre_code, lim.service_type), [])
        out.append(summarise(lim.centre_code, lim.service_type, lim.label, mins, lim.limit_minutes))
    return out


def overdue_open(session: Session, *, centre_code: str) -> int:
    """Open tasks past their deadline now."""
    n = 0
    t = clock.now()
    for lim in get_limits(session, centre_code=centre_code):
        n += (
            session.scalar(
                select(func.count()).where(
                    Request.centre_code == centre_code,
                    Request.service_type == lim.service_type,
                    Request.status.in_(OPEN_STATUSES),
                    Request.requested_at < t - timedelta(minutes=lim.limit_minutes),
                )
            )
            or 0
        )
    return n


COUNT_CAP = 1000


def open_counts(session: Session, *, centre_code: str, cap: int = COUNT_CAP) -> dict[str, int]:
    """Open tasks per state, each counted only up to cap + 1 (a worklist says "1000+", it never walks
    100,000 open tasks to print a number): index-only on (centre, status, requested_at)."""
    out = {}
    for st in OPEN_STATUSES:
        some = (
            select(Request.id)
            .where(Request.centre_code == centre_code, Request.status == st)
            .limit(cap + 1)
            .subquery()
        )
        out[st] = int(session.scalar(select(func.count()).select_from(some)) or 0)
    return out


def status_counts(session: Session, *, centre_code: str) -> dict[str, int]:
    """How many of a centre's requests stand in each state."""
    rows = session.execute(
        select(Request.status, func.count())
        .where(Request.centre_code == centre_code)
        .group_by(Request.status)
    ).all()
    counts = dict.fromkeys(LABELS, 0)
    counts.update({s: int(n) for s, n in rows})
    return counts
