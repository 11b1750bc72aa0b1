"""The reminder job: for every case under 专案管理 whose follow-up is due within the lead time or overdue,
one reminder for its responsible doctor per case, kind and due date (running the job again adds nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.mch import service as svc
from rhip.mch.models import COLOUR_LABELS, Reminder

LEAD_DAYS = 3


@dataclass(frozen=True)
class RemindResult:
    """What one run of the job did."""

    due: int
    overdue: int
    already: int


def remind(session: Session, *, on: date | None = None, lead_days: int = LEAD_DAYS) -> RemindResult:
    """Write reminders for cases due within `lead_days` of `on` (kind due) or past due (kind overdue)."""
    day = on or svc.today()
    made = {"due": 0, "overdue": 0}
    already = 0
    for row in svc.high_risk_cases(session, on=day, within_days=lead_days, only_due=True):
        p, due = row.pregnancy, row.due_on
        assert due is not None
        kind = "overdue" if row.overdue else "due"
        exists = session.scalar(
            select(Reminder.id).where(
                Reminder.pregnancy_id == p.id, Reminder.kind == kind, Reminder.due_on == due
            )
        )
        if exists:
            already += 1
            continue
        colour = COLOUR_LABELS.get(p.colour or "", "") + ("、紫色" if p.purple else "")
        text = (
            f"{p.local_id}（{colour}）随访已逾期 {row.overdue_days} 天（应于 {due.isoformat()}）"
            if row.overdue
            else f"{p.local_id}（{colour}）应于 {due.isoformat()} 前随访"
        )
        session.add(
            Reminder(
                pregnancy_id=p.id,
                kind=kind,
                due_on=due,
                owner=p.case_owner,
                institution_code=p.institution_code,
                message=text,
            )
        )
        made[kind] += 1
    session.flush()
    return RemindResult(due=made["due"], overdue=made["overdue"], already=already)


def reminders_for(session: Session, *, institution_code: str, since: date | None = None) -> list[Reminder]:
    """An institution's reminders, newest first (the worker's inbox)."""
    stmt = select(Reminder).where(Reminder.institution_code == institution_code)
    if since:
        stmt = stmt.where(Reminder.due_on >= since - timedelta(days=30))
    return list(session.scalars(stmt.order_by(Reminder.id.desc()).limit(200)))
