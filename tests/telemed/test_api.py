"""The REST API under /api/v1/telemed: the workflow across institutions, 409 for illegal moves, masking."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.telemed.conftest import PID, REQUESTER

Auth = Callable[..., dict[str, str]]


def _file(client: TestClient, auth: Auth, centre: str = "imaging", stype: str = "CT") -> dict:  # type: ignore[type-arg]
    r = client.post(
        "/api/v1/telemed/requests",
        json={
            "centre_code": centre,
            "service_type": stype,
            "patient_id_number": PID,
            "patient_name": "张三",
            "reason": "咳嗽两周",
        },
        headers=auth("doctor", institution=REQUESTER),
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_request_to_report_through_the_api(client: TestClient, auth: Auth, connected: str) -> None:
    req = _file(client, auth)
    assert req["status"] == "requested" and req["performer_code"] == "H020" and req["patient_name"] == "张三"
    assert req["person_id"]  # linked by the EMPI (rhip.identity)
    rid = req["id"]
    hub = auth("doctor", institution="H020", subject="expert-1")
    # the requester cannot accept its own request; the hub can
    r = client.post(
        f"/api/v1/telemed/requests/{rid}/transition",
        json={"status": "accepted"},
        headers=auth("doctor", institution=REQUESTER),
    )
    assert r.status_code == 403 and r.json()["code"] == "not-performer"
    wl = client.get("/api/v1/telemed/centres/imaging/worklist?limit=500", headers=hub)
    assert wl.status_code == 200 and any(x["id"] == rid and x["due_at"] for x in wl.json())
    assert (
        client.get(
            "/api/v1/telemed/centres/imaging/worklist", headers=auth("doctor", institution=REQUESTER)
        ).status_code
        == 403
    )
    r = client.post(f"/api/v1/telemed/requests/{rid}/transition", json={"status": "accepted"}, headers=hub)
    assert r.status_code == 200 and r.json()["status_label"] == "已接收"
    # accepted -> requested does not exist; a report completes it
    r = client.post(f"/api/v1/telemed/requests/{rid}/transition", json={"status": "requested"}, headers=hub)
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "illegal-transition"
    r = client.post(
        f"/api/v1/telemed/requests/{rid}/report",
        json={"findings": "右下肺结节 6mm", "conclusion": "建议随访"},
        headers=hub,
    )
    assert r.status_code == 201, r.text
    r = client.post(
        f"/api/v1/telemed/requests/{rid}/report", json={"findings": "x", "conclusion": "y"}, headers=hub
    )
    assert r.status_code == 409
    r = client.post(
        f"/api/v1/telemed/requests/{rid}/transition",
        json={"status": "cancelled", "reason": "晚了"},
        headers=auth("doctor", institution=REQUESTER),
    )
    assert r.status_code == 409
    # the requester is notified: the status list shows the report
    mine = client.get(
        "/api/v1/telemed/requests?centre_code=imaging", headers=auth("doctor", institution=REQUESTER)
    ).json()
    assert next(x for x in mine if x["id"] == rid)["status"] == "completed"
    rep = client.get(f"/api/v1/telemed/requests/{rid}/report", headers=auth("doctor", institution=REQUESTER))
    assert rep.status_code == 200 and rep.json()["conclusion"] == "建议随访"
    hist = client.get(f"/api/v1/telemed/requests/{rid}/history", headers=hub).json()
    assert [h["to_status"] for h in hist] == ["requested", "accepted", "in_progress", "completed"]
    # a doctor of an unrelated hospital sees nothing; the manager sees it masked
    assert (
        client.get(f"/api/v1/telemed/requests/{rid}", headers=auth("doctor", institution="H004")).status_code
        == 403
    )
    m = client.get(f"/api/v1/telemed/requests/{rid}", headers=auth("manager")).json()
    assert (
        m["patient_name"] == "张*" and m["patient_id_number"] == "320102********1238" and m["reason"] is None
    )
    tat = client.get("/api/v1/telemed/centres/imaging/tat?month=2022-08", headers=auth("manager"))
    assert tat.status_code == 200 and {t["service_type"] for t in tat.json()} >= {"CT", "MR"}


def test_bad_input_is_precise(client: TestClient, auth: Auth, connected: str) -> None:
    doc = auth("doctor", institution=REQUESTER)
    r = client.post(
        "/api/v1/telemed/requests",
        json={"centre_code": "dental", "service_type": "x", "patient_id_number": PID},
        headers=doc,
    )
    assert r.status_code == 404 and r.json()["code"] == "unknown-centre"
    r = client.post(
        "/api/v1/telemed/requests", json={"centre_code": "ecg", "service_type": "resting"}, headers=doc
    )
    assert r.status_code == 422 and r.json()["code"] == "patient-required"
    r = client.post(
        "/api/v1/telemed/requests",
        json={"centre_code": "ecg", "service_type": "resting", "patient_id_number": PID},
        headers=auth("doctor"),
    )
    assert r.status_code == 403
    rid = _file(client, auth, "ecg", "resting")["id"]
    r = client.post(
        f"/api/v1/telemed/requests/{rid}/transition",
        json={"status": "rejected"},
        headers=auth("doctor", institution="H001"),
    )
    assert r.status_code == 422 and r.json()["code"] == "reason-required"
    r = client.post(
        f"/api/v1/telemed/requests/{rid}/transition",
        json={"status": "completed"},
        headers=auth("doctor", institution="H001"),
    )
    assert r.status_code == 422 and r.json()["code"] == "report-required"
    r = client.get("/api/v1/telemed/requests?month=2022-13", headers=auth("manager"))
    assert r.status_code == 422


def test_connections_limits_and_coverage(client: TestClient, auth: Auth) -> None:
    r = client.get("/api/v1/telemed/centres/lab/coverage?on=2022-08-31")
    assert (
        r.status_code == 200
        and len(r.json()["districts_covered"]) + len(r.json()["districts_not_covered"]) == 12
    )
    r = client.post(
        "/api/v1/telemed/centres/lab/connections",
        json={"site_name": "无类别点", "connected_on": "2022-01-01"},
        headers=auth("manager"),
    )
    assert r.status_code == 422 and r.json()["code"] == "bad-category"
    assert (
        client.post(
            "/api/v1/telemed/centres/lab/connections",
            json={"institution_code": "C32011501", "connected_on": "2022-01-01"},
            headers=auth("doctor", institution="H001"),
        ).status_code
        == 403
    )
    r = client.put(
        "/api/v1/telemed/limits/ecg/resting",
        json={"label": "静息心电", "limit_minutes": 20},
        headers=auth("manager"),
    )
    assert r.status_code == 200 and r.json()["limit_minutes"] == 20
    limits = client.get("/api/v1/telemed/limits?centre_code=ecg").json()
    assert next(x for x in limits if x["service_type"] == "resting")["limit_minutes"] == 20
    client.put(
        "/api/v1/telemed/limits/ecg/resting",
        json={"label": "静息心电", "limit_minutes": 30},
        headers=auth("manager"),
    )
    assert (
        client.put(
            "/api/v1/telemed/limits/ecg/resting", json={"limit_minutes": 0}, headers=auth("manager")
        ).status_code
        == 422
    )
