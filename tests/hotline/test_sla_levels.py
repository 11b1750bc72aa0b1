"""SLA levels derived when read (the list, the counts, the API equal the rule) and the SLA job that only
announces: one event per crossed mark, idempotent, resumable, right for orders whose clock stopped."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip import clock
from rhip.clock import SHANGHAI
from rhip.db.engine import Database
from rhip.hotline import jobs, service as svc, sla
from rhip.hotline.models import WorkOrder, WorkOrderEvent
from tests.hotline.conftest import AGENT

Auth = Callable[..., dict[str, str]]
T = datetime(2023, 6, 15, 12, tzinfo=SHANGHAI)  # a Thursday; the orders below lie at every level by then


def _create(session: Session, received: datetime, tag: str) -> WorkOrder:
    """A complaint order (5 working days), created at the moment it was received."""
    with clock.frozen(received):
        return svc.create_order(
            session, actor=AGENT, source="wo_self", title=f"时限 {tag}", received_at=received
        )


def _act(session: Session, order_id: int, when: datetime, *actions: str) -> None:
    with clock.frozen(when):
        for action in actions:
            note = "已处理" if action == "reply" else ""
            svc.act(session, order_id=order_id, action=action, actor=AGENT, note=note)


def _sla_events(db: Database, order_id: int) -> list[str]:
    with db.session() as s:
        q = (
            select(WorkOrderEvent.action)
            .where(WorkOrderEvent.order_id == order_id, WorkOrderEvent.action.like("sla_%"))
            .order_by(WorkOrderEvent.id)
        )
        return list(s.scalars(q))


def _listed(session: Session, **shape: Any) -> list[WorkOrder]:
    """Every page of a list query, by cursor."""
    out: list[WorkOrder] = []
    cursor = None
    while True:
        page = svc.get_all_orders(session, actor=AGENT, limit=200, cursor=cursor, **shape)
        out += page.items
        cursor = page.next_cursor
        if cursor is None:
            return out


def _matches(order: WorkOrder, shape: dict[str, Any]) -> bool:
    if "state" in shape:
        return bool(order.state == shape["state"])
    return order.state in sla.OPEN_STATES if shape.get("open_only") else True


def test_levels_on_the_list_equal_the_rule(session: Session, client: TestClient, auth: Auth) -> None:
    tag = uuid.uuid4().hex[:8]
    with session.begin():
        ids = [_create(session, T - timedelta(days=d, hours=h), tag).id for d in range(10) for h in (0, 5)]
        # clocks stopped at different levels: replied early (ok), replied late (breach), closed in between
        _act(session, ids[-1], T - timedelta(days=9), "handle", "reply")
        _act(session, ids[-2], T - timedelta(hours=1), "handle", "reply")
        _act(session, ids[-3], T - timedelta(days=1, hours=6), "handle", "reply", "close")
    with clock.frozen(T), session.begin():
        mine = {o.id: o for o in session.scalars(select(WorkOrder).where(WorkOrder.id.in_(ids)))}
        rule = {i: o.level_at(T) for i, o in mine.items()}
        assert {rule[i] for i, o in mine.items() if o.state in sla.OPEN_STATES} == set(sla.LEVELS)
        assert [mine[i].sla_stopped_level for i in ids[-3:]] == ["warn75", "breach", "ok"]
        assert all(o.sla_level == rule[i] for i, o in mine.items())  # what the pages and the API show
        shapes: list[dict[str, Any]] = [{}, {"open_only": True}, {"state": "new"}, {"state": "replied"}]
        for shape in shapes:
            for level in sla.LEVELS:
                listed = _listed(session, sla_level=level, **shape)
                assert all(o.level_at(T) == level for o in listed), (shape, level)  # nothing else listed
                expected = {i for i, o in mine.items() if rule[i] == level and _matches(o, shape)}
                assert {o.id for o in listed} & set(mine) == expected, (shape, level)  # and nothing missed
        # the counts: exact per level over every open order, and the pages' capped counts
        opened = session.scalars(select(WorkOrder).where(WorkOrder.state.in_(sla.OPEN_STATES))).all()
        counted = Counter(o.level_at(T) for o in opened)
        assert svc.sla_summary(session, at=T) == {level: counted[level] for level in sla.LEVELS}
        capped = svc.sla_counts(session)
        assert all(c.capped or c.value == counted[level] for level, c in capped.items())
        # the API, as of the same instant
        headers = auth("agent")
        for level in sla.LEVELS:
            r = client.get(
                f"/api/v1/hotline/work-orders?sla_level={level}&open_only=true&limit=200", headers=headers
            )
            assert r.status_code == 200 and all(o["sla_level"] == level for o in r.json()["items"])
        bad = client.get("/api/v1/hotline/work-orders?sla_level=late", headers=headers)
        assert bad.status_code == 422 and bad.json()["code"] == "bad-sla-level"


def test_each_crossed_mark_is_announced_once(db: Database) -> None:
    with db.session() as s, s.begin():
        order = _create(s, datetime(2021, 3, 1, 9, tzinfo=SHANGHAI), uuid.uuid4().hex[:8])
        marks = (order.warn50_at, order.warn75_at, order.due_at)
        oid = order.id
    minute = timedelta(minutes=1)
    seen: list[str] = []
    for at in (
        marks[0] - minute,
        marks[0] + minute,
        marks[1] - minute,
        marks[1] + minute,
        marks[2],
        marks[2] + timedelta(days=3),
    ):
        jobs.run_once(db, at=at, chunk=2)
        assert jobs.run_once(db, at=at, chunk=2) == dict.fromkeys(svc.PASSES, 0)  # the same instant: nothing
        with db.session() as s:
            level = s.get(WorkOrder, oid).level_at(at)  # type: ignore[union-attr]
        if level != "ok" and (not seen or seen[-1] != f"sla_{level}"):
            seen.append(f"sla_{level}")
        assert _sla_events(db, oid) == seen, at
    assert seen == ["sla_warn50", "sla_warn75", "sla_breach"]


def test_a_stopped_clock_keeps_its_level_and_a_returned_order_is_announced(db: Database) -> None:
    with db.session() as s, s.begin():
        order = _create(s, datetime(2022, 3, 1, 9, tzinfo=SHANGHAI), uuid.uuid4().hex[:8])
        oid, due = order.id, order.due_at
        _act(s, oid, datetime(2022, 3, 1, 10, tzinfo=SHANGHAI), "handle", "reply")  # replied in time
    after = due + timedelta(days=1)
    jobs.run_once(db, at=after)  # the deadline passed while the clock was stopped: nothing to announce
    assert _sla_events(db, oid) == []
    with clock.frozen(after), db.session() as s, s.begin():
        assert s.get(WorkOrder, oid).level_at(after) == "ok"  # type: ignore[union-attr]
        assert oid in {o.id for o in _listed(s, sla_level="ok", state="replied")}
        assert oid in {o.id for o in _listed(s, sla_level="ok")}
        assert oid not in {o.id for o in _listed(s, sla_level="breach")}
    back = after + timedelta(days=1)
    with db.session() as s, s.begin():
        _act(s, oid, back, "return")  # 审核退回: the clock runs again, long past the deadline
        returned = s.get(WorkOrder, oid)
        assert (
            returned is not None
            and returned.sla_stopped_level is None
            and returned.level_at(back) == "breach"
        )
    # its deadline lies before the last run's window: found as an order touched since that run
    assert jobs.run_once(db, at=back + timedelta(hours=1))["breach"] >= 1
    assert jobs.run_once(db, at=back + timedelta(hours=1)) == dict.fromkeys(svc.PASSES, 0)
    assert _sla_events(db, oid) == ["sla_breach"]


class Stop(Exception):
    """The job's process dying half-way."""


def test_a_run_stopped_half_way_is_resumed_without_writing_twice(db: Database) -> None:
    tag = uuid.uuid4().hex[:8]
    with db.session() as s, s.begin():
        ids = [_create(s, datetime(2004, 3, 1, 9, i, tzinfo=SHANGHAI), tag).id for i in range(9)]
    at = datetime(2004, 12, 31, tzinfo=SHANGHAI)
    chunks: list[int] = []

    def die_after_two(_level: str, done: int, _total: int) -> None:
        chunks.append(done)
        if len(chunks) == 2:
            raise Stop

    before = _all_sla_events(db)
    with pytest.raises(Stop):
        jobs.run_once(db, at=at, chunk=2, progress=die_after_two)
    assert _all_sla_events(db) - before == 4  # two full chunks were committed before it died
    resumed = jobs.run_once(db, at=at, chunk=2)
    assert resumed["breach"] >= len(ids) - 4 and _all_sla_events(db) - before == 4 + sum(resumed.values())
    assert jobs.run_once(db, at=at, chunk=2) == dict.fromkeys(svc.PASSES, 0)
    assert [_sla_events(db, i) for i in ids] == [["sla_breach"]] * len(ids)


def _all_sla_events(db: Database) -> int:
    with db.session() as s:
        q = select(func.count()).select_from(WorkOrderEvent).where(WorkOrderEvent.action.like("sla_%"))
        return int(s.scalar(q) or 0)
