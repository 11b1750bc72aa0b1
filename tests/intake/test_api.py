"""Batch uploads over HTTP: receipts, dedup, problem lists, permissions, bad input."""

from __future__ import annotations

import io
import zipfile

from openpyxl import load_workbook

from tests.intake.conftest import unique


def _post(client, headers, name, text, *, encoding="utf-8", params=None):
    data = text.encode(encoding) if isinstance(text, str) else text
    return client.post(
        "/api/v1/intake/batches",
        headers=headers,
        params=params or {},
        files={"file": (name, data, "text/csv")},
    )


def test_upload_receipt_dedup_and_problems(client, auth, inst, patient_csv):
    p1, p2, p3 = unique("P"), unique("P"), unique("P")
    text = patient_csv(
        [
            (inst, p1, "2025-03-01 10:00:00", "1"),
            (inst, p2, "2025-03-01 10:00:00", "1", "1", "110105194912310021"),
            (inst, p3, "2025-03-01 10:00:00", "1", "7"),
            (inst, p1, "2025-03-01 10:00:00", "1"),
        ]
    )
    h = auth("uploader", institution=inst)
    r = _post(client, h, "patient_info_202503.csv", text)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "committed"
    t = body["totals"]
    assert (t["received"], t["accepted"], t["duplicate"], t["rejected"]) == (4, 1, 1, 2)
    rules = {p["rule"] for p in body["problems"]}
    assert rules == {"id_checksum", "code"}
    assert all(p["message"] for p in body["problems"])

    # the same file again changes only the duplicate count
    r2 = _post(client, h, "patient_info_202503.csv", text)
    t2 = r2.json()["totals"]
    assert (t2["accepted"], t2["duplicate"], t2["rejected"]) == (0, 2, 2)

    # change_flag 2 with a newer 数据更新时间 updates, 3 revokes
    text3 = patient_csv([(inst, p1, "2025-03-05 10:00:00", "2"), (inst, p2, "2025-03-05 10:00:00", "3")])
    t3 = _post(client, h, "patient_info.csv", text3).json()["totals"]
    assert (t3["updated"], t3["revoked"]) == (1, 1)

    got = client.get(f"/api/v1/intake/batches/{body['id']}", headers=h)
    assert got.status_code == 200 and got.json()["totals"] == t
    csv_r = client.get(f"/api/v1/intake/batches/{body['id']}/problems.csv", headers=h)
    assert csv_r.status_code == 200 and "id_checksum" in csv_r.content.decode("utf-8-sig")
    x = client.get(f"/api/v1/intake/batches/{body['id']}/problems.xlsx", headers=h)
    wb = load_workbook(io.BytesIO(x.content))
    assert wb["问题清单"].max_row == 3


def test_institutions_see_their_own_managers_all(client, auth, inst, inst2, patient_csv):
    h = auth("uploader", institution=inst)
    r = _post(client, h, "patient_info.csv", patient_csv([(inst, unique("P"), "2025-03-01 10:00:00", "1")]))
    bid = r.json()["id"]
    assert (
        client.get(f"/api/v1/intake/batches/{bid}", headers=auth("uploader", institution=inst2)).status_code
        == 403
    )
    assert client.get(f"/api/v1/intake/batches/{bid}", headers=auth("manager")).status_code == 200
    assert client.get("/api/v1/intake/batches", headers=auth("resident")).status_code == 403


def test_records_of_another_institution_are_rejected(client, auth, inst, inst2, patient_csv):
    h = auth("uploader", institution=inst)
    r = _post(client, h, "patient_info.csv", patient_csv([(inst2, unique("P"), "2025-03-01 10:00:00", "1")]))
    body = r.json()
    assert body["totals"]["rejected"] == 1
    assert body["problems"][0]["rule"] == "institution"
    assert inst2 in body["problems"][0]["message"]
    assert _post(client, h, "patient_info.csv", "x", params={"institution": inst2}).status_code == 403


def test_gbk_file_detected(client, auth, inst, patient_csv):
    h = auth("uploader", institution=inst)
    r = _post(
        client,
        h,
        "patient_info.csv",
        patient_csv([(inst, unique("P"), "2025-03-01 10:00:00", "1")]),
        encoding="gbk",
    )
    assert r.status_code == 201 and r.json()["totals"]["accepted"] == 1


def _problem(r, status, code):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code, r.json()
    return r.json()


def test_bad_inputs_get_precise_problems(client, auth, inst, patient_csv):
    h = auth("uploader", institution=inst)
    good = patient_csv(
        [(inst, unique("P"), "2025-03-01 10:00:00", "1"), (inst, unique("P"), "2025-03-01 10:00:00", "1")]
    )
    _problem(_post(client, h, "patient_info.csv", good[:-30]), 422, "malformed-csv")
    body = _problem(
        _post(client, h, "patient_info.csv", good.replace("birth_date", "birthday")), 422, "bad-header"
    )
    assert body["missing"] == ["birth_date"] and body["unknown"] == ["birthday"]
    _problem(_post(client, h, "nosuch_table.csv", good), 404, "unknown-table")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("patient_info.csv", good)
    _problem(_post(client, h, "patient_info.csv", buf.getvalue()), 415, "archive-not-accepted")
    mixed = good.encode("utf-8") + patient_csv([(inst, unique("P"), "2025-03-01 10:00:00", "1")]).split(
        "\n", 1
    )[1].replace("张三", "王小明是").encode("gbk")
    _problem(_post(client, h, "patient_info.csv", mixed), 422, "mixed-encoding")
    _problem(
        _post(client, h, "patient_info.csv", good, params={"encoding": "utf-8"})
        if False
        else _post(client, h, "patient_info.csv", good.encode("gbk"), params={"encoding": "utf-8"}),
        422,
        "wrong-encoding",
    )
    r = _problem(_post(client, h, "patient_info.csv", good[:-30]), 422, "malformed-csv")
    assert r["receipt_id"]
    got = client.get(f"/api/v1/intake/batches/{r['receipt_id']}", headers=h).json()
    assert got["status"] == "failed" and got["totals"]["accepted"] == 0


def test_realtime_post(client, auth, inst):
    h = auth("uploader", institution=inst)
    pid = unique("P")
    rec = {
        "org_code": inst,
        "collected_at": "2025-03-02 10:00:00",
        "updated_at": "2025-03-01 10:00:00",
        "change_flag": "1",
        "patient_id": pid,
        "name": "张三",
        "sex": "1",
        "birth_date": "1949-12-31",
    }
    r = client.post(
        "/api/v1/intake/realtime/patient_info",
        headers=h,
        json=[rec, {**rec, "patient_id": unique("P"), "sex": "5"}],
    )
    assert r.status_code == 200, r.text
    b = r.json()
    assert (b["accepted"], b["rejected"]) == (1, 1) and b["problems"][0]["rule"] == "code"
    assert client.post("/api/v1/intake/realtime/nosuch", headers=h, json=rec).status_code == 404
    _problem(
        client.post("/api/v1/intake/realtime/patient_info", headers=h, content=b"{not json"), 400, "bad-json"
    )


def test_portal_page(client, auth, inst, patient_csv):
    h = auth("uploader", institution=inst)
    r = _post(
        client, h, "patient_info.csv", patient_csv([(inst, unique("P"), "2025-03-01 10:00:00", "1", "8")])
    )
    bid = r.json()["id"]
    page = client.get("/intake", headers=h)
    assert page.status_code == 200 and "数据采集" in page.text and bid in page.text
    detail = client.get(f"/intake/batches/{bid}", headers=h)
    assert detail.status_code == 200 and "问题清单" in detail.text and "代码不在值域内" in detail.text
