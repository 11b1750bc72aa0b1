"""FHIR AllergyIntolerance from the 过敏史 entries: search by patient and read by id under the same consent
and audit rules as the other record resources; they validate as R4B; the CapabilityStatement names them."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import func, select

from rhip.db.engine import Database
from rhip.lake.store import Lake
from rhip.records.models import AccessLog
from tests.records.conftest import City, ago, key, rec, send

H = Callable[..., dict[str, str]]
ACTION = "fhir-AllergyIntolerance"


def _allergies(db: Database, lake: Lake, city: City) -> None:
    """Two allergies recorded at A: penicillin (drug, life-threatening, laryngeal oedema) and peanut (food,
    mild, no reaction recorded)."""
    given = [("1", "青霉素", "J01CA04", "喉头水肿", "4", 900), ("2", "花生", "", "", "1", 3)]
    fields = ("allergen_type", "allergen_name", "allergen_code", "reaction", "severity")
    rows = [
        {
            **rec("allergy", city.org_a, when=ago(g[-1]), allergy_no=key("AL"), patient_id=city.pid_a),
            **dict(zip(fields, g[:-1], strict=True)),
            "recorded_at": ago(g[-1]),
        }
        for g in given
    ]
    send(db, lake, city.org_a, {"allergy": rows})


def _logged(db: Database, actor: str, outcome: str) -> int:
    with db.session() as s:
        q = select(func.count()).where(
            AccessLog.actor == actor, AccessLog.action == ACTION, AccessLog.outcome == outcome
        )
        return int(s.scalar(q) or 0)


def test_resident_reads_own_allergies_as_valid_r4(
    client: TestClient, city: City, as_: H, db: Database, lake: Lake
) -> None:
    _allergies(db, lake, city)
    me = as_("resident", None, city.id_number)
    r = client.get("/fhir/r4/AllergyIntolerance", headers=me)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    Bundle.model_validate(r.json())  # the Bundle and each AllergyIntolerance in it
    found = {e["resource"]["code"]["text"]: e["resource"] for e in r.json()["entry"]}
    assert set(found) == {"青霉素", "花生"} and r.json()["total"] == 2
    pen, nut = found["青霉素"], found["花生"]
    assert pen["criticality"] == "high" and pen["category"] == ["medication"]
    assert pen["reaction"][0]["severity"] == "severe"
    assert pen["reaction"][0]["manifestation"][0]["text"] == "喉头水肿"
    assert pen["code"]["coding"][0]["code"] == "J01CA04"
    assert pen["patient"]["reference"] == f"Patient/{city.person}"
    assert nut["criticality"] == "low" and nut["category"] == ["food"] and "reaction" not in nut
    one = client.get(f"/fhir/r4/AllergyIntolerance/{pen['id']}", headers=me)
    assert one.status_code == 200, one.text
    AllergyIntolerance.model_validate(one.json())
    assert one.json() == pen
    # $everything carries them too
    ev = client.get("/fhir/r4/Patient/me/$everything", headers=me).json()
    assert {"青霉素", "花生"} <= {
        e["resource"]["code"]["text"]
        for e in ev["entry"]
        if e["resource"]["resourceType"] == "AllergyIntolerance"
    }
    # another resident: not theirs (not found, and nothing of it shown)
    other = as_("resident", None, "11010519491231002X")
    miss = client.get(f"/fhir/r4/AllergyIntolerance/{pen['id']}", headers=other)
    assert miss.status_code in (403, 404) and "青霉素" not in miss.text


def test_clinicians_need_consent_and_every_read_is_logged(
    client: TestClient, city: City, as_: H, db: Database, lake: Lake
) -> None:
    _allergies(db, lake, city)
    me = as_("resident", None, city.id_number)
    rid = client.get("/fhir/r4/AllergyIntolerance", headers=me).json()["entry"][0]["resource"]["id"]
    doc = as_("doctor", city.org_c, "dr-allergy")  # C holds no record of this person's allergies
    for path in (f"/fhir/r4/AllergyIntolerance?patient={city.person}", f"/fhir/r4/AllergyIntolerance/{rid}"):
        refused = client.get(path, headers=doc)
        assert refused.status_code == 403, path
        assert refused.json()["resourceType"] == "OperationOutcome" and "青霉素" not in refused.text
    assert _logged(db, "dr-allergy", "refused") == 2
    g = client.post("/api/v1/records/me/consents", json={"institution_code": city.org_c}, headers=me)
    assert g.status_code == 201
    search = client.get("/fhir/r4/AllergyIntolerance", params={"patient": city.person}, headers=doc)
    assert search.status_code == 200 and search.json()["total"] == 2
    read = client.get(f"/fhir/r4/AllergyIntolerance/{rid}", headers=doc)
    assert read.status_code == 200 and read.json()["id"] == rid
    assert _logged(db, "dr-allergy", "allowed") == 2
    with db.session() as s:
        last = s.scalars(
            select(AccessLog).where(AccessLog.actor == "dr-allergy").order_by(AccessLog.id.desc())
        ).first()
    assert last is not None and last.person_id == city.person
    assert last.basis == f"consent:{g.json()['id']}" and last.detail == f"entry {rid.removeprefix('rhip-')}"
    # B's own-institution view does not cover A's allergies: none in the search, the read not found
    doc_b = as_("doctor", city.org_b, "dr-allergy-b")
    assert (
        client.get("/fhir/r4/AllergyIntolerance", params={"patient": city.person}, headers=doc_b).json()[
            "total"
        ]
        == 0
    )
    assert client.get(f"/fhir/r4/AllergyIntolerance/{rid}", headers=doc_b).status_code == 404
    # A, where they were recorded, sees them as its own
    doc_a = as_("doctor", city.org_a, "dr-allergy-a")
    assert client.get(f"/fhir/r4/AllergyIntolerance/{rid}", headers=doc_a).status_code == 200


def test_roles_and_bad_ids(client: TestClient, city: City, as_: H, auth: H) -> None:
    for role in ("auditor", "admin", "manager", "uploader", "agent"):
        r = client.get(
            "/fhir/r4/AllergyIntolerance", params={"patient": city.person}, headers=auth(role, "H001")
        )
        assert r.status_code == 403, role
        assert client.get("/fhir/r4/AllergyIntolerance/rhip-1", headers=auth(role, "H001")).status_code == 403
    assert client.get(f"/fhir/r4/AllergyIntolerance?patient={city.person}").status_code == 401
    assert client.get("/fhir/r4/AllergyIntolerance/rhip-1").status_code == 401
    doc = as_("doctor", city.org_a, "dr-allergy-ids")
    for rid in ("rhip-abc", "other-1", "rhip-999999999999", "rhip-" + "9" * 30):
        r = client.get(f"/fhir/r4/AllergyIntolerance/{rid}", headers=doc)
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome", rid
    assert client.get("/fhir/r4/AllergyIntolerance", headers=doc).status_code == 422  # patient required


def test_capability_statement_declares_allergy_intolerance(client: TestClient) -> None:
    meta = client.get("/fhir/r4/metadata").json()
    res = next(r for r in meta["rest"][0]["resource"] if r["type"] == "AllergyIntolerance")
    assert {i["code"] for i in res["interaction"]} == {"read", "search-type"}
    assert "patient" in {p["name"] for p in res["searchParam"]}
