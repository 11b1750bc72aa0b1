"""Every read of personal data is audited (security.deps.audit_read), and a refused one is not.

The walk: every GET route (and Patient/$match) of booking, identity, intake and the FHIR facade is either
a read of personal data, with a case below that reads it and finds one `read.*` audit row carrying the
caller, role, client address and user agent, and a refused twin that finds none, or named as not
personal. A new route fails here until it is put on one side.
"""

# ruff: noqa: E501  (the table of cases is kept one route to a few lines)

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip.security.masking import ID_SYSTEM
from rhip.security.models import AuditEvent
from rhip.web.app import ROUTERS
from tests.booking.conftest import TERTIARY, new_person
from tests.security.conftest import World, walk_routes

Auth = Callable[..., dict[str, str]]
MODULES = {
    "rhip.booking.api_book",
    "rhip.booking.api",
    "rhip.booking.fhir_api",
    "rhip.booking.pages",
    "rhip.booking.pages_account",
    "rhip.booking.pages_staff",
    "rhip.identity.api",
    "rhip.identity.fhir_api",
    "rhip.identity.pages",
    "rhip.intake.api",
    "rhip.intake.pages",
    "rhip.fhir.api",
}
# reads that show no one's personal data (public timetables, counts, the caller's own data as a resident)
NOT_PERSONAL = {
    "GET /api/v1/intake/cda/counts",
    "GET /api/v1/intake/batches",  # receipts without their problem lists
    "GET /api/v1/booking/hospitals",
    "GET /api/v1/booking/hospitals/{code}/departments",
    "GET /api/v1/booking/schedules",
    "GET /api/v1/booking/schedules/{schedule_id}",
    "GET /api/v1/booking/calendar",
    "GET /api/v1/booking/rules/{hospital_code}",
    "GET /api/v1/booking/priority/schedules/{schedule_id}",
    "GET /api/v1/booking/stats/{month}",
    "GET /api/v1/booking/waitlist",  # a resident's own
    "GET /fhir/r4/Schedule",
    "GET /fhir/r4/Schedule/{schedule_id}",
    "GET /fhir/r4/Slot",
    "GET /fhir/r4/Slot/{slot_id}",
    "GET /fhir/r4/$bulk-publish",
    "GET /fhir/r4/$bulk-publish/{kind}.ndjson",
    "GET /booking",
    "GET /booking/h/{code}",
    "GET /booking/h/{code}/d/{dept}",
    "GET /booking/me",  # a resident's own
    "GET /booking/login",
    "GET /booking/stats",
    "GET /fhir/r4/metadata",
    "GET /fhir/r4/StructureDefinition",
    "GET /fhir/r4/StructureDefinition/{sd_id}",
    "GET /intake",  # receipts without their problem lists, counts
}


def reads() -> set[str]:
    """Every GET route (and the $match search) of the modules that hold personal data."""
    out = set()
    for module, prefix, _tag in ROUTERS:
        if module in MODULES:
            for path, route in walk_routes(importlib.import_module(module).router.routes, prefix):
                if "GET" in route.methods or path.endswith("$match"):
                    out.add(f"{'GET' if 'GET' in route.methods else 'POST'} {path}")
    return out


# ------------------------------------------------------------------ data


# how to read a route: method, URL, role, institution, JSON body; then who is refused it (role,
# institution; None: no credentials) and the audit action the read must write
Case = tuple[str, str, str, str | None, Any, tuple[str, str | None] | None, str]


def cases(w: World, other_resident: str, inst2: str) -> dict[str, Case]:
    """One read per personal route by a role allowed to make it, and a caller refused it."""
    match = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "resource",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": ID_SYSTEM, "value": w.id_number}],
                    "name": [{"text": "单丽萍"}],
                    "birthDate": "1972-04-05",
                    "gender": "female",
                },
            }
        ],
    }
    b, i, f = "/api/v1/booking", "/api/v1/intake/batches", "/fhir/r4"
    nobody = None
    resident = ("resident", None)
    uploader = ("uploader", inst2)
    ident = f"identifier={ID_SYSTEM}|{w.id_number}"
    return {
        f"GET {b}/appointments": (
            "GET", f"{b}/appointments?hospital={TERTIARY}", "doctor", TERTIARY, None, nobody, "read.appointments"
        ),
        f"GET {b}/appointments/{{appointment_id}}": (
            "GET", f"{b}/appointments/{w.appointment}", "manager", None, None, resident, "read.appointment"
        ),
        f"GET {b}/schedules/{{schedule_id}}/appointments": (
            "GET", f"{b}/schedules/{w.schedule}/appointments", "doctor", TERTIARY, None, ("doctor", "H001"),
            "read.schedule.appointments",
        ),
        f"GET {b}/notifications": (
            "GET", f"{b}/notifications?person={w.pid}", "agent", None, None, resident, "read.notifications"
        ),
        f"GET {b}/referrals": ("GET", f"{b}/referrals", "manager", None, None, uploader, "read.referrals"),
        f"GET {b}/appeals": ("GET", f"{b}/appeals", "manager", None, None, uploader, "read.appeals"),
        f"GET {f}/Appointment": (
            "GET", f"{f}/Appointment?patient={w.pid}", "manager", None, None, nobody, "read.fhir.appointments"
        ),
        f"GET {f}/Appointment/{{appointment_id}}": (
            "GET", f"{f}/Appointment/{w.appointment}", "agent", None, None, resident, "read.fhir.appointment"
        ),
        "GET /booking/staff": (
            "GET", f"/booking/staff?day=2025-03-10&hospital={TERTIARY}", "manager", None, None, resident,
            "read.page.booking.staff",
        ),
        "GET /booking/family": (
            "GET", "/booking/family?day=2025-03-10", "family_doctor", "C001", None, uploader,
            "read.page.booking.family",
        ),
        "GET /api/v1/identity/persons": (
            "GET", "/api/v1/identity/persons?q=单丽萍", "manager", None, None, uploader, "read.identity.search"
        ),
        "GET /api/v1/identity/persons/{person_id}": (
            "GET", f"/api/v1/identity/persons/{w.person}", "doctor", TERTIARY, None, uploader,
            "read.identity.person",
        ),
        "GET /api/v1/identity/reviews": (
            "GET", "/api/v1/identity/reviews", "auditor", None, None, ("doctor", TERTIARY), "read.identity.reviews"
        ),
        "GET /identity": ("GET", "/identity?q=单丽萍", "manager", None, None, uploader, "read.identity.page.queue"),
        "GET /identity/persons/{person_id}": (
            "GET", f"/identity/persons/{w.person}", "auditor", None, None, uploader, "read.identity.page.person"
        ),
        f"GET {f}/Person/{{person_id}}": (
            "GET", f"{f}/Person/{w.person}", "agent", None, None, uploader, "read.identity.fhir.person"
        ),
        f"GET {f}/Person": (
            "GET", f"{f}/Person?{ident}", "manager", None, None, uploader, "read.identity.fhir.person.search"
        ),
        f"GET {f}/Patient": (
            "GET", f"{f}/Patient?{ident}", "doctor", TERTIARY, None, resident, "read.identity.fhir.patient.search"
        ),
        f"GET {f}/Patient/{{patient_id}}": (
            "GET", f"{f}/Patient/{w.record}", "manager", None, None, uploader, "read.identity.fhir.patient"
        ),
        f"POST {f}/Patient/$match": (
            "POST", f"{f}/Patient/$match", "manager", None, match, uploader, "read.identity.fhir.match"
        ),
        f"GET {i}/{{batch_id}}": ("GET", f"{i}/{w.batch}", "uploader", w.inst, None, uploader, "read.intake.problems"),
        f"GET {i}/{{batch_id}}/problems.csv": (
            "GET", f"{i}/{w.batch}/problems.csv", "manager", None, None, uploader, "read.intake.problems.csv"
        ),
        f"GET {i}/{{batch_id}}/problems.xlsx": (
            "GET", f"{i}/{w.batch}/problems.xlsx", "auditor", None, None, uploader, "read.intake.problems.xlsx"
        ),
        "GET /intake/batches/{batch_id}": (
            "GET", f"/intake/batches/{w.batch}", "uploader", w.inst, None, uploader, "read.page.intake.problems"
        ),
    }  # fmt: skip


def _last_id(session: Session) -> int:
    with session.begin():
        return int(session.scalar(select(func.coalesce(func.max(AuditEvent.id), 0))) or 0)


def _reads_since(session: Session, after: int) -> list[AuditEvent]:
    with session.begin():
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.id > after, AuditEvent.action.like("read.%"))
        ).all()
        session.expunge_all()
        return list(rows)


def test_every_read_route_of_these_modules_is_classified(world: World, inst2: str) -> None:
    routes = reads()
    personal = set(cases(world, new_person(), inst2))
    assert personal.isdisjoint(NOT_PERSONAL)
    unclassified = sorted(routes - personal - NOT_PERSONAL)
    assert routes == personal | NOT_PERSONAL, f"unclassified {unclassified}, gone {sorted(personal - routes)}"


def test_each_personal_read_writes_one_audit_row_and_a_refused_one_none(
    client: TestClient, auth: Auth, session: Session, world: World, inst2: str
) -> None:
    other = new_person()
    for route, (method, url, role, institution, body, refuser, action) in cases(world, other, inst2).items():
        before = _last_id(session)
        headers = {
            **auth(role, institution=institution, subject=f"reader-{role}"),
            "User-Agent": "audit-walk/1",
        }
        r = client.request(method, url, headers=headers, json=body)
        assert r.status_code == 200, (route, r.status_code, r.text[:300])
        rows = _reads_since(session, before)
        assert [x.action for x in rows] == [action], route
        row = rows[0]
        assert (row.actor, row.role, row.user_agent) == (f"reader-{role}", role, "audit-walk/1"), route
        assert row.client_addr and row.client_addr.startswith("testclient-"), route
        assert row.outcome == "ok" and row.institution_code == institution, route

        # the same read by a caller it is refused to: refused, and no read recorded
        before = _last_id(session)
        refused_headers = {} if refuser is None else auth(refuser[0], institution=refuser[1], subject=other)
        refused = client.request(method, url, headers=refused_headers, json=body, follow_redirects=False)
        assert refused.status_code in (303, 401, 403), (route, refused.status_code, refused.text[:200])
        assert _reads_since(session, before) == [], route
