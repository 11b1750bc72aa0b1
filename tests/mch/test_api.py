"""The MCH JSON API: roles, institution scope, masking for managers, audited reads, problem+json refusals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.security.models import AuditEvent
from tests.mch.conftest import child_id, unique, woman_id

Auth = Callable[..., dict[str, str]]
API = "/api/v1/mch"


def _register(client: TestClient, auth: Auth, **extra: object) -> dict[str, object]:
    body = {
        "local_id": unique("API"),
        "id_number": woman_id(),
        "name": "赵丽",
        "registered_on": "2025-02-03",
        "gestational_week": 9,
        **extra,
    }
    r = client.post(f"{API}/pregnancies", json=body, headers=auth("doctor", institution="F320102"))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_worker_records_the_episode_and_refusals_are_precise(client: TestClient, auth: Auth) -> None:
    doc = auth("doctor", institution="F320102")
    p = _register(client, auth, colour="orange", case_owner="周医生")
    assert (p["institution_code"], p["district_code"], p["colour"], p["case_owner"]) == (
        "F320102",
        "320102",
        "orange",
        "周医生",
    )
    url = f"{API}/pregnancies/{p['id']}"
    r = client.post(f"{url}/visits", json={"visit_date": "2025-02-01"}, headers=doc)
    assert r.status_code == 422 and r.json()["code"] == "visit-before-registration"
    assert "早于建册日期" in r.json()["detail"]
    r = client.post(
        f"{url}/visits", json={"visit_date": "2025-02-03", "systolic": 118, "diastolic": 76}, headers=doc
    )
    assert r.status_code == 201 and r.json()["kind"] == "first" and r.json()["gestational_week"] == 9
    r = client.post(
        f"{url}/delivery",
        json={
            "delivered_on": "2025-03-10",
            "place": "institution",
            "institution_code": "H025",
            "method": "vaginal",
            "live_births": 1,
        },
        headers=doc,
    )
    assert r.status_code == 422 and r.json()["code"] == "delivery-before-20-weeks"
    r = client.post(f"{url}/assessments", json={"assessed_on": "2025-02-20", "colour": "red"}, headers=doc)
    assert r.status_code == 201 and r.json()["previous_colour"] == "orange"
    r = client.post(f"{url}/follow-ups", json={"followed_on": "2025-02-25", "method": "phone"}, headers=doc)
    assert r.status_code == 201 and r.json()["next_due_on"] == "2025-03-04"
    other = auth("doctor", institution="F320106")
    assert client.get(url, headers=other).status_code == 403  # another district's worker
    r = client.post(
        f"{url}/visits", json={"visit_date": "2025-02-10", "institution_code": "F320106"}, headers=doc
    )
    assert r.status_code == 403  # recording for another institution
    assert client.post(f"{API}/pregnancies", json={"local_id": "x"}, headers=doc).status_code == 422
    assert client.get(f"{API}/pregnancies/999999999", headers=doc).status_code == 404


def test_manager_sees_masked_identities_and_reads_are_audited(
    client: TestClient, auth: Auth, session: Session
) -> None:
    p = _register(client, auth)
    r = client.get(f"{API}/pregnancies/{p['id']}", headers=auth("manager", subject="mgr-mch"))
    assert r.status_code == 200
    seen = r.json()["pregnancy"]
    assert seen["name"] == "赵*" and "*" in seen["id_number"] and seen["id_number"] != p["id_number"]
    full = client.get(f"{API}/pregnancies/{p['id']}", headers=auth("doctor", institution="F320102")).json()
    assert full["pregnancy"]["id_number"] == p["id_number"]
    with session.begin():
        events = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "mch.read", AuditEvent.target == f"mch_pregnancy:{p['id']}"
            )
        ).all()
    assert {e.actor for e in events} >= {"mgr-mch", "tester"}
    assert client.get(f"{API}/pregnancies", headers=auth("resident")).status_code == 403
    assert client.post(f"{API}/pregnancies", json={}, headers=auth("manager")).status_code == 403


def test_child_registered_under_mother_then_linked(client: TestClient, auth: Auth) -> None:
    doc = auth("doctor", institution="F320102")
    born = date(2025, 1, 20)
    mother = woman_id()
    body = {
        "local_id": unique("CAPI"),
        "name": "钱宝",
        "sex": "2",
        "birth_date": born.isoformat(),
        "registered_on": (born + timedelta(days=2)).isoformat(),
        "mother_id_number": mother,
        "birth_certificate_no": f"Q{320000000 + int(unique('')):09d}"[:10],
    }
    r = client.post(f"{API}/children", json=body, headers=doc)
    assert r.status_code == 201, r.text
    c = r.json()
    assert (c["mother_id_number"], c["id_number"]) == (mother, None)
    r = client.post(
        f"{API}/children/{c['id']}/visits",
        json={"visit_date": "2025-01-25", "kind": "newborn", "weight_kg": 3.4},
        headers=doc,
    )
    assert r.status_code == 201 and r.json()["age_days"] == 5
    own = child_id(born, "2")
    r = client.post(f"{API}/children/{c['id']}/link", json={"id_number": own}, headers=doc)
    assert r.status_code == 200 and r.json()["id_number"] == own and r.json()["mother_id_number"] == mother
    r = client.get(f"{API}/children?q={own}", headers=doc)
    assert [x["id"] for x in r.json()["items"]] == [c["id"]]
    detail = client.get(f"{API}/children/{c['id']}", headers=doc).json()
    assert len(detail["visits"]) == 1


def test_high_risk_list_and_usage(client: TestClient, auth: Auth) -> None:
    p = _register(client, auth, colour="red", case_owner="吴医生")
    r = client.get(f"{API}/high-risk?on=2025-02-20", headers=auth("doctor", institution="F320102"))
    assert r.status_code == 200
    row = next(x for x in r.json() if x["pregnancy_id"] == p["id"])
    assert row["overdue_days"] == 10 and row["colour"] == "red"
    r = client.get(f"{API}/usage?month=2025-02", headers=auth("manager"))
    assert r.status_code == 200 and r.json()["columns"][1] == "妇女登记"
    assert client.get(f"{API}/usage?month=2025-2", headers=auth("manager")).status_code == 422


def test_termination_and_deaths(client: TestClient, auth: Auth) -> None:
    doc = auth("doctor", institution="F320102")
    p = _register(client, auth)
    url = f"{API}/pregnancies/{p['id']}"
    r = client.post(f"{url}/termination", json={"ended_on": "2025-06-30"}, headers=doc)
    assert r.status_code == 422 and r.json()["code"] == "end-after-20-weeks"
    r = client.post(f"{url}/termination", json={"ended_on": "2025-02-20"}, headers=doc)
    assert r.status_code == 200 and r.json()["status"] == "terminated"
    r = client.post(f"{url}/death", json={"died_on": "2025-05-20"}, headers=doc)
    assert r.status_code == 422 and r.json()["code"] == "not-maternal-death"
    born = date(2024, 12, 1)
    c = client.post(
        f"{API}/children",
        json={
            "local_id": unique("CD"),
            "name": "孙宝",
            "sex": "1",
            "birth_date": born.isoformat(),
            "registered_on": born.isoformat(),
            "mother_id_number": woman_id(),
        },
        headers=doc,
    ).json()
    r = client.post(f"{API}/children/{c['id']}/death", json={"died_on": "2024-11-30"}, headers=doc)
    assert r.status_code == 422
    r = client.post(f"{API}/children/{c['id']}/death", json={"died_on": "2025-02-01"}, headers=doc)
    assert r.status_code == 200 and r.json()["died_on"] == "2025-02-01"
