"""Personal data masked by role (security/masking.py): the rules themselves, then the FHIR answers of
booking, identity and the facade, and intake's receipts, per role over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rhip.security.masking import ID_SYSTEM, Kind, Masker, mask_id
from rhip.security.roles import Role
from rhip.security.service import Principal
from tests.booking.conftest import TERTIARY
from tests.intake.conftest import unique
from tests.security.conftest import BAD_ID, World

Auth = Callable[..., dict[str, str]]
PID = "32010219800101123X"
OTHER = "320104199001011234"


def patient(pid: str = PID) -> dict[str, Any]:
    """A FHIR Patient with every kind of personal value."""
    return {
        "resourceType": "Patient",
        "id": "7",
        "identifier": [
            {"system": "urn:rhip:institution:H020:patient", "value": "MR-1"},
            {"system": ID_SYSTEM, "value": pid},
        ],
        "name": [{"text": "欧阳建华", "family": "欧", "given": ["阳建华"]}],
        "telecom": [{"system": "phone", "value": "13611112222"}],
        "address": [{"text": "江苏省南京市鼓楼区中山路1号", "line": ["中山路1号"], "district": "鼓楼区"}],
        "gender": "male",
    }


def who(role: Role, subject: str = "someone") -> Principal:
    return Principal(subject=subject, role=role)


@pytest.mark.parametrize(
    ("role", "subject", "name_whole"),
    [
        (Role.doctor, "d1", True),
        (Role.family_doctor, "f1", True),
        (Role.agent, "a1", True),
        (Role.manager, "m1", False),
        (Role.auditor, "x1", False),
        (Role.admin, "x2", False),
        (Role.uploader, "u1", False),
        (Role.resident, OTHER, False),  # another resident: nothing whole
    ],
)
def test_care_view_masks_a_patient_by_role(role: Role, subject: str, name_whole: bool) -> None:
    got = Masker(who(role, subject)).fhir(patient())
    assert got["identifier"][0]["value"] == "MR-1"  # the institution's own number is no personal value
    assert got["identifier"][1]["value"] == "320102********123X"
    assert got["telecom"][0]["value"] == "136****2222"
    assert got["address"][0]["text"] == "江苏省南京市****" and got["address"][0]["line"] == ["****"]
    assert got["address"][0]["district"] == "鼓楼区"  # the district is kept (statistics, routing)
    assert (got["name"][0]["text"] == "欧阳建华") is name_whole
    if not name_whole:
        assert got["name"][0]["text"] == "欧**华" and got["name"][0]["given"] == ["***"]
    assert patient()["identifier"][1]["value"] == PID  # the input is not changed


def test_a_resident_sees_their_own_record_whole_and_the_linkage_view_shows_stewards_all() -> None:
    assert Masker(who(Role.resident, PID.lower())).fhir(patient()) == patient()
    for role in (Role.manager, Role.auditor, Role.admin):
        assert Masker(who(role), "linkage").fhir(patient()) == patient()
    for role in (Role.doctor, Role.agent):
        got = Masker(who(role), "linkage").fhir(patient())
        assert got["name"][0]["text"] == "欧**华" and got["identifier"][1]["value"] == mask_id(PID)


def test_an_appointment_patient_reference_by_id_number_is_masked_in_a_bundle() -> None:
    appt = {
        "resourceType": "Appointment",
        "id": "1",
        "participant": [
            {
                "actor": {
                    "reference": f"Patient/{PID}",
                    "identifier": {"system": ID_SYSTEM, "value": PID},
                    "display": "张三丰",
                }
            },
            {"actor": {"reference": "Location/H020"}},
        ],
    }
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": appt}]}
    got = Masker(who(Role.manager)).fhir(bundle)["entry"][0]["resource"]["participant"]
    assert "reference" not in got[0]["actor"]  # the literal reference would carry the number
    assert got[0]["actor"]["identifier"]["value"] == mask_id(PID) and got[0]["actor"]["display"] == "张*丰"
    assert got[1] == {"actor": {"reference": "Location/H020"}}
    doctor = Masker(who(Role.doctor)).fhir(appt)["participant"][0]["actor"]
    assert doctor["display"] == "张三丰" and doctor["identifier"]["value"] == mask_id(PID)
    assert Masker(who(Role.resident, PID)).fhir(appt) == appt


def test_problem_values_are_masked_by_field() -> None:
    m = Masker(who(Role.uploader))
    assert m.field("id_number", PID) == mask_id(PID)
    assert m.field("phone", "13611112222") == "136****2222"
    assert m.field("name", "欧阳建华") == "欧**华"
    assert m.field("address", "江苏省南京市鼓楼区中山路1号") == "江苏省南京市****"
    assert m.field("sex", "7") == "7"
    assert m.text(f"身份证号 {PID} 校验未通过") == f"身份证号 {mask_id(PID)} 校验未通过"


# ------------------------------------------------------------------ over HTTP, per role


def _patient_actor(resource: dict[str, Any]) -> dict[str, Any]:
    return next(p["actor"] for p in resource["participant"] if "identifier" in p["actor"])


def test_booking_fhir_appointment_masked_per_role(client: TestClient, auth: Auth, world: World) -> None:
    appt, pid = world.appointment, world.pid
    url = f"/fhir/r4/Appointment/{appt}"
    cases = [
        (auth("resident", subject=pid), pid, "张三丰"),
        (auth("doctor", institution=TERTIARY), mask_id(pid), "张三丰"),
        (auth("agent"), mask_id(pid), "张三丰"),
        (auth("manager"), mask_id(pid), "张*丰"),
    ]
    for headers, number, name in cases:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        actor = _patient_actor(r.json())
        assert (actor["identifier"]["value"], actor["display"]) == (number, name)
        assert ("reference" in actor) is (number == pid)
    found = client.get("/fhir/r4/Appointment", params={"patient": pid}, headers=auth("manager")).json()
    assert [_patient_actor(e["resource"])["identifier"]["value"] for e in found["entry"]] == [mask_id(pid)]
    assert pid not in client.get(url, headers=auth("manager")).text


def test_identity_fhir_patient_masked_per_role(client: TestClient, auth: Auth, world: World) -> None:
    rec_id, pid = world.record, world.id_number
    for role, whole in (("doctor", False), ("agent", False), ("manager", True), ("auditor", True)):
        r = client.get(f"/fhir/r4/Patient/{rec_id}", headers=auth(role, institution="H020"))
        assert r.status_code == 200, r.text
        res = r.json()
        number = next(i["value"] for i in res["identifier"] if i["system"] == ID_SYSTEM)
        assert number == (pid if whole else mask_id(pid))
        assert res["name"][0]["text"] == ("单丽萍" if whole else "单*萍")
        assert res["telecom"][0]["value"] == ("13900001111" if whole else "139****1111")


def test_intake_receipt_masks_personal_values_for_every_role(
    client: TestClient, auth: Auth, world: World
) -> None:
    assert [p["value"] for p in world.receipt["problems"]] == [mask_id(BAD_ID)]  # the upload's answer
    for headers in (auth("uploader", institution=world.inst), auth("manager"), auth("auditor")):
        r = client.get(f"/api/v1/intake/batches/{world.batch}", headers=headers)
        assert r.status_code == 200, r.text
        problems = r.json()["problems"]
        assert problems and all(p["value"] == mask_id(BAD_ID) for p in problems)
        assert BAD_ID not in r.text
    page = client.get(f"/intake/batches/{world.batch}", headers=auth("manager"))
    assert page.status_code == 200 and BAD_ID not in page.text


def test_realtime_receipt_masks_problem_values(client: TestClient, auth: Auth, inst: str) -> None:
    bad = BAD_ID
    rec = {
        "org_code": inst,
        "collected_at": "2025-03-02 10:00:00",
        "updated_at": "2025-03-01 10:00:00",
        "change_flag": "1",
        "patient_id": unique("P"),
        "name": "张三",
        "sex": "1",
        "birth_date": "1949-12-31",
        "id_number": bad,
    }
    r = client.post(
        "/api/v1/intake/realtime/patient_info", json=rec, headers=auth("uploader", institution=inst)
    )
    assert r.status_code == 200, r.text
    assert bad not in r.text and any(p["value"] == mask_id(bad) for p in r.json()["problems"])


@pytest.mark.parametrize("role", list(Role))
def test_mch_and_card_views_are_rules_in_the_one_table(role: Role) -> None:
    """MCH's workers see the woman and child whole, managers (and the rest) masked; at a card counter the
    terminal and the doctor see the whole number and no one else does (security.masking.WHOLE)."""
    mch = Masker(who(role), "mch")
    whole = role in (Role.doctor, Role.family_doctor, Role.admin)
    assert mch.id(PID) == (PID if whole else "320102********123X")
    assert mch.value(Kind.name, "孙小宝", PID) == ("孙小宝" if whole else "孙*宝")
    card = Masker(who(role), "card")
    assert card.id(PID) == (PID if role in (Role.uploader, Role.doctor) else mask_id(PID))
    assert card.shows(Kind.name) is False
