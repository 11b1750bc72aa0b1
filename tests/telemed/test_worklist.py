"""The worklist: keyset pages through the open tasks in order with nothing skipped or repeated, the plan
reads the partial index of open tasks without sorting, counts are capped, and every clinician's read is
audited while staff see it masked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from rhip import clock
from rhip.security.models import AuditEvent
from rhip.telemed import service as svc
from tests.telemed.conftest import PID, REQUESTER

Auth = Callable[..., dict[str, str]]
# holter requests filed early in 2020: the oldest open ones of the ECG centre, whatever other tests file
EARLY = datetime(2020, 1, 2, 8, 0, tzinfo=clock.SHANGHAI)


def _file_early(ts: Session, n: int) -> list[int]:
    with ts.begin():
        return [
            svc.create_request(
                ts,
                centre_code="ecg",
                service_type="holter",
                requester_code=REQUESTER,
                actor="t",
                patient_id_number=PID,
                patient_name="王五",
                reason="心悸",
                at=EARLY + timedelta(minutes=i // 2),  # two per minute: ties broken by id
            ).id
            for i in range(n)
        ]


def test_keyset_pages_walk_the_open_tasks_in_order(
    client: TestClient, auth: Auth, ts: Session, connected: str
) -> None:
    ids = _file_early(ts, 5)
    with ts.begin():  # a closed one among them is never listed
        svc.transition(ts, request_id=ids[2], to="cancelled", actor="t", reason="重复申请")
    hub = auth("doctor", institution="H001", subject="wl-reader")
    seen: list[int] = []
    after = ""
    for _ in range(3):
        r = client.get(
            f"/api/v1/telemed/centres/ecg/worklist?service_type=holter&limit=2{after}", headers=hub
        )
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        page = r.json()
        seen += [x["id"] for x in page]
        if len(page) < 2:
            break
        last = page[-1]
        after = f"&after_time={last['requested_at'].replace('+', '%2B')}&after_id={last['id']}"
    mine = [i for i in seen if i in ids]
    assert mine == [ids[0], ids[1], ids[3], ids[4]] and len(seen) == len(set(seen))
    first = client.get(
        "/api/v1/telemed/centres/ecg/worklist?service_type=holter&limit=1", headers=hub
    ).json()[0]
    assert (
        first["patient_name"] == "王五" and first["reason"] == "心悸" and first["due_at"] and first["overdue"]
    )
    # every clinician's page read is audited; staff read it masked (and unaudited: nothing personal shown)
    with ts.begin():
        events = ts.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "telemed.worklist.read", AuditEvent.actor == "wl-reader"
            )
        ).all()
        assert len(events) == 3 and events[0].target == "ecg: 2 requests"
    staff = client.get(
        "/api/v1/telemed/centres/ecg/worklist?service_type=holter&limit=1", headers=auth("manager")
    )
    row = staff.json()[0]
    assert row["patient_name"] == "王*" and row["reason"] is None and row["patient_id_number"] != PID
    assert row["person_id"] is None


def test_the_plan_reads_the_open_index_without_sorting(ts: Session) -> None:
    stmt = svc.worklist_query(centre_code="ecg", limit=50)
    with ts.begin():
        if ts.get_bind().dialect.name != "sqlite":
            return  # PostgreSQL's choice depends on its statistics: the benchmark measures it at 100k
        sql = str(stmt.compile(ts.get_bind(), compile_kwargs={"literal_binds": True}))
        plan = " ".join(str(r[-1]) for r in ts.execute(text("EXPLAIN QUERY PLAN " + sql)))
    assert "ix_telemed_requests_open" in plan and "TEMP B-TREE" not in plan, plan


def test_counts_stop_at_the_cap(ts: Session, connected: str) -> None:
    _file_early(ts, 3)
    with ts.begin():
        counts = svc.open_counts(ts, centre_code="ecg", cap=2)
    assert counts["requested"] == 3 and set(counts) == {"requested", "accepted", "in_progress"}


def test_worklist_page_is_audited_and_counts_capped(
    client: TestClient, auth: Auth, ts: Session, connected: str
) -> None:
    _file_early(ts, 1)
    r = client.get(
        "/telemed/centres/ecg/worklist", headers=auth("doctor", institution="H001", subject="wl-page")
    )
    assert r.status_code == 200 and "王五" in r.text
    with ts.begin():
        assert ts.scalar(
            select(AuditEvent.id).where(
                AuditEvent.action == "telemed.worklist.read", AuditEvent.actor == "wl-page"
            )
        )
    staff = client.get("/telemed/centres/ecg/worklist", headers=auth("manager"))
    assert staff.status_code == 200 and "王五" not in staff.text and "王*" in staff.text
