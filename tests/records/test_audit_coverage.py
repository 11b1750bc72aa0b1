"""Every read of personal data in records is logged: each route of the JSON API, the pages, FHIR and CDS
Hooks that shows a person's data (or who looked at it) adds its row to the access log, with the reader,
the person and the action; an auditor's reads of the log are logged too."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from rhip.db.engine import Database
from rhip.records import audit
from rhip.records.models import AccessLog
from tests.records.conftest import City

H = Callable[..., dict[str, str]]


def _rows(db: Database, actor: str, person: str, action: str) -> int:
    with db.session() as s, s.begin():
        q = select(func.count()).where(
            AccessLog.actor == actor, AccessLog.person_id == person, AccessLog.action == action
        )
        return int(s.scalar(q) or 0)


def test_every_personal_read_is_logged(client: TestClient, city: City, as_: H, db: Database) -> None:
    me = as_("resident", None, city.id_number)
    doc = as_("doctor", city.org_a, "dr-cover")  # own institution: allowed, A's entries only
    auditor = as_("auditor", None, "aud-cover")
    p = city.person
    report = client.get("/api/v1/records/me/reports", headers=me).json()[0]["id"]
    hook = {"hook": "patient-view", "hookInstance": "cover", "context": {"patientId": p}}
    orders = {"orders": [{"name": "血常规"}]}
    # (who, subject, method, path, body, person logged, action)
    cases = [
        (me, city.id_number, "GET", "/api/v1/records/me", None, p, "view"),
        (me, city.id_number, "GET", "/api/v1/records/me/reports", None, p, "reports"),
        (me, city.id_number, "GET", f"/api/v1/records/me/reports/{report}", None, p, "report"),
        (me, city.id_number, "GET", "/api/v1/records/me/consents", None, p, "consents"),
        (me, city.id_number, "GET", "/api/v1/records/me/access-log", None, p, "access-log"),
        (me, city.id_number, "GET", "/records/me", None, p, "view"),
        (me, city.id_number, "GET", f"/records/me/reports/{report}", None, p, "report"),
        (me, city.id_number, "GET", "/fhir/r4/Observation", None, p, "fhir-Observation"),
        (me, city.id_number, "GET", "/fhir/r4/Consent", None, p, "fhir-Consent"),
        (doc, "dr-cover", "GET", f"/api/v1/records/{p}", None, p, "view"),
        (doc, "dr-cover", "GET", f"/api/v1/records/{p}?reminders=true", None, p, "view-reminders"),
        (doc, "dr-cover", "GET", f"/api/v1/records/{p}/reports", None, p, "reports"),
        (doc, "dr-cover", "GET", f"/api/v1/records/{p}/reports/{report}", None, p, "report"),
        (doc, "dr-cover", "POST", f"/api/v1/records/{p}/reminders", orders, p, "reminders"),
        (doc, "dr-cover", "GET", f"/records/person/{p}", None, p, "view-reminders"),
        (doc, "dr-cover", "GET", f"/records?q={city.id_number}", None, p, "search"),
        (doc, "dr-cover", "GET", f"/fhir/r4/Patient/{p}/$everything", None, p, "everything"),
        (doc, "dr-cover", "GET", f"/fhir/r4/Encounter?patient={p}", None, p, "fhir-Encounter"),
        (doc, "dr-cover", "GET", f"/fhir/r4/Condition?patient={p}", None, p, "fhir-Condition"),
        (
            doc,
            "dr-cover",
            "GET",
            f"/fhir/r4/MedicationRequest?patient={p}",
            None,
            p,
            "fhir-MedicationRequest",
        ),
        (
            doc,
            "dr-cover",
            "GET",
            f"/fhir/r4/AllergyIntolerance?patient={p}",
            None,
            p,
            "fhir-AllergyIntolerance",
        ),
        (doc, "dr-cover", "GET", f"/fhir/r4/Consent?patient={p}", None, p, "fhir-Consent"),
        (doc, "dr-cover", "POST", "/cds-services/rhip-patient-view", hook, p, "cds-patient-view"),
        (auditor, "aud-cover", "GET", f"/api/v1/audit/events?person_id={p}", None, p, "audit-search"),
        (
            auditor,
            "aud-cover",
            "GET",
            "/api/v1/audit/events?outcome=refused",
            None,
            audit.ANY,
            "audit-search",
        ),
        (auditor, "aud-cover", "GET", "/api/v1/audit/emergencies", None, audit.ANY, "audit-emergencies"),
        (auditor, "aud-cover", "GET", f"/fhir/r4/AuditEvent?patient={p}", None, p, "fhir-AuditEvent"),
    ]
    for who, subject, method, path, body, person, action in cases:
        before = _rows(db, subject, person, action)
        r = client.request(method, path, headers=who, json=body)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
        assert _rows(db, subject, person, action) == before + 1, (path, action)


def test_refused_reads_are_logged_and_answer_nothing(
    client: TestClient, city: City, as_: H, db: Database
) -> None:
    stranger = as_("doctor", city.org_c, "dr-stranger")  # C holds no record of this person
    for path in (f"/api/v1/records/{city.person}", f"/fhir/r4/Condition?patient={city.person}"):
        r = client.get(path, headers=stranger)
        assert r.status_code == 403 and city.org_a not in r.text
    with db.session() as s, s.begin():
        rows = s.scalars(
            select(AccessLog).where(AccessLog.actor == "dr-stranger").order_by(AccessLog.id)
        ).all()
    assert [(x.action, x.outcome, x.basis) for x in rows] == [
        ("view", "refused", "none"),
        ("fhir-Condition", "refused", "none"),
    ]
