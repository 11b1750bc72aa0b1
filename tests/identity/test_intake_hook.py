"""Linking on the way in: a FHIR Patient sent through intake is linked to a person at commit."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select

from rhip.fhir import samples
from rhip.identity import service as svc
from rhip.identity.models import PatientRecord
from rhip.registry.idnumber import make_id
from tests.factories import id_sequence


def test_fhir_patient_through_intake_is_linked(client, auth, session) -> None:  # type: ignore[no-untyped-def]
    from rhip.registry import data

    inst = data.institutions()[2].code
    local = "FHIR-" + uuid.uuid4().hex[:10]
    number = make_id("320102", date(1949, 12, 31), id_sequence("1"))
    patient = samples.patient(local)
    patient["identifier"][0]["value"] = number
    b = samples.bundle("transaction", [patient])
    r = client.post("/fhir/r4", headers=auth("uploader", institution=inst), json=b)
    assert r.status_code == 200, r.text
    with session.begin():
        rec = session.scalars(
            select(PatientRecord).where(
                PatientRecord.institution_code == inst, PatientRecord.local_id == local
            )
        ).one()
        assert rec.source == "fhir" and rec.name_raw == "张三" and rec.id_number == number
        assert svc.find_persons(session, id_number=number) == [rec.person_id]
    # the same Patient sent again is the same record, still one person
    again = client.post(
        "/fhir/r4", headers=auth("uploader", institution=inst), json=samples.bundle("batch", [patient])
    )
    assert again.status_code == 200
    with session.begin():
        assert len(svc.find_persons(session, id_number=number)) == 1
