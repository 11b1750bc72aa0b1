"""Risk grading with the five colours (re-grading audited), 专案管理 follow-ups and the high-risk work
list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from rhip.errors import Conflict, Invalid
from rhip.mch import rules
from rhip.mch.common import Actor, get_pregnancy, today
from rhip.mch.models import (
    ACTIVE,
    COLOURS,
    DELIVERED,
    ORANGE,
    RED,
    CaseFollowUp,
    Pregnancy,
    RiskAssessment,
)
from rhip.security import service as security


def is_case(colour: str | None, purple: bool) -> bool:
    """Whether a grading puts the woman under 专案管理 (orange, red or purple)."""
    return purple or colour in (ORANGE, RED)


def follow_up_days(colour: str | None, purple: bool) -> int | None:
    """Days until the next follow-up of a case (the shortest rule that applies)."""
    days = [
        rules.FOLLOW_UP_DAYS[c] for c in (colour, "purple" if purple else None) if c in rules.FOLLOW_UP_DAYS
    ]
    return min(days) if days else None


def assess_risk(
    session: Session,
    *,
    actor: Actor,
    pregnancy_id: int,
    assessed_on: date,
    colour: str,
    purple: bool = False,
    factors: str = "",
    case_owner: str | None = None,
) -> RiskAssessment:
    """(Re-)grade a pregnancy's risk: keeps the previous colour, audits a change, opens or closes the case."""
    p = get_pregnancy(session, pregnancy_id=pregnancy_id)
    if p.status not in (ACTIVE, DELIVERED):
        raise Conflict("妊娠已终止或结案，不能再评估风险", code="pregnancy-not-active")
    if colour not in COLOURS:
        raise Invalid(
            f"风险颜色应为 green/yellow/orange/red 之一（紫色另用 purple 标记）：{colour}", code="bad-colour"
        )
    rules.check_not_future(assessed_on, today(), "评估日期")
    if assessed_on < p.registered_on:
        raise Invalid("评估日期早于建册日期", code="assessment-before-registration")
    owner = (case_owner or "").strip() or p.case_owner
    if is_case(colour, purple) and not owner:
        raise Invalid(
            "橙色、红色、紫色孕产妇须纳入专案管理：请指定专案管理责任人", code="case-owner-required"
        )
    previous = (p.colour, p.purple)
    a = RiskAssessment(
        pregnancy_id=p.id,
        assessed_on=assessed_on,
        colour=colour,
        purple=purple,
        previous_colour=p.colour,
        previous_purple=p.purple if p.colour else None,
        factors=factors,
        assessed_by=actor.name,
        institution_code=actor.institution_code or p.institution_code,
        reported=colour in (ORANGE, RED),
    )
    session.add(a)
    p.colour, p.purple = colour, purple
    if is_case(colour, purple):
        if not p.case_opened_on:
            p.case_opened_on = assessed_on
        p.case_owner = owner
        days = follow_up_days(colour, purple)
        p.next_follow_up_on = assessed_on + timedelta(days=days or 14)
    else:
        p.next_follow_up_on = None
    session.flush()
    if previous != (colour, purple):
        security.audit(
            session,
            actor=actor.name,
            role=actor.role,
            action="mch.risk.grade" if previous[0] is None else "mch.risk.regrade",
            target=f"mch_pregnancy:{p.id}",
            institution_code=actor.institution_code,
            detail={
                "from": previous[0],
                "from_purple": previous[1],
                "to": colour,
                "to_purple": purple,
                "assessment": a.id,
            },
        )
    return a


def record_follow_up(
    session: Session,
    *,
    actor: Actor,
    pregnancy_id: int,
    followed_on: date,
    method: str = "clinic",
    note: str = "",
    next_due_on: date | None = None,
) -> CaseFollowUp:
    """A follow-up of a case under 专案管理; sets the next due date (by colour unless given)."""
    p = get_pregnancy(session, pregnancy_id=pregnancy_id)
    if not is_case(p.colour, p.purple):
        raise Conflict("该孕产妇不在专案管理中（仅橙色、红色、紫色）", code="not-a-case")
    if method not in ("clinic", "phone", "home"):
        raise Invalid(
            f"随访方式应为 clinic（门诊）、phone（电话）或 home（入户）：{method}", code="bad-method"
        )
    rules.check_not_future(followed_on, today(), "随访日期")
    if followed_on < p.registered_on:
        raise Invalid("随访日期早于建册日期", code="follow-up-before-registration")
    due = next_due_on or followed_on + timedelta(days=follow_up_days(p.colour, p.purple) or 14)
    if due <= followed_on:
        raise Invalid("下次随访日期应晚于本次随访日期", code="bad-next-due")
    f = CaseFollowUp(
        pregnancy_id=p.id,
        followed_on=followed_on,
        method=method,
        note=note,
        next_due_on=due,
        recorded_by=actor.name,
    )
    session.add(f)
    p.next_follow_up_on = None if p.status != ACTIVE else due
    session.flush()
    return f


# ---------------------------------------------------------------- high-risk work


@dataclass(frozen=True)
class CaseRow:
    """One case of the high-risk work list."""

    pregnancy: Pregnancy
    due_on: date | None
    overdue_days: int

    @property
    def overdue(self) -> bool:
        """Whether the follow-up is past its due date."""
        return self.overdue_days > 0


def high_risk_cases(
    session: Session,
    *,
    on: date | None = None,
    district_code: str | None = None,
    institution_code: str | None = None,
    within_days: int = 7,
    only_due: bool = False,
) -> list[CaseRow]:
    """Orange, red and purple women under management: most overdue first, then by due date."""
    day = on or today()
    stmt = select(Pregnancy).where(
        Pregnancy.status.in_((ACTIVE, DELIVERED)),
        Pregnancy.next_follow_up_on.is_not(None),
        Pregnancy.maternal_death_on.is_(None),
        or_(Pregnancy.colour.in_((ORANGE, RED)), Pregnancy.purple.is_(True)),
    )
    if district_code:
        stmt = stmt.where(Pregnancy.district_code == district_code)
    if institution_code:
        stmt = stmt.where(Pregnancy.institution_code == institution_code)
    if only_due:
        stmt = stmt.where(Pregnancy.next_follow_up_on <= day + timedelta(days=within_days))
    rows = []
    for p in session.scalars(stmt.order_by(Pregnancy.next_follow_up_on, Pregnancy.id)):
        due = p.next_follow_up_on
        rows.append(CaseRow(pregnancy=p, due_on=due, overdue_days=max(0, (day - due).days) if due else 0))
    return rows


# ---------------------------------------------------------------- children
