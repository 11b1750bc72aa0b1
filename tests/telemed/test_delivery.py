"""The DiagnosticReport into the shared record: the outbox written with the report, drained through intake's
real-time path into the lake and the patient's timeline; an amendment (修改标志 2) replaces it; retries while
intake is down; a version intake refuses is marked failed with intake's reason."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rhip import clock
from rhip.db.engine import Database
from rhip.intake import service as intake
from rhip.lake.duck import Duck
from rhip.lake.sql import Sql
from rhip.lake.store import Lake
from rhip.telemed import delivery, service as svc
from rhip.telemed.models import Outbox
from tests.telemed.conftest import REQUESTER

Auth = Callable[..., dict[str, str]]
ECG_HUB = "H001"


def _lake(client: TestClient) -> Lake:
    return Lake(client.app.state.settings.resolved_lake_dir)  # type: ignore[attr-defined]


def _lake_row(db: Database, lake: Lake, report_no: str) -> dict[str, Any] | None:
    with db.session() as s:
        inner = intake.visible_sql(s, "exam_report")
    duck = Duck(lake)
    try:
        cols = ["org_code", "patient_id", "change_flag", "conclusion", "modality", "exam_item_name"]
        rows = duck.rows(
            Sql(
                f"SELECT {', '.join(cols)} FROM ({inner.text}) WHERE report_no = $no",
                {**inner.params, "no": report_no},
            )
        )
    finally:
        duck.close()
    assert len(rows) <= 1
    return dict(zip(cols, rows[0], strict=True)) if rows else None


def _file_ecg(client: TestClient, auth: Auth, pid: str) -> dict[str, Any]:
    r = client.post(
        "/api/v1/telemed/requests",
        json={
            "centre_code": "ecg",
            "service_type": "resting",
            "patient_id_number": pid,
            "patient_local_id": f"P-{pid[-6:]}",
            "patient_name": "李四",
            "reason": "胸闷",
        },
        headers=auth("doctor", institution=REQUESTER),
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_final_report_reaches_record_and_lake_and_amendment_replaces_it(
    client: TestClient, auth: Auth, connected: str, db: Database
) -> None:
    req = _file_ecg(client, auth, "320102198507153217")
    rid, person = req["id"], req["person_id"]
    hub = auth("doctor", institution=ECG_HUB, subject="cardio-1")
    staff = auth("manager")
    client.post(f"/api/v1/telemed/requests/{rid}/transition", json={"status": "accepted"}, headers=hub)
    r = client.post(
        f"/api/v1/telemed/requests/{rid}/report",
        json={"findings": "窦性心律，心率 72 次/分", "conclusion": "正常心电图"},
        headers=hub,
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "final" and r.json()["version"] == 1
    # written with the report, waiting for the drain job
    box = client.get("/api/v1/telemed/outbox", headers=staff).json()
    mine = [o for o in box if o["report_id"] == r.json()["id"]]
    assert [(o["state"], o["version"], o["table_name"], o["institution_code"]) for o in mine] == [
        ("pending", 1, "exam_report", REQUESTER)
    ]
    d = client.post("/api/v1/telemed/outbox/drain", headers=staff)
    assert d.status_code == 200 and mine[0]["id"] in d.json()["sent"], d.text

    no = f"TM-ecg-{rid}"
    row = _lake_row(db, _lake(client), no)
    assert row is not None
    assert row["org_code"] == REQUESTER and row["patient_id"] == "P-153217"
    assert (row["change_flag"], row["conclusion"], row["modality"]) == ("1", "正常心电图", "ECG")
    tl = client.get(f"/api/v1/records/{person}", headers=auth("doctor", institution=REQUESTER))
    assert tl.status_code == 200, tl.text
    entries = [e for e in tl.json()["entries"] if e["detail"].get("report_no") == no]
    assert len(entries) == 1 and entries[0]["kind"] == "exam"
    assert (
        entries[0]["title"] == "静息心电（远程心电诊断监测）"
        and entries[0]["detail"]["conclusion"] == "正常心电图"
    )

    # the expert corrects it: version 2, amended, sent with 修改标志 2, the record replaced (not added)
    r = client.put(
        f"/api/v1/telemed/requests/{rid}/report",
        json={
            "findings": "窦性心律，ST 段压低 0.1 mV",
            "conclusion": "ST 段改变",
            "reason": "复核发现 ST 段压低",
        },
        headers=hub,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["version"]) == ("amended", 2)
    assert client.post("/api/v1/telemed/outbox/drain", headers=staff).json()["sent"]
    row = _lake_row(db, _lake(client), no)
    assert row is not None and (row["change_flag"], row["conclusion"]) == ("2", "ST 段改变")
    tl = client.get(f"/api/v1/records/{person}", headers=auth("doctor", institution=REQUESTER)).json()
    entries = [e for e in tl["entries"] if e["detail"].get("report_no") == no]
    assert len(entries) == 1 and entries[0]["detail"]["conclusion"] == "ST 段改变"
    fhir = client.get(f"/fhir/r4/DiagnosticReport/{r.json()['id']}", headers=hub).json()
    assert fhir["status"] == "amended" and fhir["meta"]["versionId"] == "2"
    # the history says who amended it and why
    hist = client.get(f"/api/v1/telemed/requests/{rid}/history", headers=hub).json()
    assert hist[-1]["reason"].startswith("修改报告（第 2 版）") and hist[-1]["actor"] == "cardio-1"


def test_amendment_rules_and_roles(client: TestClient, auth: Auth, connected: str) -> None:
    req = _file_ecg(client, auth, "32010219900228331X")
    rid = req["id"]
    hub = auth("doctor", institution=ECG_HUB)
    body = {"findings": "x", "conclusion": "y", "reason": "z"}
    r = client.put(f"/api/v1/telemed/requests/{rid}/report", json=body, headers=hub)
    assert r.status_code == 409 and r.json()["code"] == "no-report"
    client.post(f"/api/v1/telemed/requests/{rid}/transition", json={"status": "accepted"}, headers=hub)
    client.post(
        f"/api/v1/telemed/requests/{rid}/report", json={"findings": "a", "conclusion": "b"}, headers=hub
    )
    r = client.put(
        f"/api/v1/telemed/requests/{rid}/report", json=body, headers=auth("doctor", institution=REQUESTER)
    )
    assert r.status_code == 403 and r.json()["code"] == "not-performer"
    r = client.put(f"/api/v1/telemed/requests/{rid}/report", json={**body, "reason": " "}, headers=hub)
    assert r.status_code == 422
    assert (
        client.put(f"/api/v1/telemed/requests/{rid}/report", json=body, headers=auth("manager")).status_code
        == 403
    )
    for role in ("doctor", "uploader", "resident", "auditor"):
        assert (
            client.get("/api/v1/telemed/outbox", headers=auth(role, institution=ECG_HUB)).status_code == 403
        )
        assert (
            client.post("/api/v1/telemed/outbox/drain", headers=auth(role, institution=ECG_HUB)).status_code
            == 403
        )
    assert client.get("/api/v1/telemed/outbox?state=lost", headers=auth("admin")).status_code == 422
    # staff see that the report exists, not what it says
    staff = client.get(f"/api/v1/telemed/requests/{rid}/report", headers=auth("manager")).json()
    assert staff["conclusion"] != "b" and staff["findings"] != "a"
    mine = client.get(f"/api/v1/telemed/requests/{rid}/report", headers=auth("doctor", institution=REQUESTER))
    assert mine.json()["conclusion"] == "b"


def _reported(
    ts: Session, *, centre: str = "ecg", stype: str = "resting", at_offset: timedelta = timedelta()
) -> int:
    """A reported request made through the services; the outbox row's id."""
    with ts.begin():
        req = svc.create_request(
            ts,
            centre_code=centre,
            service_type=stype,
            requester_code=REQUESTER,
            actor="t",
            patient_id_number="320102197712120014",
        )
        svc.transition(ts, request_id=req.id, to="accepted", actor="e")
        rep = svc.report(
            ts, request_id=req.id, findings="f", conclusion="c", author="e", at=clock.now() + at_offset
        )
        rows = delivery.of_report(ts, report_id=rep.id)
        return rows[0].id if rows else 0


def test_outbox_retries_while_intake_is_down(
    ts: Session, tdb: Database, connected: str, tmp_path: Any
) -> None:
    oid = _reported(ts)
    lake = Lake(tmp_path / "lake")

    def down(*_a: Any, **_k: Any) -> Any:
        raise ConnectionError("intake unreachable")

    res = delivery.drain(tdb, lake, send=down)
    assert oid in res.retried and oid not in res.sent
    with tdb.session() as s:
        o = s.get(Outbox, oid)
        assert o is not None and (o.state, o.attempts) == ("pending", 1)
        assert o.due_at > clock.now() and "intake unreachable" in (o.last_error or "")
        due = o.due_at
    assert oid not in delivery.drain(tdb, lake).sent  # not due yet: nothing is hammered
    with clock.frozen(due + timedelta(seconds=1)):
        res = delivery.drain(tdb, lake)
    assert oid in res.sent and res.receipts
    with tdb.session() as s:
        o = s.get(Outbox, oid)
        assert o is not None and (o.state, o.attempts, o.receipt_id) == ("sent", 2, res.receipts[0])


def test_a_version_intake_refuses_is_failed_with_its_reason(
    ts: Session, tdb: Database, connected: str, tmp_path: Any
) -> None:
    # a report stamped two days ahead (a skewed clock at the centre): intake refuses 报告时间 in the future
    oid = _reported(ts, at_offset=timedelta(days=2))
    res = delivery.drain(tdb, Lake(tmp_path / "lake"))
    assert oid in res.failed
    with tdb.session() as s:
        o = s.get(Outbox, oid)
        assert o is not None and o.state == "failed" and "date_future" in (o.last_error or "")
    assert oid not in delivery.drain(tdb, Lake(tmp_path / "lake")).failed  # not retried


def test_consultation_opinions_are_not_exam_records(ts: Session, connected: str) -> None:
    assert _reported(ts, centre="consult", stype="consult") == 0
