"""Telemedicine's patients are masked by security.masking's "telemed" view (no helper of telemed's own): the
care team's clinicians see the patient whole, the information centre's staff see security's masks, over
REST, FHIR and the pages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from rhip.security.masking import Kind, Masker
from rhip.security.roles import Role
from rhip.security.service import Principal
from rhip.telemed import access, service as svc
from tests.telemed.conftest import PID, REQUESTER

Auth = Callable[..., dict[str, str]]


@pytest.mark.parametrize(
    ("role", "whole"),
    [
        (Role.doctor, True),
        (Role.family_doctor, True),
        (Role.manager, False),
        (Role.admin, False),
        (Role.auditor, False),
        (Role.uploader, False),
    ],
)
def test_the_telemed_view_is_data_in_security(role: Role, whole: bool) -> None:
    who = Principal(subject="x", role=role)
    view = Masker(who, "telemed")
    assert view.value(Kind.name, "欧阳建华") == ("欧阳建华" if whole else "欧**华")
    assert view.id(PID) == (PID if whole else "320102********1238")
    assert svc.sees_patient(who) is whole
    # the care view (appointments, records) still hides a doctor's view of the ID number
    assert Masker(who, "care").id(PID) == "320102********1238"


def test_telemed_keeps_no_masking_helper_of_its_own() -> None:
    assert not hasattr(access, "mask_name") and not hasattr(svc, "mask_id")


def test_staff_see_security_masks_over_rest_fhir_and_pages(
    client: TestClient, auth: Auth, connected: str
) -> None:
    doc = auth("doctor", institution=REQUESTER)
    r = client.post(
        "/api/v1/telemed/requests",
        json={
            "centre_code": "ecg",
            "service_type": "resting",
            "patient_id_number": PID,
            "patient_name": "欧阳建华",
        },
        headers=doc,
    )
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert (r.json()["patient_name"], r.json()["patient_id_number"]) == ("欧阳建华", PID)
    mine = client.get(f"/api/v1/telemed/requests/{rid}", headers=doc).json()
    assert (mine["patient_name"], mine["patient_id_number"]) == ("欧阳建华", PID)
    staff = client.get(f"/api/v1/telemed/requests/{rid}", headers=auth("manager")).json()
    assert (staff["patient_name"], staff["patient_id_number"]) == ("欧**华", "320102********1238")
    listed = client.get("/api/v1/telemed/requests?centre_code=ecg&limit=500", headers=auth("admin")).json()
    assert next(x for x in listed if x["id"] == rid)["patient_name"] == "欧**华"
    fhir = client.get(f"/fhir/r4/ServiceRequest/{rid}", headers=auth("manager")).json()
    assert fhir["subject"]["display"] == "欧**华"
    assert fhir["subject"]["identifier"]["value"] == "320102********1238"
    page = client.get(f"/telemed/read/{rid}", headers=auth("manager"))
    assert (
        page.status_code == 200
        and "欧**华" in page.text
        and "欧阳建华" not in page.text
        and PID not in page.text
    )
