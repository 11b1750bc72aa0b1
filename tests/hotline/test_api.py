"""The hotline API and pages by role: desk, CDR upload, work orders (409 for illegal moves), inbox, chat."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi.testclient import TestClient

from rhip.hotline import cdr

Auth = Callable[..., dict[str, str]]


def _cdr_line(category: str) -> str:
    return cdr.write_line(
        {
            "caller_id_number": "13912345678",
            "destination_number": "12320",
            "start_stamp": "2025-03-04 10:00:00",
            "answer_stamp": "2025-03-04 10:00:10",
            "end_stamp": "2025-03-04 10:03:00",
            "duration": "180",
            "billsec": "170",
            "hangup_cause": "NORMAL_CLEARING",
            "uuid": str(uuid.uuid4()),
            "rhip_category": category,
        }
    )


def test_cdr_upload_reports_lines_never_500(client: TestClient, auth: Auth) -> None:
    body = _cdr_line("consult") + '"bad","line"\n' + _cdr_line("nonsense") + "\x00\xff garbage\n"
    r = client.post(
        "/api/v1/hotline/calls/import",
        files={"file": ("Master.csv", body.encode("utf-8", "surrogateescape"))},
        headers=auth("agent"),
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["imported"] == 1 and [e["line"] for e in out["errors"]] == [2, 3, 4]
    assert (
        client.post(
            "/api/v1/hotline/calls/import", files={"file": ("x.csv", b"")}, headers=auth("resident")
        ).status_code
        == 403
    )


def test_order_lifecycle_over_http(client: TestClient, auth: Auth) -> None:
    r = client.post(
        "/api/v1/hotline/work-orders",
        json={
            "source": "wo_city_12345",
            "title": "反映挂号难",
            "external_no": f"SJ{uuid.uuid4().hex[:10]}",
            "due_at": "2025-03-10T00:00:00+08:00",
            "received_at": "2025-03-03T09:00:00+08:00",
        },
        headers=auth("agent"),
    )
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    closing = client.post(
        f"/api/v1/hotline/work-orders/{oid}/actions", json={"action": "close"}, headers=auth("agent")
    )
    assert closing.status_code == 409 and closing.json()["code"] == "bad-transition"
    act = client.post(
        f"/api/v1/hotline/work-orders/{oid}/actions",
        json={"action": "assign", "institution_code": "H020"},
        headers=auth("agent"),
    )
    assert act.status_code == 200 and act.json()["state"] == "assigned"
    # the institution's inbox shows it to its own staff only
    mine = client.get(
        "/api/v1/hotline/work-orders?open_only=true&limit=200", headers=auth("doctor", institution="H020")
    )
    other = client.get(
        "/api/v1/hotline/work-orders?open_only=true&limit=200", headers=auth("doctor", institution="H029")
    )
    assert oid in [o["id"] for o in mine.json()["items"]] and oid not in [
        o["id"] for o in other.json()["items"]
    ]
    assert (
        client.get(
            f"/api/v1/hotline/work-orders/{oid}", headers=auth("doctor", institution="H029")
        ).status_code
        == 404
    )
    reply = client.post(
        f"/api/v1/hotline/work-orders/{oid}/actions",
        json={"action": "accept"},
        headers=auth("doctor", institution="H020"),
    )
    assert reply.status_code == 200
    assert (
        client.post(
            f"/api/v1/hotline/work-orders/{oid}/actions", json={"action": "accept"}, headers=auth("auditor")
        ).status_code
        == 403
    )
    assert client.get(f"/api/v1/hotline/work-orders/{oid}", headers=auth("auditor")).status_code == 200
    assert client.get("/api/v1/hotline/work-orders", headers=auth("resident")).status_code == 403


def test_chat_is_public_and_crisis_is_fixed(client: TestClient) -> None:
    r = client.post("/api/v1/assistant/chat", json={"message": "我真的不想活了"})
    assert r.status_code == 200 and r.json()["crisis"] and "12356" in r.json()["answer"]
    assert client.post("/api/v1/assistant/chat", json={"message": ""}).status_code == 422
    bad = client.post("/api/v1/assistant/chat", json={"message": "你好", "conversation": "nope"})
    assert bad.status_code == 422


def test_pages_by_role(client: TestClient, auth: Auth) -> None:
    assert client.get("/assistant").status_code == 200 and "chat.js" in client.get("/assistant").text
    assert client.get("/hotline", headers=auth("agent")).status_code == 200
    assert client.get("/hotline", headers=auth("resident")).status_code == 403
    assert client.get("/hotline/inbox", headers=auth("doctor", institution="H020")).status_code == 200
    page = client.get("/hotline/dashboard?month=2025-03", headers=auth("manager"))
    assert page.status_code == 200 and "<svg" in page.text and "受理咨询电话" in page.text
    assert client.get("/hotline/dashboard", headers=auth("agent")).status_code == 403
    logged = client.post(
        "/hotline/calls",
        data={"category": "consult", "caller": "13800001111"},
        headers=auth("agent"),
        follow_redirects=False,
    )
    assert logged.status_code == 303 and "%E5%B7%B2%E7%99%BB%E8%AE%B0" in logged.headers["location"]
