"""The identity JSON API: roles and masking on every route, search, the review queue, merge and unmerge
round trip, audit of every lookup, precise errors for bad input."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.identity import service as svc
from rhip.registry.idnumber import make_id
from rhip.security.models import AuditEvent
from tests.factories import id_sequence

API = "/api/v1/identity"
BANDS = svc.Bands(auto=0.99999, review=0.3)  # strict, so the pair below is a review item
Auth = Callable[..., dict[str, str]]


def _pair(session: Session) -> tuple[svc.LinkResult, svc.LinkResult, str]:
    """Two records of one person that the model is unsure about (no ID number on the second)."""
    inst = "T" + uuid.uuid4().hex[:8].upper()
    born = date(1961, 10, 3)
    pid = make_id("320106", born, id_sequence("1"))  # odd: a man; new each call
    with session.begin():
        a = svc.link_record(
            session,
            institution_code=inst,
            local_id="1",
            id_number=pid,
            name="欧阳建华",
            birth_date=born,
            sex="1",
            phone="13611112222",
            district="320106",
            source="test",
            bands=BANDS,
        )
        b = svc.link_record(
            session,
            institution_code=inst + "X",
            local_id="9",
            id_number=None,
            name="欧阳建华",
            birth_date=born,
            sex="1",
            phone=None,
            district=None,
            source="test",
            bands=BANDS,
        )
    return a, b, pid


def test_person_read_is_masked_for_doctors_and_plain_for_managers(
    client: TestClient, auth: Auth, session: Session
) -> None:
    a, _b, pid = _pair(session)
    plain = client.get(f"{API}/persons/{a.person_id}", headers=auth("manager")).json()
    assert plain["name"] == "欧阳建华" and plain["id_number"] == pid
    masked = client.get(f"{API}/persons/{a.person_id}", headers=auth("doctor")).json()
    assert masked["name"] == "欧**华" and masked["id_number"] == pid[:6] + "*" * 8 + pid[-4:]
    assert masked["records"][0]["phone"] == "136****2222"
    assert client.get(f"{API}/persons/{a.person_id}").status_code == 401
    assert client.get(f"{API}/persons/{a.person_id}", headers=auth("resident")).status_code == 403
    assert client.get(f"{API}/persons/P404", headers=auth("manager")).status_code == 404
    with session.begin():
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.target == a.person_id)).all()
    assert actions.count("read.identity.person") >= 2


def test_search_by_name_pinyin_and_id(client: TestClient, auth: Auth, session: Session) -> None:
    a, _b, pid = _pair(session)
    for q in (pid, pid[:6] + pid[8:17], "欧阳建华", "ouyang jianhua", "ouyangjianhua"):
        got = client.get(f"{API}/persons", params={"q": q}, headers=auth("auditor"))
        assert got.status_code == 200, got.text
        assert a.person_id in [p["id"] for p in got.json()], q
    doc = client.get(f"{API}/persons", params={"q": pid}, headers=auth("agent")).json()
    assert all("*" in p["id_number"] for p in doc if p["id_number"])
    assert client.get(f"{API}/persons", params={"q": ""}, headers=auth("manager")).status_code == 422
    assert client.get(f"{API}/persons", params={"q": "x" * 41}, headers=auth("manager")).status_code == 422
    assert (
        client.get(f"{API}/persons", params={"q": pid}, headers=auth("uploader", "H001")).status_code == 403
    )
    with session.begin():
        audited = session.scalars(select(AuditEvent).where(AuditEvent.action == "read.identity.search")).all()
    assert audited and all(pid not in str(e.detail) for e in audited)  # no personal data in the log


def test_review_merge_unmerge_round_trip(client: TestClient, auth: Auth, session: Session) -> None:
    a, b, _pid = _pair(session)
    assert b.band == "review" and b.person_id != a.person_id, b
    queue = client.get(f"{API}/reviews", headers=auth("manager")).json()
    item = next(r for r in queue if r["record"]["id"] == b.record_id)
    assert item["candidate_person_id"] == a.person_id
    assert set(item["differing"]) <= {"phone", "district", "id_number"}
    assert client.get(f"{API}/reviews", headers=auth("doctor")).status_code == 403
    assert (
        client.post(
            f"{API}/reviews/{item['id']}", json={"decision": "merge"}, headers=auth("auditor")
        ).status_code
        == 403
    )
    bad = client.post(f"{API}/reviews/{item['id']}", json={"decision": "maybe"}, headers=auth("manager"))
    assert bad.status_code == 422
    done = client.post(f"{API}/reviews/{item['id']}", json={"decision": "merge"}, headers=auth("manager"))
    assert done.status_code == 200 and done.json()["status"] == "merged"
    again = client.post(f"{API}/reviews/{item['id']}", json={"decision": "merge"}, headers=auth("manager"))
    assert again.status_code == 409
    merged = client.get(f"{API}/persons/{a.person_id}", headers=auth("manager")).json()
    assert {r["id"] for r in merged["records"]} >= {a.record_id, b.record_id}
    gone = client.get(f"{API}/persons/{b.person_id}", headers=auth("manager")).json()
    assert gone["status"] == "merged" and gone["merged_into"] == a.person_id and gone["records"] == []
    undo = client.post(f"{API}/persons/{a.person_id}/unmerge", headers=auth("manager"))
    assert undo.status_code == 200, undo.text
    assert undo.json()["id"] == b.person_id and [r["id"] for r in undo.json()["records"]] == [b.record_id]
    back = client.get(f"{API}/persons/{a.person_id}", headers=auth("manager")).json()
    assert b.record_id not in [r["id"] for r in back["records"]]
    assert client.post(f"{API}/persons/{a.person_id}/unmerge", headers=auth("manager")).status_code == 404
    with session.begin():
        actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.target == a.person_id)))
    assert {"identity.merge", "identity.unmerge"} <= actions


def test_separate_keeps_them_apart(client: TestClient, auth: Auth, session: Session) -> None:
    _a, b, _pid = _pair(session)
    queue = client.get(f"{API}/reviews", params={"limit": 200}, headers=auth("admin")).json()
    item = next(r for r in queue if r["record"]["id"] == b.record_id)
    done = client.post(f"{API}/reviews/{item['id']}", json={"decision": "separate"}, headers=auth("admin"))
    assert done.status_code == 200 and done.json()["status"] == "separated"
    seps = client.get(f"{API}/reviews", params={"status": "separated"}, headers=auth("auditor")).json()
    assert item["id"] in [r["id"] for r in seps]


def test_link_route_checks_the_institution(client: TestClient, auth: Auth) -> None:
    body = {"institution_code": "H001", "local_id": "api-1", "name": "林小", "birth_date": "1999-09-09"}
    ok = client.post(f"{API}/link", json=body, headers=auth("uploader", "H001"))
    assert ok.status_code == 200 and ok.json()["band"] in ("new", "auto", "review")
    assert client.post(f"{API}/link", json=body, headers=auth("uploader", "H002")).status_code == 403
    bad = client.post(f"{API}/link", json={**body, "birth_date": "1999-02-30"}, headers=auth("admin"))
    assert bad.status_code == 422
    assert client.post(f"{API}/link", json={**body, "local_id": ""}, headers=auth("admin")).status_code == 422
