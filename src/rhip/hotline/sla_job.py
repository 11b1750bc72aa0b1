"""The SLA job's statements: announce, with an event each, the marks (50% / 75% / 100% of the limit) that
open orders crossed since the last run. The entry point (jobs.py, the route) owns the transactions.

No order is written: an open order's level is derived from its marks when it is read (levels.py), so the job
writes only the notifications — per run, one event per order at the highest mark it crossed (an order that
crossed every mark at once gets one `sla_breach`), and a level only when no event at that level or above
exists. The events are the record: a re-run, an overlapping run or a resumed run writes nothing twice.

Which orders to look at comes from the watermark, the instant of the last completed run
(`hotline_sla_runs`), less MARGIN (transactions that committed late): the orders whose mark fell after it —
a walk along the mark's index in (mark, id) order — and the orders touched since it (created, or moved back
into an open state, with marks that may lie before it) — a walk along (updated_at, id). Without a watermark
(the first run, or an instant before it) the first walk starts at the beginning. Each walk goes in chunks of
at most `limit` orders: on PostgreSQL one INSERT … SELECT per chunk, under an advisory lock so that two runs
at once take turns instead of both announcing, committed without waiting for the WAL flush (the run's own
record, committed durably after its chunks, makes them durable; a crash before it only means the next run
announces them again).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, insert, literal, or_, select, text, tuple_
from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.hotline import sla
from rhip.hotline.levels import level_case, level_filter, mark_of, open_level
from rhip.hotline.models import SlaRun, WorkOrder, WorkOrderEvent
from rhip.hotline.order_list import Count, count_capped
from rhip.security.roles import Role

JOB_SUBJECT = "sla-job"
CHUNK = 20_000  # orders per chunk (per transaction in a catch-up)
MARGIN = timedelta(
    hours=1
)  # how far before the watermark a run looks again (late commits; re-checks are free)
PASSES = ("breach", "warn75", "warn50")  # highest first: an order that crossed several marks gets one event
LOCK_KEY = 1_232_005_100  # PostgreSQL advisory lock: one chunk at a time across runs
EVENT_COLUMNS = ["order_id", "at", "actor", "role", "action", "from_state", "to_state", "note"]
Cursor = tuple[datetime, int]  # (walk key, order id) of the last order a chunk announced
# (level, walk, cursor) → (orders announced, cursor): one chunk, in whatever transaction the caller chose
Chunk = Callable[[str, str, Cursor | None], tuple[int, Cursor | None]]
# (level, orders announced so far in this pass, orders the pass had to announce when the run started)
Progress = Callable[[str, int, int], None]


def _t(at: datetime) -> Any:
    return literal(at, WorkOrder.due_at.type)


def window_start(session: Session, *, at: datetime) -> datetime | None:
    """Where a run at `at` starts looking: the last completed run's instant less MARGIN (None: from the
    start)."""
    last = session.scalar(select(SlaRun.at).order_by(SlaRun.id.desc()).limit(1))
    return None if last is None or last > at else last - MARGIN


def walks(lo: datetime | None) -> tuple[str, ...]:
    """The walks of each pass: the marks in the window, and (with a watermark) the orders touched since."""
    return ("marks",) if lo is None else ("marks", "touched")


def _announced(level: str) -> ColumnElement[bool]:
    above = [f"sla_{lv}" for lv in sla.LEVELS[sla.LEVELS.index(level) :]]
    return exists().where(WorkOrderEvent.order_id == WorkOrder.id, WorkOrderEvent.action.in_(above))


def _due(level: str, at: datetime) -> ColumnElement[bool]:
    """Open orders at `level` at `at` whose level has not been announced."""
    return and_(WorkOrder.state.in_(sla.OPEN_STATES), open_level(level, at), ~_announced(level))


def _walk(level: str, walk: str, lo: datetime | None) -> tuple[Any, list[ColumnElement[bool]]]:
    """The key a walk goes along and the part of the orders it covers."""
    mark = mark_of(level)
    if walk == "marks":
        return mark, [] if lo is None else [mark > _t(lo)]
    assert lo is not None
    return WorkOrder.updated_at, [WorkOrder.updated_at > _t(lo), mark <= _t(lo)]


def _event_row(order_id: Any, state: Any, level: str, at: datetime) -> Any:
    return select(
        order_id,
        _t(at),
        literal(JOB_SUBJECT),
        literal(Role.admin.value),
        literal(f"sla_{level}"),
        state,
        state,
        literal(sla.LEVEL_LABELS[level]),
    )


def notify_chunk(
    session: Session,
    *,
    level: str,
    at: datetime,
    lo: datetime | None,
    walk: str,
    after: Cursor | None = None,
    limit: int = CHUNK,
) -> tuple[int, Cursor | None]:
    """Announce at most `limit` orders at `level` (the next ones of a walk after `after`), an event each; how
    many, and the cursor for the next chunk. Fewer than `limit` means the walk is done."""
    key, window = _walk(level, walk, lo)
    q = select(WorkOrder.id.label("id"), WorkOrder.state.label("state"), key.label("k"))
    q = q.where(_due(level, at), *window)
    if after is not None:
        q = q.where(tuple_(key, WorkOrder.id) > tuple_(_t(after[0]), literal(after[1], WorkOrder.id.type)))
    q = q.order_by(key, WorkOrder.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        # the chunk need not wait for its WAL flush: a chunk lost in a crash was not yet part of a completed
        # run (jobs.run_once records the run in a durable commit of its own, which flushes every chunk before
        # it), so the next run announces those orders again
        session.execute(
            text("SELECT pg_advisory_xact_lock(:k), set_config('synchronous_commit', 'off', true)"),
            {"k": LOCK_KEY},
        )
        # one statement: pick, log, and give back the count and the last picked (key, id) — the highest key
        # and the highest id at it, two aggregates (a window count and a sort cost 10% more)
        picked = q.cte("picked")
        logged = insert(WorkOrderEvent).from_select(
            EVENT_COLUMNS, _event_row(picked.c.id, picked.c.state, level, at).select_from(picked)
        )
        agg = select(func.count().label("n"), func.max(picked.c.k).label("k")).subquery("agg")
        last_id = select(func.max(picked.c.id)).where(picked.c.k == agg.c.k).scalar_subquery()
        row = session.execute(select(agg.c.n, agg.c.k, last_id).add_cte(logged.cte("logged"))).one()
        return (0, after) if not row[0] else (int(row[0]), (row[1], int(row[2])))
    # SQLite: one writer at a time, so the orders picked are the orders announced
    rows = session.execute(q).all()
    if not rows:
        return 0, after
    values = [dict(zip(EVENT_COLUMNS, _event_values(r.id, r.state, level, at), strict=True)) for r in rows]
    session.execute(insert(WorkOrderEvent), values)
    return len(rows), (rows[-1].k, int(rows[-1].id))


def _event_values(order_id: int, state: str, level: str, at: datetime) -> tuple[Any, ...]:
    return (
        order_id,
        at,
        JOB_SUBJECT,
        Role.admin.value,
        f"sla_{level}",
        state,
        state,
        sla.LEVEL_LABELS[level],
    )


def pending(session: Session, *, at: datetime, lo: datetime | None) -> dict[str, int]:
    """How many orders each pass will announce at `at` (for a run's progress bar)."""
    out = {}
    for level in PASSES:
        cond = _due(level, at)
        if lo is not None:
            cond = and_(cond, or_(mark_of(level) > _t(lo), WorkOrder.updated_at > _t(lo)))
        out[level] = int(session.scalar(select(func.count()).select_from(WorkOrder).where(cond)) or 0)
    return out


def run_walks(
    chunk: Chunk,
    *,
    lo: datetime | None,
    limit: int,
    once: bool = False,
    progress: Progress | None = None,
    todo: dict[str, int] | None = None,
) -> tuple[dict[str, int], bool]:
    """Every pass (breach, 75%, 50%) and its walks, chunk after chunk (`chunk` runs one); with `once`, one
    chunk of each walk. The orders announced per level, and whether work is left."""
    done = dict.fromkeys(PASSES, 0)
    more = False
    for level in PASSES:
        for walk in walks(lo):
            after = None
            while True:
                n, after = chunk(level, walk, after)
                done[level] += n
                if progress is not None:
                    progress(level, done[level], max((todo or {}).get(level, 0), done[level]))
                if n < limit:
                    break
                if once:
                    more = True
                    break
        if progress is not None:
            progress(level, done[level], done[level])
    return done, more


def record_run(session: Session, *, at: datetime, counts: dict[str, int]) -> None:
    """Note a completed run: its instant is the next run's watermark."""
    session.add(SlaRun(at=at, finished_at=now(), **{lv: counts.get(lv, 0) for lv in PASSES}))


def run_sla_step(
    session: Session, *, at: datetime | None = None, chunk: int | None = None
) -> tuple[dict[str, int], bool]:
    """A run in the caller's transaction; with `chunk`, at most one chunk of each walk (the next run goes on).
    The orders announced per level, and whether work is left (the run is recorded only when none is)."""
    t = at or now()
    lo = window_start(session, at=t)
    limit = chunk or CHUNK

    def one(level: str, walk: str, after: Cursor | None) -> tuple[int, Cursor | None]:
        return notify_chunk(session, level=level, at=t, lo=lo, walk=walk, after=after, limit=limit)

    done, more = run_walks(one, lo=lo, limit=limit, once=chunk is not None)
    if not more:
        record_run(session, at=t, counts=done)
    return done, more


def run_sla(session: Session, *, at: datetime | None = None, chunk: int | None = None) -> dict[str, int]:
    """A run in the caller's transaction (see `run_sla_step`); the orders announced per level."""
    return run_sla_step(session, at=at, chunk=chunk)[0]


def sla_summary(session: Session, *, at: datetime | None = None) -> dict[str, int]:
    """Open orders per SLA level at `at` (default now), counted exactly (for reports; pages use
    `sla_counts`)."""
    # counted over a subquery: grouping by the CASE itself would repeat its bound instants
    opened = select(level_case(at or now()).label("level")).where(WorkOrder.state.in_(sla.OPEN_STATES))
    levels = opened.subquery()
    rows = session.execute(select(levels.c.level, func.count()).group_by(levels.c.level))
    out = dict.fromkeys(sla.LEVELS, 0)
    out.update({str(k): int(v) for k, v in rows})
    return out


def sla_counts(session: Session) -> dict[str, Count]:
    """Open orders per SLA level now, for a page: each counted up to the list's cap (an index range scan)."""
    t = now()
    base = select(WorkOrder).where(WorkOrder.state.in_(sla.OPEN_STATES))
    return {lv: count_capped(session, base.where(level_filter(lv, t, sla.OPEN_STATES))) for lv in sla.LEVELS}
