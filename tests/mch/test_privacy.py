"""Every read of personal data in MCH — API and pages — is audited with the reader, and a manager sees names
and ID numbers masked while the district's own worker sees them whole."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.security import masking
from rhip.security.models import AuditEvent
from tests.mch.conftest import unique, woman_id

Auth = Callable[..., dict[str, str]]
API = "/api/v1/mch"
NAME, CHILD = "孙晓红", "孙小宝"


def _readers(session: Session, target: str) -> set[str]:
    with session.begin():
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "mch.read", AuditEvent.target == target)
        ).all()
        return {e.actor for e in events}


def _people(client: TestClient, auth: Auth) -> tuple[dict[str, object], dict[str, object]]:
    doc = auth("doctor", institution="F320102")
    mother = woman_id(date(1990, 7, 8))
    p = client.post(
        f"{API}/pregnancies",
        json={
            "local_id": unique("PRV"),
            "id_number": mother,
            "name": NAME,
            "registered_on": "2025-03-03",
            "gestational_week": 9,
            "colour": "orange",
            "case_owner": "周医生",
        },
        headers=doc,
    )
    c = client.post(
        f"{API}/children",
        json={
            "local_id": unique("PRC"),
            "name": CHILD,
            "sex": "1",
            "birth_date": "2025-02-01",
            "registered_on": "2025-02-03",
            "mother_id_number": mother,
        },
        headers=doc,
    )
    assert p.status_code == 201 and c.status_code == 201, (p.text, c.text)
    return p.json(), c.json()


def test_api_reads_are_masked_for_managers_and_audited(
    client: TestClient, auth: Auth, session: Session
) -> None:
    p, c = _people(client, auth)
    mgr = auth("manager", subject="mgr-privacy")
    child = client.get(f"{API}/children/{c['id']}", headers=mgr).json()["child"]
    # security.masking's rules (the "mch" view): 孙*宝, and the area code and last four of the number
    assert child["name"] == "孙*宝" and child["mother_id_number"] == masking.mask_id(p["id_number"])
    assert str(child["mother_id_number"]).startswith(str(p["id_number"])[:6] + "********")
    listed = client.get(f"{API}/children", params={"q": p["id_number"]}, headers=mgr).json()["items"]
    assert [x["name"] for x in listed] == ["孙*宝"]
    cases = client.get(f"{API}/high-risk", params={"on": "2025-03-20"}, headers=mgr).json()
    assert next(x for x in cases if x["pregnancy_id"] == p["id"])["name"] == "孙*红"
    women = client.get(f"{API}/pregnancies", params={"q": p["id_number"]}, headers=mgr).json()["items"]
    assert [(w["name"], "*" in w["id_number"]) for w in women] == [("孙*红", True)]
    doc = auth("doctor", institution="F320102", subject="doc-privacy")
    whole = client.get(f"{API}/children/{c['id']}", headers=doc).json()["child"]
    assert (whole["name"], whole["mother_id_number"]) == (CHILD, p["id_number"])
    assert _readers(session, f"mch_child:{c['id']}") == {"mgr-privacy", "doc-privacy"}
    # a doctor of another district is refused, and auditors do not read personal records
    other = auth("doctor", institution="F320106", subject="doc-gulou")
    assert client.get(f"{API}/children/{c['id']}", headers=other).status_code == 403
    assert client.get(f"{API}/children", headers=auth("auditor")).status_code == 403


def test_pages_are_masked_for_managers_and_audited(client: TestClient, auth: Auth, session: Session) -> None:
    p, c = _people(client, auth)
    mgr = auth("manager", subject="mgr-pages")
    page = client.get(f"/mch/pregnancies/{p['id']}", headers=mgr)
    assert page.status_code == 200
    assert NAME not in page.text and str(p["id_number"]) not in page.text and "孙*红" in page.text
    child = client.get(f"/mch/children/{c['id']}", headers=mgr)
    assert child.status_code == 200 and CHILD not in child.text and str(p["id_number"]) not in child.text
    listing = client.get("/mch", params={"q": p["id_number"]}, headers=mgr)
    assert listing.status_code == 200 and NAME not in listing.text and CHILD not in listing.text
    cases = client.get("/mch/high-risk", params={"on": "2025-03-20"}, headers=mgr)
    assert cases.status_code == 200 and NAME not in cases.text
    doc = auth("doctor", institution="F320102", subject="doc-pages")
    whole = client.get(f"/mch/pregnancies/{p['id']}", headers=doc)
    assert NAME in whole.text and str(p["id_number"]) in whole.text
    assert _readers(session, f"mch_pregnancy:{p['id']}") >= {"mgr-pages", "doc-pages"}
    assert _readers(session, f"mch_child:{c['id']}") >= {"mgr-pages"}
    assert "mgr-pages" in _readers(session, "mch_home") and "mgr-pages" in _readers(session, "mch_high_risk")
    assert client.get(f"/mch/pregnancies/{p['id']}", headers=auth("resident")).status_code == 403


def test_forms_refuse_records_of_another_district(client: TestClient, auth: Auth, session: Session) -> None:
    p, c = _people(client, auth)
    other = auth("doctor", institution="F320106")  # 鼓楼: the records are managed in 玄武
    r = client.post(f"/mch/pregnancies/{p['id']}/visits", data={"visit_date": "2025-03-10"}, headers=other)
    assert r.status_code == 403
    r = client.post(f"/mch/children/{c['id']}/visits", data={"visit_date": "2025-03-10"}, headers=other)
    assert r.status_code == 403
    own = auth("doctor", institution="F320102")
    r = client.post(
        f"/mch/pregnancies/{p['id']}/visits",
        data={"visit_date": "2025-03-10"},
        headers=own,
        follow_redirects=False,
    )
    assert r.status_code == 303 and "msg=" in r.headers["location"]
    detail = client.get(f"{API}/pregnancies/{p['id']}", headers=own).json()
    assert len(detail["antenatal"]) == 1
