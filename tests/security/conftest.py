"""The domains' fixtures the security tests use (booking's frozen clock, intake's CSV and institutions),
and a small world of personal data: one booking, one linked patient record, one receipt with a problem."""

# ruff: noqa: F811  (the fixtures imported above are this module's fixtures' parameters)

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.identity import service as idsvc
from rhip.identity.models import PatientRecord
from rhip.registry.idnumber import make_id
from tests.booking.conftest import TERTIARY, frozen, new_person  # noqa: F401
from tests.booking.test_api import publish
from tests.factories import id_sequence
from tests.intake.conftest import inst, inst2, patient_csv, unique  # noqa: F401

Auth = Callable[..., dict[str, str]]
BAD_ID = "110105194912310021"  # a wrong check digit: rejected, the value in the problem list


def walk_routes(routes: list[Any], prefix: str) -> Iterator[tuple[str, APIRoute]]:
    """Every API route with its full path, those of included routers too (FastAPI keeps an included
    router as one entry holding the original, not as copies of its routes)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from walk_routes(inner.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute):
            yield prefix + route.path, route


class World:
    """One booking (by an agent, for 张三丰), one linked patient record (单丽萍) and one receipt with a
    problem (a wrong ID number), made for one test."""

    def __init__(self, client: TestClient, auth: Auth, session: Session, code: str, csv: Callable[..., str]):
        sched = publish(client, auth, day="2025-03-10")
        self.schedule = sched["id"]
        self.pid = new_person()
        b = client.post(
            "/api/v1/booking/appointments",
            json={"slot_id": sched["slots"][0]["id"], "person_id": self.pid, "person_name": "张三丰"},
            headers=auth("agent"),
        )
        assert b.status_code == 201, b.text
        self.appointment = b.json()["id"]

        local, born = "T" + uuid.uuid4().hex[:8].upper(), date(1972, 4, 5)
        self.id_number = make_id("320106", born, id_sequence("1"))
        with session.begin():
            self.person = idsvc.link_record(
                session,
                institution_code=local,
                local_id="1",
                id_number=self.id_number,
                name="单丽萍",
                birth_date=born,
                sex="2",
                phone="13900001111",
                district="320106",
                source="test",
            ).person_id
            self.record = session.scalars(
                select(PatientRecord.id).where(PatientRecord.institution_code == local)
            ).one()

        self.inst = code
        text = csv([(code, unique("P"), "2025-03-01 10:00:00", "1", "1", BAD_ID)])
        up = client.post(
            "/api/v1/intake/batches",
            headers=auth("uploader", institution=code),
            files={"file": ("patient_info.csv", text.encode(), "text/csv")},
        )
        assert up.status_code == 201 and up.json()["problems"], up.text
        self.batch = up.json()["id"]
        self.receipt = up.json()


@pytest.fixture()
def world(
    client: TestClient,
    auth: Auth,
    session: Session,
    inst: str,
    patient_csv: Callable[..., str],
    frozen: datetime,
) -> World:
    """The data the cases read (booking's clock frozen: its dates are the booking tests')."""
    return World(client, auth, session, inst, patient_csv)  # fmt: skip
