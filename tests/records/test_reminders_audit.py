"""Smart reminders on hand-made histories, CDS Hooks answers in the spec's shape, and the access log:
written before data, fail closed, a hash chain that catches an edited or deleted row."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import polars as pl
from fastapi.testclient import TestClient
from sqlalchemy import text, update
from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.db.engine import Database
from rhip.intake import service as intake
from rhip.intake.reading import frame_of
from rhip.lake.store import Lake
from rhip.records import audit, reminders, service
from rhip.records.consent import Access
from rhip.records.models import AccessLog, ChainHead
from rhip.registry import catalogue
from rhip.security.roles import Role
from rhip.security.service import Principal
from tests.records.conftest import City, ago, key, rec, send

H = Callable[..., dict[str, str]]


def _access(s: Session, city: City) -> Access:
    """The resident's own access, decided (and logged) as any view is."""
    me = Principal(subject=city.id_number, role=Role.resident)
    return service.check_access(s, principal=me, person_id=city.person, action="reminders")


def test_repeat_exam_within_window_only(db: Database, city: City) -> None:
    with db.session() as s, s.begin():
        ct = reminders.compute(s, access=_access(s, city), orders=[reminders.Order("胸部CT平扫", "CT")])
        assert [r.rule for r in ct if r.category == "repeat"] == ["ct"]
        assert ct[0].indicator in ("warning", "critical")
        # 35 days later the CT is outside its 30-day window; the blood test (7 days) too
        later = reminders.compute(
            s,
            access=_access(s, city),
            orders=[reminders.Order("胸部CT", "CT"), reminders.Order("血常规")],
            at=now() + timedelta(days=35),
        )
        assert not [r for r in later if r.category == "repeat"]
        cbc = reminders.compute(s, access=_access(s, city), orders=[reminders.Order("血常规")])
        assert [r.rule for r in cbc if r.category == "repeat"] == ["cbc"]
        nothing = reminders.compute(s, access=_access(s, city), orders=[reminders.Order("甲状腺功能")])
        assert not [r for r in nothing if r.category == "repeat"]


def test_patient_view_reminders_followup_and_abnormal(db: Database, city: City) -> None:
    with db.session() as s, s.begin():
        found = reminders.compute(s, access=_access(s, city))
    cats = {r.category for r in found}
    assert {"followup", "abnormal", "repeat"} <= cats
    overdue = next(r for r in found if r.category == "followup")
    assert "逾期 30 天" in overdue.summary
    abnormal = next(r for r in found if r.category == "abnormal")
    assert abnormal.indicator == "critical" and "白细胞" in abnormal.detail  # HH is critical
    assert found[0].indicator == "critical"  # most urgent first


def test_cds_hooks_discovery_and_cards(client: TestClient, city: City, as_: H) -> None:
    d = client.get("/cds-services").json()
    hooks = {s["hook"] for s in d["services"]}
    assert hooks == {"patient-view", "order-select"}
    assert all({"id", "hook", "description"} <= set(s) for s in d["services"])
    doc = as_("doctor", city.org_a, "dr-a")  # own institution: sees only A's records
    pv = client.post(
        "/cds-services/rhip-patient-view",
        json={
            "hook": "patient-view",
            "hookInstance": "a1",
            "context": {"userId": "Practitioner/1", "patientId": city.person},
        },
        headers=doc,
    )
    assert pv.status_code == 200, pv.text
    cards = pv.json()["cards"]
    assert cards and all(set(c) >= {"summary", "indicator", "source"} for c in cards)
    assert all(len(c["summary"]) <= 140 and c["indicator"] in ("info", "warning", "critical") for c in cards)
    draft = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "ServiceRequest",
                    "status": "draft",
                    "intent": "order",
                    "code": {"coding": [{"code": "CT", "display": "胸部CT"}], "text": "胸部CT"},
                }
            }
        ],
    }
    me = as_("resident", None, city.id_number)
    client.post("/api/v1/records/me/consents", json={"institution_code": city.org_c}, headers=me)
    os_ = client.post(
        "/cds-services/rhip-order-select",
        json={
            "hook": "order-select",
            "hookInstance": "b2",
            "context": {
                "userId": "Practitioner/2",
                "patientId": city.person,
                "selections": [],
                "draftOrders": draft,
            },
        },
        headers=as_("doctor", city.org_c, "dr-c"),
    )
    assert os_.status_code == 200, os_.text
    assert any("CT" in c["summary"] for c in os_.json()["cards"])
    wrong = client.post(
        "/cds-services/rhip-order-select",
        json={"hook": "patient-view", "hookInstance": "x", "context": {"patientId": city.person}},
        headers=doc,
    )
    assert wrong.status_code == 422
    assert (
        client.post(
            "/cds-services/nope",
            json={"hook": "patient-view", "hookInstance": "x", "context": {}},
            headers=doc,
        ).status_code
        == 404
    )
    refused = client.post(
        "/cds-services/rhip-patient-view",
        json={"hook": "patient-view", "hookInstance": "c3", "context": {"patientId": city.other}},
        headers=doc,
    )
    assert refused.status_code == 403


def test_chain_verifies_and_catches_edits_and_deletions(
    client: TestClient, city: City, as_: H, db: Database
) -> None:
    me = as_("resident", None, city.id_number)
    for _ in range(3):
        assert client.get("/api/v1/records/me", headers=me).status_code == 200
    auditor = as_("auditor")
    assert client.get("/api/v1/audit/verify", headers=auditor).json()["broken_at"] is None
    with db.session() as s, s.begin():
        last = s.query(AccessLog).order_by(AccessLog.id.desc()).first()
        assert last is not None
        target, original = last.id - 1, None
        row = s.get(AccessLog, target)
        assert row is not None
        original = row.actor
        s.execute(update(AccessLog).where(AccessLog.id == target).values(actor="someone-else"))
    v = client.get("/api/v1/audit/verify", headers=auditor).json()
    assert v["broken_at"] == target and "修改" in v["reason"]
    with db.session() as s, s.begin():
        s.execute(update(AccessLog).where(AccessLog.id == target).values(actor=original))
        assert audit.verify(s).broken_at is None
        saved = s.get(AccessLog, target)
        assert saved is not None
        s.delete(saved)
    with db.session() as s, s.begin():
        v2 = audit.verify(s)
    assert v2.broken_at == target + 1 and "断开" in (v2.reason or "")
    # mend the chain for the other tests: re-link the rows of its chain after the gap
    chain = audit.chain_of(city.person)
    with db.session() as s, s.begin():
        mine = s.query(AccessLog).filter(AccessLog.chain == chain)
        prev = mine.filter(AccessLog.id < target).order_by(AccessLog.id.desc()).first()
        prev_hash = prev.hash if prev else audit.GENESIS
        for r in mine.filter(AccessLog.id > target).order_by(AccessLog.id):
            r.prev_hash = prev_hash
            r.hash = audit.digest(prev_hash, r)
            prev_hash = r.hash
        s.flush()
        head = s.get(ChainHead, chain + 1)
        assert head is not None
        head.last_hash = prev_hash
    with db.session() as s, s.begin():
        assert audit.verify(s).broken_at is None


def test_fail_closed_when_the_log_cannot_be_written(
    client: TestClient, city: City, as_: H, db: Database
) -> None:
    me = as_("resident", None, city.id_number)
    with db.session() as s, s.begin():
        s.execute(text("ALTER TABLE records_access_log RENAME TO records_access_log_away"))
    try:
        r = client.get("/api/v1/records/me", headers=me)
        assert r.status_code == 503 and r.json()["code"] == "audit-unavailable"
        assert "entries" not in r.text and city.org_a not in r.text
    finally:
        with db.session() as s, s.begin():
            s.execute(text("ALTER TABLE records_access_log_away RENAME TO records_access_log"))
    assert client.get("/api/v1/records/me", headers=me).status_code == 200


def test_allergy_from_intake_reaches_the_reminders(db: Database, city: City, lake: Lake) -> None:
    """An allergy uploaded in the catalogue's 过敏史 table is absorbed at intake's commit and reminded
    (critical when severe, whenever it was recorded); a bad severity code is refused by intake."""
    # (allergen type, name, code, reaction, severity, days ago)
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
    with db.session() as s, s.begin():
        found = [r for r in reminders.compute(s, access=_access(s, city)) if r.category == "allergy"]
        entries = service.timeline(s, access=_access(s, city), kinds=["allergy"])
    assert {e.title for e in entries} == {"青霉素", "花生"}
    by = {r.summary.split("（")[0]: r for r in found}
    assert by["过敏史：青霉素"].indicator == "critical" and "喉头水肿" in by["过敏史：青霉素"].summary
    assert "危及生命" in by["过敏史：青霉素"].summary
    assert by["过敏史：花生"].indicator == "warning" and "轻度" in by["过敏史：花生"].summary
    bad = rec("allergy", city.org_a, allergy_no=key("AL"), patient_id=city.pid_a, severity="7")
    df = pl.DataFrame([{f: bad.get(f) for f in catalogue.get("allergy").field_names}])
    receipt = intake.ingest(
        db,
        lake,
        institution_code=city.org_a,
        submitted_by="records-test",
        frames={"allergy": frame_of(catalogue.get("allergy"), df.cast(pl.String).to_arrow())},
    )
    assert receipt.outcome.total().rejected == 1


def test_timeline_with_reminders_equals_the_reminders_alone(client: TestClient, city: City, as_: H) -> None:
    """The reminders evaluated over the timeline just read are those of their own read (one view, one log
    row, `view-reminders`); the entries are the plain timeline's."""
    doc = as_("doctor", city.org_a, "dr-both")
    both = client.get(f"/api/v1/records/{city.person}", params={"reminders": "true"}, headers=doc)
    plain = client.get(f"/api/v1/records/{city.person}", headers=doc)
    alone = client.post(f"/api/v1/records/{city.person}/reminders", json={"orders": []}, headers=doc)
    assert both.status_code == plain.status_code == alone.status_code == 200
    assert both.json()["entries"] == plain.json()["entries"] and plain.json()["reminders"] is None
    got = both.json()["reminders"]
    assert got and got == alone.json()
    assert {r["category"] for r in got} >= {"abnormal"}
