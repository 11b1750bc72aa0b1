"""The SLA job's statements: raise open orders whose 50% / 75% / 100% marks have passed, an event per raised
order. The entry point (jobs.py, the route) owns the transactions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, literal, select, update
from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.hotline import sla
from rhip.hotline.models import WorkOrder, WorkOrderEvent
from rhip.hotline.orders import OPEN_STATES
from rhip.security.roles import Role
from rhip.security.service import Principal


def run_sla(session: Session, *, at: datetime | None = None) -> dict[str, int]:
    """Raise open orders' SLA levels whose marks have passed (an event per change); counts per new level."""
    t = at or now()
    counts: dict[str, int] = {}
    job = Principal(subject="sla-job", role=Role.admin)
    columns = ["order_id", "at", "actor", "role", "action", "from_state", "to_state", "note"]
    postgres = session.get_bind().dialect.name == "postgresql"
    for level, column, lower in (
        ("breach", WorkOrder.due_at, ("ok", "warn50", "warn75")),
        ("warn75", WorkOrder.warn75_at, ("ok", "warn50")),
        ("warn50", WorkOrder.warn50_at, ("ok",)),
    ):
        cond = and_(WorkOrder.sla_level.in_(lower), column <= t, WorkOrder.state.in_(OPEN_STATES))
        raise_ = update(WorkOrder).where(cond).values(sla_level=level, sla_checked_at=t)

        def event_row(order_id: Any, state: Any, level: str = level) -> Any:
            return select(
                order_id,
                literal(t, WorkOrder.due_at.type),
                literal(job.subject),
                literal(job.role.value),
                literal(f"sla_{level}"),
                state,
                state,
                literal(sla.LEVEL_LABELS[level]),
            )

        if postgres:  # one scan: the UPDATE's RETURNING feeds the events (a data-modifying WITH)
            raised = raise_.returning(WorkOrder.id, WorkOrder.state).cte("raised")
            logged = (
                insert(WorkOrderEvent)
                .from_select(columns, event_row(raised.c.id, raised.c.state).select_from(raised))
                .returning(WorkOrderEvent.order_id)
                .cte("logged")
            )
            counted = select(func.count()).select_from(logged).add_cte(raised).add_cte(logged)
            counts[level] = int(session.scalar(counted) or 0)
            continue
        events = event_row(WorkOrder.id, WorkOrder.state).where(cond)
        session.execute(insert(WorkOrderEvent).from_select(columns, events))
        result = session.execute(raise_.execution_options(synchronize_session=False))
        counts[level] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    session.expire_all()  # orders loaded before the run see their new levels
    return counts


def sla_summary(session: Session) -> dict[str, int]:
    """Open orders per SLA level."""
    rows = session.execute(
        select(WorkOrder.sla_level, func.count())
        .where(WorkOrder.state.in_(OPEN_STATES))
        .group_by(WorkOrder.sla_level)
    )
    out = dict.fromkeys(sla.LEVELS, 0)
    out.update({str(k): int(v) for k, v in rows})
    return out
