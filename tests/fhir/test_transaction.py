"""Transactions as FHIR clients write them: urn:uuid fullUrls, POST without ids, any entry order,
conditional create and update; built with fhir.resources models, sent with fhirpy, read back from the lake."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from rhip.clock import local_now
from rhip.fhir import samples
from rhip.fhir.elements import ID_NUMBER_SYSTEM, V2_0203
from tests.fhir.test_fhir import (
    live,  # noqa: F401
    stored_rows,
)
from tests.intake.conftest import unique

MR_SYSTEM = "urn:oid:2.16.156.10011.1.2"
VISIT_SYSTEM = "urn:oid:2.16.156.10011.1.11"
REPORT_SYSTEM = "urn:rhip:report-no"
ID_NUMBER = "11010519491231002X"


def _type(code: str) -> dict[str, Any]:
    return {"coding": [{"system": V2_0203, "code": code}]}


def client_bundle(*, urn: bool, keys: dict[str, str]) -> dict[str, Any]:
    """Patient, Encounter (department, doctor, fee), lab DiagnosticReport and two Observations, as
    fhir.resources models; linked by urn:uuid fullUrls (no ids, POST) or by ids and Type/id (PUT)."""
    at = (local_now() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+08:00")
    full = {k: f"urn:uuid:{uuid.uuid4()}" for k in ("pat", "enc", "rep", "o1", "o2")}

    def ref(kind: str, rtype: str, key: str) -> dict[str, str]:
        return {"reference": full[kind] if urn else f"{rtype}/{key}"}

    def ident(system: str, value: str, code: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"system": system, "value": value}
        if code:
            out["type"] = _type(code)
        return out

    pat = Patient(
        identifier=[ident(MR_SYSTEM, keys["patient"], "MR"), ident(ID_NUMBER_SYSTEM, ID_NUMBER, "NNCHN")],
        name=[{"family": "张", "given": ["三"]}],
        gender="male",
        birthDate="1949-12-31",
        telecom=[{"system": "phone", "value": "13912345678"}],
    )
    enc = Encounter(
        status="finished",
        identifier=[ident(VISIT_SYSTEM, keys["visit"], "VN")],
        class_fhir={"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        subject=ref("pat", "Patient", keys["patient"]),
        serviceType={"coding": [{"code": "01"}]},
        participant=[{"individual": {"reference": "Practitioner/D001"}}],
        period={"start": at},
        extension=[{"url": samples.FEE_TOTAL, "valueDecimal": 88.5}],
    )
    obs = [
        Observation(
            status="final",
            code={"coding": [{"system": "urn:rhip:lab-item", "code": code, "display": name}], "text": name},
            valueQuantity={"value": value, "unit": "mmol/L"},
            issued=at,
        )
        for code, name, value in (("GLU", "葡萄糖", 5.6), ("TC", "总胆固醇", 4.1))
    ]
    rep = DiagnosticReport(
        status="final",
        identifier=[ident(REPORT_SYSTEM, keys["report"])],
        category=[{"coding": [{"code": "LAB"}]}],
        code={"text": "生化"},
        subject=ref("pat", "Patient", keys["patient"]),
        encounter=ref("enc", "Encounter", keys["visit"]),
        issued=at,
        result=[
            ref("o1", "Observation", keys["report"] + "-1"),
            ref("o2", "Observation", keys["report"] + "-2"),
        ],
    )
    items = [("pat", pat, keys["patient"]), ("enc", enc, keys["visit"]), ("rep", rep, keys["report"])]
    items += [("o1", obs[0], keys["report"] + "-1"), ("o2", obs[1], keys["report"] + "-2")]
    entries = []
    # order: the Observations and the report first, the Patient last: order must not matter
    for kind, model, key in reversed(items):
        if urn:
            entries.append(
                {
                    "fullUrl": full[kind],
                    "resource": model,
                    "request": {"method": "POST", "url": model.get_resource_type()},
                }
            )
        else:
            model.id = key
            entries.append(
                {
                    "fullUrl": f"http://hospital.example/fhir/{model.get_resource_type()}/{key}",
                    "resource": model,
                    "request": {"method": "PUT", "url": f"{model.get_resource_type()}/{key}"},
                }
            )
    b = Bundle(type="transaction", entry=entries)
    return b.model_dump(mode="json", exclude_none=True, by_alias=True)  # type: ignore[no-any-return]


def _keys() -> dict[str, str]:
    return {"patient": unique("CP"), "visit": unique("CV"), "report": unique("CR")}


LINKED = {
    "patient_info": ("patient_id", ["patient_id", "name", "sex", "birth_date", "id_number", "phone"]),
    "outpatient_visit": ("visit_no", ["visit_no", "patient_id", "dept_code", "doctor_code", "fee_total"]),
    "lab_report": ("report_no", ["report_no", "patient_id", "visit_no", "panel_name"]),
    "lab_result": ("report_no", ["report_no", "item_code", "item_name", "result_value", "unit"]),
}


def _read_back(settings, inst: str, keys: dict[str, str]) -> dict[str, list[dict[str, Any]]]:  # type: ignore[no-untyped-def]
    key_of = {
        "patient_info": "patient",
        "outpatient_visit": "visit",
        "lab_report": "report",
        "lab_result": "report",
    }
    out = {}
    for table, (col, cols) in LINKED.items():
        rows = stored_rows(settings, table, col, [keys[key_of[table]]], inst=inst)
        out[table] = sorted(({c: r[c] for c in cols} for r in rows), key=lambda r: str(r))
    return out


def test_client_shaped_transaction_by_urn_uuid(live, token, inst, settings) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from fhirpy import SyncFHIRClient

    keys = _keys()
    fc = SyncFHIRClient(live, authorization=f"Bearer {token('uploader', inst)}")
    got = fc.execute("", method="post", data=client_bundle(urn=True, keys=keys))
    assert got["type"] == "transaction-response", got
    statuses = [e["response"]["status"] for e in got["entry"]]
    assert statuses == ["201 Created"] * 5
    locations = [e["response"]["location"] for e in got["entry"]]
    assert locations[-1] == f"Patient/{keys['patient']}"  # the MR identifier is the local id
    assert locations[-2] == f"Encounter/{keys['visit']}"
    assert locations[-3] == f"DiagnosticReport/{keys['report']}"
    assert locations[0] == f"Observation/{keys['report']}-TC"
    back = _read_back(settings, inst, keys)
    # every link carries the referenced record's business key
    assert back["patient_info"] == [
        {
            "patient_id": keys["patient"],
            "name": "张三",
            "sex": "1",
            "birth_date": back["patient_info"][0]["birth_date"],
            "id_number": ID_NUMBER,
            "phone": "13912345678",
        }
    ]
    assert str(back["patient_info"][0]["birth_date"]) == "1949-12-31"
    visit = back["outpatient_visit"][0]
    assert (visit["patient_id"], visit["dept_code"], visit["doctor_code"]) == (keys["patient"], "01", "D001")
    assert float(visit["fee_total"]) == 88.5
    assert back["lab_report"][0]["visit_no"] == keys["visit"]
    assert back["lab_report"][0]["patient_id"] == keys["patient"]
    assert {(r["report_no"], r["item_code"]) for r in back["lab_result"]} == {
        (keys["report"], "GLU"),
        (keys["report"], "TC"),
    }


def test_same_bundle_by_ids_stores_the_same_records(client, auth, inst, inst2, settings) -> None:  # type: ignore[no-untyped-def]
    keys = _keys()
    by_urn = client.post(
        "/fhir/r4", headers=auth("uploader", institution=inst), json=client_bundle(urn=True, keys=keys)
    )
    by_id = client.post(
        "/fhir/r4", headers=auth("uploader", institution=inst2), json=client_bundle(urn=False, keys=keys)
    )
    assert by_urn.status_code == 200 and by_id.status_code == 200, by_id.text
    assert [e["response"]["status"] for e in by_id.json()["entry"]] == ["201 Created"] * 5
    a, b = _read_back(settings, inst, keys), _read_back(settings, inst2, keys)
    assert all(a[t] for t in LINKED)
    for t in LINKED:
        if t == "lab_result":
            continue  # report_no and item codes equal; compared below without the value's float text
        assert a[t] == b[t], t
    assert [(r["report_no"], r["item_code"], r["result_value"]) for r in a["lab_result"]] == [
        (r["report_no"], r["item_code"], r["result_value"]) for r in b["lab_result"]
    ]


def test_unresolved_urn_reference_refuses_the_transaction(client, auth, inst, settings) -> None:  # type: ignore[no-untyped-def]
    keys = _keys()
    body = client_bundle(urn=True, keys=keys)
    body["entry"] = [e for e in body["entry"] if e["resource"]["resourceType"] != "Patient"]
    r = client.post("/fhir/r4", headers=auth("uploader", institution=inst), json=body)
    assert r.status_code == 422
    codes = {i["code"] for i in r.json()["issue"] if i.get("expression")}
    assert "not-found" in codes
    assert stored_rows(settings, "outpatient_visit", "visit_no", [keys["visit"]], inst=inst) == []


def test_refusal_names_the_fhir_element(client, auth, inst) -> None:  # type: ignore[no-untyped-def]
    def refused(drop: str) -> tuple[int, list[dict[str, Any]]]:
        body = client_bundle(urn=True, keys=_keys())
        enc = next(i for i, e in enumerate(body["entry"]) if e["resource"]["resourceType"] == "Encounter")
        del body["entry"][enc]["resource"][drop]
        r = client.post("/fhir/r4", headers=auth("uploader", institution=inst), json=body)
        assert r.status_code == 422
        return enc, [i for i in r.json()["issue"] if i.get("expression")]

    enc, issues = refused("serviceType")
    assert [i["expression"] for i in issues] == [[f"Bundle.entry[{enc}].resource.serviceType"]]
    assert "outpatient_visit.dept_code" in issues[0]["diagnostics"]
    assert issues[0]["details"]["coding"][0]["code"] == "required" and issues[0]["code"] == "required"
    enc, issues = refused("extension")
    url = f"{samples.CANONICAL}/StructureDefinition/fee-total"
    assert [i["expression"] for i in issues] == [
        [f"Bundle.entry[{enc}].resource.extension.where(url='{url}')"]
    ]


def test_conditional_create_and_update(client, auth, inst, settings) -> None:  # type: ignore[no-untyped-def]
    keys = _keys()
    h = auth("uploader", institution=inst)
    assert client.post("/fhir/r4", headers=h, json=client_bundle(urn=True, keys=keys)).status_code == 200
    at = (local_now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+08:00")
    pat_url, visit = f"urn:uuid:{uuid.uuid4()}", unique("CV")
    again = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": pat_url,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": MR_SYSTEM, "value": "other", "type": _type("MR")}],
                    "name": [{"text": "另一人"}],
                    "gender": "female",
                    "birthDate": "1950-01-01",
                },
                # HAPI-style conditional create: the patient exists under this local id → not created
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier={MR_SYSTEM}|{keys['patient']}",
                },
            },
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {**samples.encounter(visit, "x", at), "subject": {"reference": pat_url}},
                "request": {"method": "POST", "url": "Encounter"},
            },
        ],
    }
    del again["entry"][1]["resource"]["id"]
    again["entry"][1]["resource"]["identifier"] = [{"value": visit}]
    r = client.post("/fhir/r4", headers=h, json=again)
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    assert entries[0]["response"] == {"status": "200 OK", "location": f"Patient/{keys['patient']}"}
    assert entries[1]["response"]["status"] == "201 Created"
    # the encounter links to the existing patient; the conditional Patient wrote nothing
    assert (
        stored_rows(settings, "outpatient_visit", "visit_no", [visit], inst=inst)[0]["patient_id"]
        == keys["patient"]
    )
    assert [
        p["name"] for p in stored_rows(settings, "patient_info", "patient_id", [keys["patient"]], inst=inst)
    ] == ["张三"]

    # conditional update by the national ID finds the stored patient's local id and updates that record;
    # 数据更新时间 has one-second resolution and the later version wins, so the update comes a second later
    time.sleep(1.05)
    updated = {
        "resourceType": "Patient",
        "identifier": [{"system": ID_NUMBER_SYSTEM, "value": ID_NUMBER}],
        "name": [{"text": "张三丰"}],
        "gender": "male",
        "birthDate": "1949-12-31",
        "meta": {"lastUpdated": local_now().strftime("%Y-%m-%dT%H:%M:%S+08:00")},
    }
    r = client.put(f"/fhir/r4/Patient?identifier={ID_NUMBER_SYSTEM}|{ID_NUMBER}", headers=h, json=updated)
    assert r.status_code == 200, r.text
    assert r.headers["location"].endswith(f"/Patient/{keys['patient']}") or r.json()["id"]
    got = {
        p["patient_id"]: p["name"]
        for p in stored_rows(settings, "patient_info", "id_number", [ID_NUMBER], inst=inst)
    }
    assert got[r.json()["id"]] == "张三丰", (got, r.json())


def test_single_resource_create_and_validate(client, auth, inst, settings) -> None:  # type: ignore[no-untyped-def]
    h = auth("uploader", institution=inst)
    pid = unique("SP")
    pat = samples.patient(pid)
    del pat["id"]
    pat["identifier"].append({"system": MR_SYSTEM, "value": pid, "type": _type("MR")})
    ok = client.post("/fhir/r4/Patient/$validate", headers=h, json=pat)
    assert ok.status_code == 200 and ok.json()["issue"][0]["severity"] == "information"
    assert (
        stored_rows(settings, "patient_info", "patient_id", [pid], inst=inst) == []
    )  # $validate stores nothing
    bad = {**pat, "birthDate": "2999-01-01"}
    r = client.post(
        "/fhir/r4/Patient/$validate",
        headers=h,
        json={"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": bad}]},
    )
    assert r.status_code == 200
    issue = r.json()["issue"][0]
    assert issue["severity"] == "error" and issue["expression"] == ["Patient.birthDate"]

    r = client.post("/fhir/r4/Patient", headers=h, json=pat)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == pid and r.headers["location"].endswith(f"/fhir/r4/Patient/{pid}")
    assert len(stored_rows(settings, "patient_info", "patient_id", [pid], inst=inst)) == 1
    r = client.post("/fhir/r4/Patient", headers=h, json=bad)
    assert r.status_code == 422 and r.json()["issue"][1]["expression"] == ["Patient.birthDate"]
    assert client.post("/fhir/r4/Basic", headers=h, json={"resourceType": "Basic"}).status_code == 404
    # update at an id: the id in the URL is the business key; a different id in the body is refused
    other = unique("SP")
    r = client.put(f"/fhir/r4/Patient/{other}", headers=h, json={**pat, "id": "not-the-same"})
    assert r.status_code == 400 and r.json()["issue"][0]["details"]["coding"][0]["code"] == "id-mismatch"
    r = client.put(f"/fhir/r4/Patient/{other}", headers=h, json=pat)
    assert r.status_code == 201 and r.json()["id"] == other
    assert len(stored_rows(settings, "patient_info", "patient_id", [other], inst=inst)) == 1


def test_validate_bundle_stores_nothing(client, auth, inst, settings) -> None:  # type: ignore[no-untyped-def]
    keys = _keys()
    body = client_bundle(urn=True, keys=keys)
    h = auth("uploader", institution=inst)
    r = client.post("/fhir/r4/Bundle/$validate", headers=h, json=body)
    assert r.status_code == 200 and r.json()["issue"][0]["severity"] == "information", r.text
    enc = next(e for e in body["entry"] if e["resource"]["resourceType"] == "Encounter")
    enc["resource"]["serviceType"] = {"coding": [{"code": "NOPE"}]}
    r = client.post("/fhir/r4/Bundle/$validate", headers=h, json=body)
    issues = r.json()["issue"]
    assert issues[0]["severity"] == "error" and issues[0]["details"]["coding"][0]["code"] == "code"
    assert issues[0]["expression"][0].endswith(".resource.serviceType")
    assert stored_rows(settings, "patient_info", "patient_id", [keys["patient"]], inst=inst) == []


def test_national_id_system_and_nnchn() -> None:
    from rhip.fhir.mapping import map_bundle

    def pat(ident: dict[str, Any]) -> dict[str, Any]:
        return {"resourceType": "Patient", "id": "p1", "identifier": [ident], "name": [{"text": "李"}]}

    def idn(ident: dict[str, Any]) -> Any:
        b = {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": pat(ident)}]}
        return map_bundle(b, institution_code="H001", collected_at="2025-03-01 00:00:00").rows[
            "patient_info"
        ][0]["id_number"]

    assert idn({"system": ID_NUMBER_SYSTEM, "value": ID_NUMBER}) == ID_NUMBER
    assert idn({"system": "urn:other", "value": ID_NUMBER, "type": _type("NNCHN")}) == ID_NUMBER
    # …10011.1.1 is a document's serial number, never an ID number
    assert idn({"system": "urn:oid:2.16.156.10011.1.1", "value": ID_NUMBER}) is None
