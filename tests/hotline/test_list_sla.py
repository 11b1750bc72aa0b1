"""The work-order list (keyset pages, capped counts), the chunked SLA job, and personal data by role."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.clock import SHANGHAI
from rhip.db.engine import Database
from rhip.errors import Invalid
from rhip.hotline import jobs, service as svc
from rhip.hotline.models import WorkOrder, WorkOrderEvent
from rhip.hotline.order_list import count_capped
from rhip.registry.idnumber import make_id
from rhip.security.models import AuditEvent
from tests.factories import id_sequence
from tests.hotline.conftest import AGENT, staff

Auth = Callable[..., dict[str, str]]
HOSPITAL = "H020"


def _orders(session: Session, n: int, **kw: object) -> list[int]:
    """n orders of one batch (a unique title), received a minute apart; their ids."""
    tag = uuid.uuid4().hex[:8]
    ids = []
    with session.begin():
        for i in range(n):
            args: dict[str, object] = {
                "actor": AGENT,
                "source": "wo_self",
                "title": f"列表 {tag} {i}",
                "received_at": datetime(2025, 3, 3, 9, i, tzinfo=SHANGHAI),
            }
            args.update(kw)
            ids.append(svc.create_order(session, **args).id)  # type: ignore[arg-type]
    return ids


def test_keyset_pages_cover_the_list_once_in_deadline_order(session: Session) -> None:
    mine = _orders(session, 5, institution_code=HOSPITAL)
    me = staff(HOSPITAL)
    seen: list[int] = []
    cursor = None
    with session.begin():
        first = svc.get_all_orders(session, actor=me, open_only=True, limit=2)
        assert first.count is not None and first.count.value >= 5 and len(first.items) == 2
        page = first
        while True:
            seen += [o.id for o in page.items]
            assert page.count is None or cursor is None  # the count comes with the first page only
            cursor = page.next_cursor
            if cursor is None:
                break
            page = svc.get_all_orders(session, actor=me, open_only=True, limit=2, cursor=cursor)
        expected = session.scalars(
            select(WorkOrder.id)
            .where(WorkOrder.institution_code == HOSPITAL, WorkOrder.state.in_(svc.OPEN_STATES))
            .order_by(WorkOrder.due_at, WorkOrder.id)
        ).all()
    assert seen == list(expected) and set(mine) <= set(seen)


def test_count_is_exact_up_to_the_cap_then_capped_and_labelled(session: Session) -> None:
    mine = _orders(session, 5)
    q = select(WorkOrder).where(WorkOrder.id.in_(mine))
    with session.begin():
        exact = count_capped(session, q, cap=10)
        capped = count_capped(session, q, cap=3)
    assert (exact.value, exact.capped, exact.label) == (5, False, "5")
    assert capped.value == 3 and capped.capped
    if session.get_bind().dialect.name == "postgresql":  # the planner's estimate, labelled as one
        assert capped.estimate is not None and capped.estimate >= 4
        assert capped.label == f"3+（估算约 {capped.estimate:,}）"
    else:
        assert capped.estimate is None and capped.label == "3+"


def test_a_bad_cursor_is_refused(session: Session, client: TestClient, auth: Auth) -> None:
    with session.begin(), pytest.raises(Invalid) as exc:
        svc.get_all_orders(session, actor=AGENT, cursor="not-a-cursor")
    assert exc.value.code == "bad-cursor"
    r = client.get("/api/v1/hotline/work-orders?cursor=%21%21", headers=auth("agent"))
    assert r.status_code == 422 and r.json()["code"] == "bad-cursor"


def test_api_pages_by_cursor(session: Session, client: TestClient, auth: Auth) -> None:
    _orders(session, 3, institution_code=HOSPITAL)
    headers = auth("doctor", institution=HOSPITAL)
    first = client.get("/api/v1/hotline/work-orders?open_only=true&limit=2", headers=headers).json()
    assert first["total"] >= 3 and first["next_cursor"] and len(first["items"]) == 2
    second = client.get(
        f"/api/v1/hotline/work-orders?open_only=true&limit=2&cursor={first['next_cursor']}", headers=headers
    ).json()
    assert second["total"] is None and second["items"]
    assert not {o["id"] for o in first["items"]} & {o["id"] for o in second["items"]}
    last = first["items"][-1]
    head = second["items"][0]
    assert (last["due_at"], last["id"]) < (head["due_at"], head["id"])


def _pending_2003(db: Database, n: int) -> list[int]:
    """n open orders received in 2003: no other test's order has a mark that early."""
    with db.session() as s:
        return _orders(s, n, received_at=datetime(2003, 3, 3, 9, tzinfo=SHANGHAI))


def _sla_events(db: Database, ids: list[int]) -> list[str]:
    with db.session() as s:
        q = select(WorkOrderEvent.action).where(
            WorkOrderEvent.order_id.in_(ids), WorkOrderEvent.action.like("sla_%")
        )
        return list(s.scalars(q))


def test_sla_catch_up_in_chunks_resumes_and_repeats_nothing(db: Database) -> None:
    at = datetime(2003, 12, 31, tzinfo=SHANGHAI)  # every mark of the 2003 orders has passed
    before = _pending_2003(db, 7)
    steps: list[tuple[str, int, int]] = []
    done = jobs.run_once(db, at=at, chunk=3, progress=lambda *a: steps.append(a))
    assert done["breach"] >= 7 and done["warn75"] == done["warn50"] == 0
    breach_steps = [s for s in steps if s[0] == "breach"]
    assert len(breach_steps) >= 3 and breach_steps[-1][1] == breach_steps[-1][2] == done["breach"]
    # a run stopped after one chunk of each walk (its own transaction, committed) ...
    more = _pending_2003(db, 5)
    with db.session() as s, s.begin():
        changed, left = svc.run_sla_step(s, at=at, chunk=2)
    assert changed["breach"] == 2 and left
    # ... is resumed by the next run, which announces only what is left
    assert jobs.run_once(db, at=at, chunk=2)["breach"] == 3
    assert jobs.run_once(db, at=at, chunk=2) == dict.fromkeys(svc.PASSES, 0)  # repeated: nothing
    events = _sla_events(db, before + more)
    assert sorted(events) == ["sla_breach"] * 12  # one event per order, straight to breach
    with db.session() as s:
        orders = s.scalars(select(WorkOrder).where(WorkOrder.id.in_(before + more))).all()
        assert {o.level_at(at) for o in orders} == {"breach"}


def test_sla_route_runs_one_bounded_chunk(client: TestClient, auth: Auth) -> None:
    r = client.post("/api/v1/hotline/sla/run", headers=auth("manager"))
    assert r.status_code == 200 and set(r.json()) == {"changed", "more", "open", "open_capped"}
    assert set(r.json()["open"]) == {"ok", "warn50", "warn75", "breach"}
    assert client.post("/api/v1/hotline/sla/run", headers=auth("agent")).status_code == 403


def _audits(
    session: Session, action: str, *, target: str | None = None, actor: str | None = None
) -> list[str]:
    """The roles of the audit events of a read (by target or by actor), oldest first."""
    q = select(AuditEvent.role).where(AuditEvent.action == action).order_by(AuditEvent.id)
    if target is not None:
        q = q.where(AuditEvent.target == target)
    if actor is not None:
        q = q.where(AuditEvent.actor == actor)
    with session.begin():
        return [str(r) for r in session.scalars(q)]


def test_id_number_masked_for_every_reader_and_every_read_audited(
    session: Session, client: TestClient, auth: Auth
) -> None:
    number = make_id("320106", date(1980, 1, 1), id_sequence())
    [oid] = _orders(
        session,
        1,
        id_number=number,
        institution_code=HOSPITAL,
        content=f"来电人 13912345678，身份证 {number}，反映挂号难",
    )
    with session.begin():
        order_no = session.get(WorkOrder, oid).number  # type: ignore[union-attr]
    masked = number[:6] + "********" + number[-4:]
    lister = f"agent-{uuid.uuid4().hex[:8]}"
    listed = client.get(
        "/api/v1/hotline/work-orders?limit=200", headers=auth("agent", subject=lister)
    ).json()["items"]
    assert _audits(session, "read.hotline.work_orders", actor=lister) == ["agent"]  # the list read, audited
    mine = next(o for o in listed if o["id"] == oid)
    assert "id_number" not in mine  # lists never carry it
    assert mine["content"] == f"来电人 139****5678，身份证 {masked}，反映挂号难"
    for role, institution in (("agent", None), ("manager", None), ("auditor", None), ("doctor", HOSPITAL)):
        r = client.get(
            f"/api/v1/hotline/work-orders/{oid}", headers=auth(role, institution=institution, subject=role)
        )
        assert r.status_code == 200 and r.json()["id_number"] == masked, (role, r.text)
        assert number not in r.text and "13912345678" not in r.text
    assert _audits(session, "read.hotline.work_order", target=order_no) == [
        "agent",
        "manager",
        "auditor",
        "doctor",
    ]
    # on the pages too: an order due first in H020's inbox, a mobile number in its title
    _orders(
        session,
        1,
        institution_code=HOSPITAL,
        title="回电 13912345678",
        received_at=datetime(2002, 1, 7, tzinfo=SHANGHAI),
    )
    reader = f"staff-{uuid.uuid4().hex[:8]}"
    page = client.get("/hotline/inbox", headers=auth("doctor", institution=HOSPITAL, subject=reader))
    assert page.status_code == 200 and "回电 139****5678" in page.text and "13912345678" not in page.text
    assert _audits(session, "read.hotline.work_orders", actor=reader) == ["doctor"]
    desk = f"agent-{uuid.uuid4().hex[:8]}"
    with session.begin():
        svc.log_call(session, actor=AGENT, category="consult", caller="13800001111")  # a call to list
    assert client.get("/hotline", headers=auth("agent", subject=desk)).status_code == 200
    assert _audits(session, "read.hotline.calls", actor=desk) == ["agent"]
    calls = f"auditor-{uuid.uuid4().hex[:8]}"
    listed_calls = client.get("/api/v1/hotline/calls?limit=5", headers=auth("auditor", subject=calls))
    body = listed_calls.json()
    assert listed_calls.status_code == 200 and 1 <= body["total"] <= 1000 and len(body["items"]) <= 5
    assert body["total_estimate"] is None or body["total_capped"]  # an estimate only beyond the cap
    assert _audits(session, "read.hotline.calls", actor=calls) == ["auditor"]
