"""The work-order list: filtered, in deadline order, paged by keyset (a cursor after the last row, never an
OFFSET), with a count that stays cheap at a million orders.

The count is exact up to COUNT_CAP; beyond it the page says "1,000+" and, on PostgreSQL, gives the planner's
estimate labelled as such (`estimated`): counting every open order of a million would cost more than the page.
Each filter leads one covering index (models.WorkOrder), so the page and the capped count are index scans.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, literal, or_, select, tuple_
from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.errors import Forbidden, Invalid
from rhip.hotline import sla
from rhip.hotline.levels import level_branches
from rhip.hotline.models import WorkOrder
from rhip.hotline.orders import OPEN_STATES, READERS, STATES
from rhip.security.roles import Role
from rhip.security.service import Principal

COUNT_CAP = 1_000  # counted exactly up to here; beyond, "1,000+" and the planner's estimate


@dataclass
class Count:
    """How many orders match: exact when `capped` is false; otherwise at least COUNT_CAP, with the database's
    estimate where it has one (PostgreSQL)."""

    value: int
    capped: bool = False
    estimate: int | None = None

    @property
    def label(self) -> str:
        """As a page shows it: "123", "1,000+", or "1,000+（估算约 12,345）"."""
        if not self.capped:
            return f"{self.value:,}"
        est = f"（估算约 {self.estimate:,}）" if self.estimate is not None else ""
        return f"{self.value:,}+{est}"


@dataclass
class OrderPage:
    """A page of orders, the cursor for the next page (None at the end) and the count (first page only)."""

    items: list[WorkOrder]
    next_cursor: str | None
    count: Count | None


def encode_cursor(order: WorkOrder) -> str:
    """The position after an order in deadline order, as an opaque URL-safe string."""
    raw = f"{order.due_at.isoformat()}|{order.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """(due_at, id) from a cursor, or Invalid."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        due, _sep, ident = raw.partition("|")
        at = datetime.fromisoformat(due)
        if at.tzinfo is None:
            raise ValueError("naive")
        return at, int(ident)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise Invalid("翻页位置无效，请从第一页重新开始", code="bad-cursor") from None


def filtered_orders(
    actor: Principal,
    *,
    state: str | None,
    source: str | None,
    institution_code: str | None,
    sla_level: str | None,
    open_only: bool,
) -> list[Select[Any]]:
    """The orders the caller may see with the list's filters (unordered, unpaged), as disjoint queries each
    served by one index in deadline order (two when an SLA level is asked over running and stopped orders)."""
    q = select(WorkOrder)
    if actor.role is Role.doctor:
        q = q.where(WorkOrder.institution_code == (actor.institution_code or ""))
    elif actor.role not in READERS:
        raise Forbidden("无权查看工单", code="not-allowed")
    states: tuple[str, ...] | None = None
    if state:
        if state not in STATES:
            raise Invalid(f"未知的工单状态：{state}", code="bad-state")
        q, states = q.where(WorkOrder.state == state), (state,)
    elif open_only:
        q, states = q.where(WorkOrder.state.in_(OPEN_STATES)), OPEN_STATES
    if source:
        q = q.where(WorkOrder.source == source)
    if institution_code:
        q = q.where(WorkOrder.institution_code == institution_code)
    if sla_level:
        if sla_level not in sla.LEVELS:
            raise Invalid(f"未知的时限状态：{sla_level}", code="bad-sla-level")
        # derived from the marks as of now
        return [q.where(cond) for cond in level_branches(sla_level, now(), states)]
    return [q]


def _estimate(session: Session, q: Select[Any]) -> int | None:
    """The PostgreSQL planner's row estimate for a query (from its statistics; no rows are read)."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return None
    compiled = q.compile(dialect=bind.dialect, compile_kwargs={"render_postcompile": True})
    plan = session.connection().exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled.string}", compiled.params)
    return int(plan.scalar_one()[0]["Plan"]["Plan Rows"])


def count_capped(session: Session, q: Select[Any], cap: int = COUNT_CAP, key: Any = WorkOrder.id) -> Count:
    """The rows of a query (over the table of `key`, its primary key) counted up to `cap` (an index-only scan
    with the list's indexes); beyond, the planner's estimate beside it, never below the cap."""
    ids = q.with_only_columns(key).order_by(None)
    n = int(session.scalar(select(func.count()).select_from(ids.limit(cap + 1).subquery())) or 0)
    if n <= cap:
        return Count(n)
    est = _estimate(session, ids)
    return Count(cap, capped=True, estimate=None if est is None else max(est, cap + 1))


def _sum(counts: Iterable[Count]) -> Count:
    """Counts of disjoint branches added (capped when any is)."""
    parts = list(counts)
    if len(parts) == 1:
        return parts[0]
    total = sum(c.value for c in parts)
    if not any(c.capped for c in parts):
        return Count(total)
    est = [c.estimate if c.capped else c.value for c in parts]
    return Count(total, capped=True, estimate=None if None in est else sum(e or 0 for e in est))


def get_all_orders(
    session: Session,
    *,
    actor: Principal,
    state: str | None = None,
    source: str | None = None,
    institution_code: str | None = None,
    sla_level: str | None = None,
    open_only: bool = False,
    limit: int = 50,
    cursor: str | None = None,
    with_count: bool = True,
) -> OrderPage:
    """A page of the orders the caller may see, most urgent deadline first (institution staff see their own);
    the count comes with the first page only (no cursor)."""
    branches = filtered_orders(
        actor,
        state=state,
        source=source,
        institution_code=institution_code,
        sla_level=sla_level,
        open_only=open_only,
    )
    count = _sum(count_capped(session, q) for q in branches) if with_count and cursor is None else None
    limit = min(max(1, limit), 200)
    rows: list[WorkOrder] = []
    for q in branches:  # each branch's next page in deadline order, then the branches merged
        if cursor is not None:
            due, ident = decode_cursor(cursor)
            after = tuple_(literal(due, WorkOrder.due_at.type), literal(ident, WorkOrder.id.type))
            q = q.where(tuple_(WorkOrder.due_at, WorkOrder.id) > after)
        rows.extend(session.scalars(q.order_by(WorkOrder.due_at, WorkOrder.id).limit(limit + 1)))
    if len(branches) > 1:
        rows.sort(key=lambda o: (o.due_at, o.id))
    more = len(rows) > limit
    rows = rows[:limit]
    return OrderPage(rows, encode_cursor(rows[-1]) if more else None, count)


def search_orders(session: Session, *, text: str, limit: int = 20) -> list[WorkOrder]:
    """Orders whose number, 12345 number or title contains the text."""
    like = f"%{text.strip()}%"
    q = select(WorkOrder).where(
        or_(WorkOrder.number.like(like), WorkOrder.external_no.like(like), WorkOrder.title.like(like))
    )
    return list(session.scalars(q.order_by(WorkOrder.id.desc()).limit(limit)))
