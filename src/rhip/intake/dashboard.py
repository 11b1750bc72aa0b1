"""The intake dashboard's figures: records received per day of a month and the months that have uploads;
records per way in and rejections by rule of the receipts listed (the charts above them on /intake)."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip import months
from rhip.intake.models import IntakeBatch, IntakeDailyCount, IntakeProblem


def months_with_data(session: Session, *, institution_code: str | None = None) -> dict[str, int]:
    """Upload days per month with uploads, oldest first (rhip.months.latest picks the default)."""
    stmt = select(IntakeDailyCount.day).distinct()
    if institution_code:
        stmt = stmt.where(IntakeDailyCount.institution_code == institution_code)
    return months.count_days(session.scalars(stmt))


def per_day(session: Session, *, month: str, institution_code: str | None = None) -> dict[str, int]:
    """Records received on each day of the month (every day, zero included)."""
    first, last = months.day_bounds(month)
    stmt = (
        select(IntakeDailyCount.day, func.sum(IntakeDailyCount.received))
        .where(IntakeDailyCount.day >= first, IntakeDailyCount.day <= last)
        .group_by(IntakeDailyCount.day)
    )
    if institution_code:
        stmt = stmt.where(IntakeDailyCount.institution_code == institution_code)
    got: dict[date, int] = {d: int(n or 0) for d, n in session.execute(stmt)}
    return {
        (first + timedelta(days=i)).isoformat(): got.get(first + timedelta(days=i), 0)
        for i in range((last - first).days + 1)
    }


def per_channel(session: Session, *, batch_ids: list[str]) -> dict[str, int]:
    """Records received per way in (batch, realtime, fhir, cda) by these receipts."""
    rows = session.execute(
        select(IntakeBatch.channel, func.sum(IntakeBatch.received))
        .where(IntakeBatch.id.in_(batch_ids))
        .group_by(IntakeBatch.channel)
    )
    return {str(c): int(n or 0) for c, n in rows}


def rejections_by_rule(session: Session, *, batch_ids: list[str]) -> dict[str, int]:
    """Rejected records of these receipts per rule code, most first."""
    rows = session.execute(
        select(IntakeProblem.rule, func.count())
        .where(IntakeProblem.batch_id.in_(batch_ids))
        .group_by(IntakeProblem.rule)
    )
    return dict(sorted(((str(r), int(n)) for r, n in rows), key=lambda kv: -kv[1]))
