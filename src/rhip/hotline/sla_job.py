"""The SLA job's statements: raise open orders whose 50% / 75% / 100% marks have passed, an event per raised
order. The entry point (jobs.py, the route) owns the transactions.

The work comes in bounded chunks (`raise_chunk`: at most `limit` orders of one level, one statement on
PostgreSQL), so a catch-up after an outage, when a million orders cross their marks at once, is many short
transactions rather than one holding a million row locks. A chunk raises only orders still below the level
whose mark has passed, so a run stopped half-way resumes where it stopped and re-running changes nothing.
Passes run breach first: an order that crossed every mark goes straight to breach, one event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, insert, literal, select, update
from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.hotline import sla
from rhip.hotline.models import WorkOrder, WorkOrderEvent
from rhip.hotline.order_list import Count, count_capped
from rhip.hotline.orders import OPEN_STATES
from rhip.security.roles import Role

JOB_SUBJECT = "sla-job"
CHUNK = 20_000  # orders per transaction in a catch-up
EVENT_COLUMNS = ["order_id", "at", "actor", "role", "action", "from_state", "to_state", "note"]
# level → (the mark that raises it, the levels below it); in the order the passes run
PASSES: dict[str, tuple[Any, tuple[str, ...]]] = {
    "breach": (WorkOrder.due_at, ("ok", "warn50", "warn75")),
    "warn75": (WorkOrder.warn75_at, ("ok", "warn50")),
    "warn50": (WorkOrder.warn50_at, ("ok",)),
}


def _due(level: str, t: datetime) -> ColumnElement[bool]:
    mark, lower = PASSES[level]
    return and_(WorkOrder.sla_level.in_(lower), mark <= t, WorkOrder.state.in_(OPEN_STATES))


def pending(session: Session, *, at: datetime) -> dict[str, int]:
    """How many orders each pass will raise at `at` (each order counted once, at the highest mark it
    passed): the total of a run, for its progress bar."""
    nxt = {"warn75": WorkOrder.due_at, "warn50": WorkOrder.warn75_at}
    out = {}
    for level in PASSES:
        cond = _due(level, at)
        if level in nxt:
            cond = and_(cond, nxt[level] > at)
        out[level] = int(session.scalar(select(func.count()).select_from(WorkOrder).where(cond)) or 0)
    return out


def _event_row(order_id: Any, state: Any, level: str, t: datetime) -> Any:
    return select(
        order_id,
        literal(t, WorkOrder.due_at.type),
        literal(JOB_SUBJECT),
        literal(Role.admin.value),
        literal(f"sla_{level}"),
        state,
        state,
        literal(sla.LEVEL_LABELS[level]),
    )


def raise_chunk(session: Session, *, level: str, at: datetime, limit: int = CHUNK) -> int:
    """Raise at most `limit` open orders to `level` whose mark has passed, with an event each; how many.

    Fewer than `limit` means the pass is done. Rows another run holds are skipped, not waited for.
    """
    cond = _due(level, at)
    picked = select(WorkOrder.id).where(cond).limit(limit)
    raise_ = update(WorkOrder).values(sla_level=level, sla_checked_at=at)
    if session.get_bind().dialect.name == "postgresql":
        # one statement: pick (locking, skipping locked rows), raise (re-checking the condition), log, count
        chosen = picked.with_for_update(skip_locked=True).cte("picked")
        raised = (
            raise_.where(WorkOrder.id.in_(select(chosen.c.id)), cond)
            .returning(WorkOrder.id, WorkOrder.state)
            .cte("raised")
        )
        logged = (
            insert(WorkOrderEvent)
            .from_select(
                EVENT_COLUMNS, _event_row(raised.c.id, raised.c.state, level, at).select_from(raised)
            )
            .returning(WorkOrderEvent.order_id)
            .cte("logged")
        )
        counted = select(func.count()).select_from(logged).add_cte(chosen).add_cte(raised).add_cte(logged)
        n = int(session.scalar(counted) or 0)
    else:  # SQLite: one writer at a time, so the ids picked are the ids raised
        ids = list(session.scalars(picked))
        for i in range(0, len(ids), 500):
            part = WorkOrder.id.in_(ids[i : i + 500])
            events = _event_row(WorkOrder.id, WorkOrder.state, level, at).where(part)
            session.execute(insert(WorkOrderEvent).from_select(EVENT_COLUMNS, events))
            session.execute(raise_.where(part).execution_options(synchronize_session=False))
        n = len(ids)
    session.expire_all()  # orders loaded before see their new levels
    return n


def run_sla(session: Session, *, at: datetime | None = None, chunk: int | None = None) -> dict[str, int]:
    """Every pass in the caller's transaction; with `chunk`, at most that many orders per level (the next run
    goes on). The number of orders raised to each level."""
    t = at or now()
    counts: dict[str, int] = {}
    for level in PASSES:
        counts[level] = 0
        while True:
            n = raise_chunk(session, level=level, at=t, limit=chunk or CHUNK)
            counts[level] += n
            if chunk is not None or n < CHUNK:
                break
    return counts


def sla_summary(session: Session) -> dict[str, int]:
    """Open orders per SLA level, counted exactly (for the job's report; pages use `sla_counts`)."""
    rows = session.execute(
        select(WorkOrder.sla_level, func.count())
        .where(WorkOrder.state.in_(OPEN_STATES))
        .group_by(WorkOrder.sla_level)
    )
    out = dict.fromkeys(sla.LEVELS, 0)
    out.update({str(k): int(v) for k, v in rows})
    return out


def sla_counts(session: Session) -> dict[str, Count]:
    """Open orders per SLA level for a page: each counted up to the list's cap (an index-only scan)."""
    base = select(WorkOrder).where(WorkOrder.state.in_(OPEN_STATES))
    return {level: count_capped(session, base.where(WorkOrder.sla_level == level)) for level in sla.LEVELS}
