"""The shared record through the API: the resident's own record and reports, consent grant / expiry /
revoke, one-time codes, emergency access, refusals, and every view in the access log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from rhip.clock import now
from rhip.db.engine import Database
from rhip.records.models import AccessLog, Consent
from tests.records.conftest import City

H = Callable[..., dict[str, str]]


def _log(db: Database, person: str) -> list[AccessLog]:
    with db.session() as s:
        return list(s.scalars(select(AccessLog).where(AccessLog.person_id == person).order_by(AccessLog.id)))


def test_resident_sees_own_record_from_every_institution(client: TestClient, city: City, as_: H) -> None:
    me = as_("resident", None, city.id_number)
    r = client.get("/api/v1/records/me", headers=me)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["basis"] == "self" and body["person_id"] == city.person
    insts = {e["institution_code"] for e in body["entries"]}
    assert {city.org_a, city.org_b, city.org_c} <= insts  # C's public-health record by ID number
    kinds = {e["kind"] for e in body["entries"]}
    assert {"visit", "lab", "exam", "health_record", "hypertension_followup"} <= kinds
    times = [e["occurred_at"] for e in body["entries"]]
    assert times == sorted(times, reverse=True)
    only_lab = client.get("/api/v1/records/me", params={"kind": "lab"}, headers=me).json()["entries"]
    assert only_lab and {e["kind"] for e in only_lab} == {"lab"}
    assert client.get("/api/v1/records/me", params={"kind": "nonsense"}, headers=me).status_code == 422


def test_reports_with_results_and_abnormal_flags(client: TestClient, city: City, as_: H) -> None:
    me = as_("resident", None, city.id_number)
    reps = client.get("/api/v1/records/me/reports", headers=me).json()
    lab = next(r for r in reps if r["kind"] == "lab")
    assert lab["abnormal"] is True
    one = client.get(f"/api/v1/records/me/reports/{lab['id']}", headers=me).json()
    items = {i["item_code"]: i for i in one["detail"]["items"]}
    assert items["WBC"]["abnormal_flag"] == "HH" and items["HGB"]["reference_range"] == "130-175"
    # someone else's report is not found for me
    other = as_("resident", None, "11010519491231002X")
    assert client.get(f"/api/v1/records/me/reports/{lab['id']}", headers=other).status_code in (403, 404)


def test_doctor_of_other_institution_needs_consent(
    client: TestClient, city: City, as_: H, db: Database
) -> None:
    outsider = as_("doctor", city.org_c, "dr-c")
    r = client.get(f"/api/v1/records/{city.person}", headers=outsider)
    assert r.status_code == 403 and r.json()["code"] == "records-consent-required"
    assert client.get(f"/api/v1/records/{city.person}/reports", headers=outsider).status_code == 403
    assert (
        client.post(f"/api/v1/records/{city.person}/reminders", json={}, headers=outsider).status_code == 403
    )
    refused = _log(db, city.person)
    assert refused and refused[-1].outcome == "refused" and refused[-1].actor == "dr-c"

    me = as_("resident", None, city.id_number)
    g = client.post(
        "/api/v1/records/me/consents", json={"institution_code": city.org_c, "days": 7}, headers=me
    )
    assert g.status_code == 201, g.text
    ok = client.get(f"/api/v1/records/{city.person}", headers=outsider)
    assert ok.status_code == 200 and ok.json()["basis"].startswith("consent:")
    assert {city.org_a, city.org_b} <= {e["institution_code"] for e in ok.json()["entries"]}

    # expiry
    with db.session() as s, s.begin():
        s.execute(
            update(Consent).where(Consent.id == g.json()["id"]).values(ends_at=now() - timedelta(seconds=1))
        )
    assert client.get(f"/api/v1/records/{city.person}", headers=outsider).status_code == 403
    # a new grant, then revoke
    g2 = client.post("/api/v1/records/me/consents", json={"institution_code": city.org_c}, headers=me).json()
    assert client.get(f"/api/v1/records/{city.person}", headers=outsider).status_code == 200
    assert client.delete(f"/api/v1/records/me/consents/{g2['id']}", headers=me).status_code == 200
    assert client.delete(f"/api/v1/records/me/consents/{g2['id']}", headers=me).status_code == 409
    assert client.get(f"/api/v1/records/{city.person}", headers=outsider).status_code == 403

    who = client.get("/api/v1/records/me/access-log", headers=me).json()
    assert {"allowed", "refused"} <= {w["outcome"] for w in who}
    assert all(w["person_id"] == city.person for w in who)


def test_own_institution_sees_only_its_own_records(client: TestClient, city: City, as_: H) -> None:
    r = client.get(f"/api/v1/records/{city.person}", headers=as_("doctor", city.org_a, "dr-a"))
    assert r.status_code == 200
    body = r.json()
    assert body["basis"] == "own-institution"
    assert {e["institution_code"] for e in body["entries"]} == {city.org_a}


def test_one_time_code_single_use_and_throttled(client: TestClient, city: City, as_: H) -> None:
    me = as_("resident", None, city.id_number)
    code = client.post("/api/v1/records/me/access-codes", headers=me).json()["code"]
    doc = as_("doctor", city.org_c, "dr-code")
    bad = "000000" if code != "000000" else "111111"
    assert (
        client.post(
            f"/api/v1/records/{city.person}/access-codes/redeem", json={"code": bad}, headers=doc
        ).status_code
        == 422
    )
    ok = client.post(f"/api/v1/records/{city.person}/access-codes/redeem", json={"code": code}, headers=doc)
    assert ok.status_code == 200 and ok.json()["kind"] == "code"
    assert client.get(f"/api/v1/records/{city.person}", headers=doc).status_code == 200
    again = client.post(
        f"/api/v1/records/{city.person}/access-codes/redeem",
        json={"code": code},
        headers=as_("doctor", city.org_c, "dr-2"),
    )
    assert again.status_code == 422  # one use
    for _ in range(5):
        client.post(
            f"/api/v1/records/{city.person}/access-codes/redeem",
            json={"code": bad},
            headers=as_("doctor", city.org_c, "dr-brute"),
        )
    r = client.post(
        f"/api/v1/records/{city.person}/access-codes/redeem",
        json={"code": code},
        headers=as_("doctor", city.org_c, "dr-brute"),
    )
    assert r.status_code == 429
    assert (
        client.post(
            f"/api/v1/records/{city.person}/access-codes/redeem", json={"code": "12ab"}, headers=doc
        ).status_code
        == 422
    )


def test_emergency_access_is_flagged_for_review(client: TestClient, city: City, as_: H) -> None:
    doc = as_("doctor", city.org_c, "dr-er")
    assert (
        client.post(
            f"/api/v1/records/{city.person}/emergency-access", json={"reason": "急"}, headers=doc
        ).status_code
        == 422
    )
    e = client.post(
        f"/api/v1/records/{city.person}/emergency-access",
        json={"reason": "昏迷送急诊，无法取得授权"},
        headers=doc,
    )
    assert e.status_code == 201 and e.json()["kind"] == "emergency" and e.json()["reviewed"] is False
    view = client.get(f"/api/v1/records/{city.person}", headers=doc)
    assert view.status_code == 200 and view.json()["basis"].startswith("emergency:")
    auditor = as_("auditor")
    pending = client.get("/api/v1/audit/emergencies", headers=auditor).json()
    assert any(p["id"] == e.json()["id"] for p in pending)
    ev = client.get(
        "/api/v1/audit/events", params={"person_id": city.person, "basis": "emergency"}, headers=auditor
    )
    assert ev.status_code == 200 and ev.json() and all(x["basis"].startswith("emergency") for x in ev.json())
    assert client.post(f"/api/v1/audit/emergencies/{e.json()['id']}/reviewed", headers=auditor).json()[
        "reviewed"
    ]


def test_roles_and_bad_input(client: TestClient, city: City, as_: H) -> None:
    for role in ("manager", "agent", "uploader", "auditor"):
        assert client.get(f"/api/v1/records/{city.person}", headers=as_(role, city.org_a)).status_code == 403
    assert client.get("/api/v1/records/me", headers=as_("doctor", city.org_a)).status_code == 403
    assert client.get("/api/v1/audit/events", headers=as_("doctor", city.org_a)).status_code == 403
    assert client.get(f"/api/v1/records/{city.person}").status_code == 401
    doc = as_("doctor", city.org_a, "dr-a")
    assert client.get("/api/v1/records/no-such-person", headers=doc).status_code == 403
    assert (
        client.get(f"/api/v1/records/{city.person}", params={"from": "9999-12-31"}, headers=doc).status_code
        == 422
    )
    assert (
        client.get(
            f"/api/v1/records/{city.person}", params={"from": "2025-03-02", "to": "2025-03-01"}, headers=doc
        ).status_code
        == 422
    )
    assert client.get(f"/api/v1/records/{city.person}/reports/{2**63}", headers=doc).status_code == 422
    assert client.get("/api/v1/records/a%27%20or%201=1", headers=doc).status_code in (403, 404, 422)


def test_measurements(client: TestClient, city: City, as_: H) -> None:
    me = as_("resident", None, city.id_number)
    r = client.post("/api/v1/records/me/measurements", json={"kind": "systolic", "value": 135}, headers=me)
    assert r.status_code == 201 and r.json()["code"] == "8480-6"
    assert (
        client.post(
            "/api/v1/records/me/measurements", json={"kind": "systolic", "value": 900}, headers=me
        ).status_code
        == 422
    )
    assert (
        client.post(
            "/api/v1/records/me/measurements", json={"kind": "mood", "value": 1}, headers=me
        ).status_code
        == 422
    )
    assert (
        client.post(
            "/api/v1/records/me/measurements",
            json={"kind": "weight", "value": 70, "measured_at": "2999-01-01T00:00:00+08:00"},
            headers=me,
        ).status_code
        == 422
    )
    mine = client.get("/api/v1/records/me", params={"kind": "measurement"}, headers=me).json()["entries"]
    assert any(e["id"] == r.json()["id"] for e in mine)
