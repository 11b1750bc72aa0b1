"""FHIR identity routes: Person/{id}, Person?link=, Patient?identifier=, Patient/{id}, Patient/$match;
masking for doctors and agents; OperationOutcome for bad input."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rhip.identity import service as svc
from rhip.registry.idnumber import make_id
from tests.factories import id_sequence

FHIR = "/fhir/r4"
ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"
Auth = Callable[..., dict[str, str]]


def _person(session: Session) -> tuple[svc.LinkResult, svc.LinkResult, str, str]:
    inst = "F" + uuid.uuid4().hex[:8].upper()
    born = date(1984, 11, 23)
    pid = make_id("320115", born, id_sequence("2"))  # even: a woman; new each call
    with session.begin():
        a = svc.link_record(
            session,
            institution_code=inst,
            local_id="MR001",
            id_number=pid,
            name="单丽萍",
            birth_date=born,
            sex="2",
            phone="15850001234",
            district="320115",
            source="test",
        )
        b = svc.link_record(
            session,
            institution_code=inst + "B",
            local_id="77",
            id_number=pid[:6] + pid[8:17],
            name="单丽平",
            birth_date=born,
            sex="2",
            phone=None,
            district=None,
            source="test",
        )
    return a, b, pid, inst


def test_person_links_every_patient(client: TestClient, auth: Auth, session: Session) -> None:
    a, b, pid, _inst = _person(session)
    assert a.person_id == b.person_id
    got = client.get(f"{FHIR}/Person/{a.person_id}", headers=auth("manager"))
    assert got.status_code == 200 and got.headers["content-type"].startswith("application/fhir+json")
    person = got.json()
    assert person["resourceType"] == "Person" and person["active"] is True
    assert {x["target"]["reference"] for x in person["link"]} == {
        f"Patient/{a.record_id}",
        f"Patient/{b.record_id}",
    }
    assert {x["assurance"] for x in person["link"]} <= {"level1", "level3"}
    assert person["identifier"][0]["system"] == ID_SYSTEM and person["identifier"][0]["value"] == pid
    by_link = client.get(
        f"{FHIR}/Person", params={"link": f"Patient/{b.record_id}"}, headers=auth("auditor")
    ).json()
    assert [e["resource"]["id"] for e in by_link["entry"]] == [a.person_id]
    masked = client.get(f"{FHIR}/Person/{a.person_id}", headers=auth("doctor")).json()
    assert masked["name"][0]["text"] == "单*萍" and "*" in masked["identifier"][0]["value"]
    missing = client.get(f"{FHIR}/Person/P0", headers=auth("manager"))
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"{FHIR}/Person/{a.person_id}").status_code == 401
    assert client.get(f"{FHIR}/Person/{a.person_id}", headers=auth("resident")).status_code == 403
    assert client.get(f"{FHIR}/Person", headers=auth("manager")).status_code == 400


def test_patient_by_identifier_keeps_each_institutions_ids(
    client: TestClient, auth: Auth, session: Session
) -> None:
    a, _b, pid, inst = _person(session)
    got = client.get(
        f"{FHIR}/Patient", params={"identifier": f"{ID_SYSTEM}|{pid}"}, headers=auth("manager")
    ).json()
    assert got["total"] == 2
    first = next(e["resource"] for e in got["entry"] if e["resource"]["id"] == str(a.record_id))
    mr = next(i for i in first["identifier"] if i["type"]["coding"][0]["code"] == "MR")
    assert mr["value"] == "MR001" and mr["assigner"]["identifier"]["value"] == inst
    nn = next(i for i in first["identifier"] if i["type"]["coding"][0]["code"] == "NNCHN")
    assert nn["system"] == ID_SYSTEM and nn["value"] == pid
    local = client.get(
        f"{FHIR}/Patient",
        params={"identifier": f"urn:rhip:institution:{inst}:patient|MR001"},
        headers=auth("manager"),
    ).json()
    assert [e["resource"]["id"] for e in local["entry"]] == [str(a.record_id)]
    one = client.get(f"{FHIR}/Patient/{a.record_id}", headers=auth("agent")).json()
    assert one["name"][0]["text"] == "单*萍"
    bad = client.get(f"{FHIR}/Patient", params={"identifier": f"{ID_SYSTEM}|12345"}, headers=auth("manager"))
    assert bad.status_code == 422 and bad.json()["resourceType"] == "OperationOutcome"
    other = client.get(
        f"{FHIR}/Patient", params={"identifier": "urn:oid:2.16.156.10011.1.1|x"}, headers=auth("manager")
    )
    assert other.status_code == 422


def _params(patient: dict[str, object], **extra: object) -> dict[str, object]:
    params: list[dict[str, object]] = [{"name": "resource", "resource": patient}]
    if "only" in extra:
        params.append({"name": "onlyCertainMatches", "valueBoolean": extra["only"]})
    if "count" in extra:
        params.append({"name": "count", "valueInteger": extra["count"]})
    return {"resourceType": "Parameters", "parameter": params}


def test_match_scores_candidates(client: TestClient, auth: Auth, session: Session) -> None:
    a, _b, pid, _inst = _person(session)
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]
                },
                "value": pid,
            }
        ],
        "name": [{"family": "单", "given": ["丽萍"]}],
        "gender": "female",
        "birthDate": "1984-11-23",
    }
    got = client.post(f"{FHIR}/Patient/$match", json=_params(patient, count=5), headers=auth("doctor"))
    assert got.status_code == 200, got.text
    bundle = got.json()
    assert bundle["type"] == "searchset" and bundle["entry"]
    top = bundle["entry"][0]
    assert top["search"]["score"] > 0.99
    assert top["search"]["extension"][0]["valueCode"] == "certain"
    assert top["resource"]["name"][0]["text"] == "单*萍"  # a doctor sees it masked
    person = client.get(
        f"{FHIR}/Person", params={"link": f"Patient/{top['resource']['id']}"}, headers=auth("manager")
    )
    assert person.json()["entry"][0]["resource"]["id"] == a.person_id
    # a namesake without an ID number is at most probable, and onlyCertainMatches drops it
    weak = {"resourceType": "Patient", "name": [{"text": "单丽萍"}], "gender": "female"}
    loose = client.post(f"{FHIR}/Patient/$match", json=_params(weak), headers=auth("agent")).json()
    assert all(e["search"]["extension"][0]["valueCode"] != "certain" for e in loose.get("entry", []))
    strict = client.post(
        f"{FHIR}/Patient/$match", json=_params(weak, only=True), headers=auth("agent")
    ).json()
    assert strict["total"] == 0
    bare = client.post(f"{FHIR}/Patient/$match", json=patient, headers=auth("manager"))
    assert bare.status_code == 200 and bare.json()["entry"]


def test_match_refuses_bad_input_with_operation_outcome(client: TestClient, auth: Auth) -> None:
    h = auth("manager")
    for body in ({"resourceType": "Observation"}, {"resourceType": "Parameters", "parameter": []}):
        r = client.post(f"{FHIR}/Patient/$match", json=body, headers=h)
        assert r.status_code in (400, 422) and r.json()["resourceType"] == "OperationOutcome"
    r = client.post(
        f"{FHIR}/Patient/$match", content=b"{not json", headers={**h, "content-type": "application/fhir+json"}
    )
    assert r.status_code == 400
    p = {"resourceType": "Patient", "birthDate": "1984-02-30"}
    assert client.post(f"{FHIR}/Patient/$match", json=_params(p), headers=h).status_code == 422
    assert client.post(f"{FHIR}/Patient/$match", json=_params(p, count=0), headers=h).status_code == 422
    assert client.post(f"{FHIR}/Patient/$match", json=_params(p)).status_code == 401
    assert (
        client.post(f"{FHIR}/Patient/$match", json=_params(p), headers=auth("uploader", "H001")).status_code
        == 403
    )
