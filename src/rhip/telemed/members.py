"""A centre's experts and doctors, and its case-discussion meetings and video lectures."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.errors import Invalid
from rhip.telemed.connections import institution
from rhip.telemed.limits import centre
from rhip.telemed.models import (
    Event,
    Member,
)
from rhip.telemed.tasks import get_request


def add_member(
    session: Session,
    *,
    centre_code: str,
    name: str,
    institution_code: str,
    role: str,
    joined_on: date,
    specialty: str | None = None,
) -> Member:
    """Register an expert or doctor with a centre."""
    centre(centre_code)
    institution(institution_code)
    if role not in ("expert", "doctor"):
        raise Invalid("角色应为 expert（专家）或 doctor（医生）", code="bad-role")
    m = Member(
        centre_code=centre_code,
        name=name,
        institution_code=institution_code,
        role=role,
        specialty=specialty,
        joined_on=joined_on,
    )
    session.add(m)
    session.flush()
    return m


def get_all_members(session: Session, *, centre_code: str, on: date | None = None) -> list[Member]:
    """A centre's experts and doctors (joined by a day)."""
    stmt = select(Member).where(Member.centre_code == centre_code).order_by(Member.role, Member.id)
    if on:
        stmt = stmt.where(Member.joined_on <= on)
    return list(session.scalars(stmt))


def add_event(
    session: Session,
    *,
    centre_code: str,
    kind: str,
    title: str,
    held_at: datetime,
    host: str | None = None,
    attendees: int = 0,
    case_ids: list[int] | None = None,
) -> Event:
    """Record a case-discussion meeting or a video lecture of a centre."""
    centre(centre_code)
    if kind not in ("meeting", "lecture"):
        raise Invalid("活动类型应为 meeting（病例讨论会议）或 lecture（视频讲座）", code="bad-kind")
    if not title.strip():
        raise Invalid("请填写活动主题", code="title-required")
    for cid in case_ids or []:
        if get_request(session, request_id=cid).centre_code != centre_code:
            raise Invalid(f"病例 {cid} 不属于该中心", code="bad-case")
    ev = Event(
        centre_code=centre_code,
        kind=kind,
        title=title.strip(),
        held_at=held_at,
        host=host,
        attendees=attendees,
        case_ids=case_ids,
    )
    session.add(ev)
    session.flush()
    return ev


def get_all_events(
    session: Session, *, centre_code: str, since: datetime | None = None, until: datetime | None = None
) -> list[Event]:
    """A centre's meetings and lectures in a window."""
    stmt = select(Event).where(Event.centre_code == centre_code).order_by(Event.held_at)
    if since:
        stmt = stmt.where(Event.held_at >= since)
    if until:
        stmt = stmt.where(Event.held_at < until)
    return list(session.scalars(stmt))
