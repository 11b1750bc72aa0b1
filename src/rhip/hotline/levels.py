"""An order's SLA level in SQL, derived from its marks and an instant when it is read: the SQL form of the
rule `sla.level_at` / `WorkOrder.level_at` (nothing stores an open order's level, so nothing has to keep
it fresh).

An open order is at `level` when that level's mark has passed and the next one has not: a range on the
marks. Every condition also bounds `due_at` (the list's order), so the list's level filter is an index range
scan on the deadline: breach is `due_at <= t`, every other level `due_at > t`. An order whose clock stopped
(replied, closed) keeps the level it stopped at (`sla_stopped_level`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, literal, or_, true

from rhip.hotline import sla
from rhip.hotline.models import WorkOrder

MARK_COLUMNS: dict[str, Any] = {
    "due_at": WorkOrder.due_at,
    "warn75_at": WorkOrder.warn75_at,
    "warn50_at": WorkOrder.warn50_at,
}


def mark_of(level: str) -> Any:
    """The column whose passing raises an order to `level` (not for ok)."""
    return MARK_COLUMNS[sla.MARKS[level]]


def _at(t: datetime) -> Any:
    return literal(t, WorkOrder.due_at.type)


def open_level(level: str, t: datetime) -> ColumnElement[bool]:
    """An open order is at `level` at instant `t` (the order's state is not checked here)."""
    conds = []
    if level != "ok":
        conds.append(mark_of(level) <= _at(t))
    nxt = sla.next_mark(level)
    if nxt is not None:
        conds.append(MARK_COLUMNS[nxt] > _at(t))
    if level not in ("breach", "warn75"):  # the deadline bound that makes it a range on the list's index
        conds.append(WorkOrder.due_at > _at(t))
    return and_(*conds)


def level_branches(level: str, t: datetime, states: Collection[str] | None) -> list[ColumnElement[bool]]:
    """Orders at `level` at instant `t`, for a query already restricted to `states` (None: any state), as
    disjoint conditions each of which one index serves in deadline order: the running orders by their marks
    (the list's deadline index), the stopped ones by the level they stopped at (its own list index). An OR
    of the two would be a sequential scan."""
    opened = open_level(level, t)
    if states is not None and set(states) <= set(sla.OPEN_STATES):
        return [opened]
    stopped = WorkOrder.sla_stopped_level == level
    if states is not None and not set(states) & set(sla.OPEN_STATES):
        return [stopped]
    # a breach is always in the past, whether the clock still runs or stopped after it: keep the range
    bound = WorkOrder.due_at <= _at(t) if level == "breach" else true()
    return [and_(WorkOrder.state.in_(sla.OPEN_STATES), opened), and_(bound, stopped)]


def level_filter(level: str, t: datetime, states: Collection[str] | None) -> ColumnElement[bool]:
    """Orders at `level` at instant `t` as one condition (for counts over the open states)."""
    return or_(*level_branches(level, t, states))


def level_case(t: datetime) -> ColumnElement[str]:
    """Every order's SLA level at instant `t`, as a column (for counting by level)."""
    running = case(*((mark_of(level) <= _at(t), literal(level)) for level in sla.MARKS), else_=literal("ok"))
    stopped = case((WorkOrder.sla_stopped_level.is_(None), literal("ok")), else_=WorkOrder.sla_stopped_level)
    return case((WorkOrder.state.in_(sla.OPEN_STATES), running), else_=stopped)
