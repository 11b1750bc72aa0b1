"""Quality API and pages: figures and exports, declarations, problems and their states, inspections, roles."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from rhip.quality import dimensions, figures


def test_figures_managers_all_uploaders_their_own(client, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/quality/figures", params={"month": "2023-06"}, headers=auth("manager"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["month"] == "2023-06"
    assert {u["kind"] for u in body["units"]} == {"district", "hospital"}
    mine = client.get(
        "/api/v1/quality/figures",
        params={"month": "2023-06"},
        headers=auth("uploader", institution="C32010201"),
    ).json()
    assert [u["code"] for u in mine["units"]] == [
        "D320102"
    ]  # a community centre reports through its district
    assert client.get("/api/v1/quality/figures", headers=auth("resident")).status_code == 403
    assert (
        client.get(
            "/api/v1/quality/figures", params={"month": "2023-13x"}, headers=auth("manager")
        ).status_code
        == 422
    )


def test_exports_csv_and_xlsx(client, auth) -> None:  # type: ignore[no-untyped-def]
    h = auth("manager")
    c = client.get("/api/v1/quality/figures.csv", params={"month": "2023-06"}, headers=h)
    assert c.status_code == 200 and c.content.decode("utf-8-sig").startswith("机构代码,接入单位")
    x = client.get("/api/v1/quality/figures.xlsx", params={"month": "2023-06"}, headers=h)
    ws = load_workbook(io.BytesIO(x.content)).active
    assert ws["B1"].value == "接入单位" and ws["D2"].data_type == "n"
    assert client.get("/api/v1/quality/figures.pdf", headers=h).status_code == 422


def test_declarations(client, auth) -> None:  # type: ignore[no-untyped-def]
    h = auth("uploader", institution="H027")
    r = client.put(
        "/api/v1/quality/declarations/H027", json={"tables": ["outpatient_visit", "admission"]}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.json()["declared"] == 2 and r.json()["required"] > 2
    assert client.put("/api/v1/quality/declarations/H028", json={"tables": []}, headers=h).status_code == 403
    bad = client.put("/api/v1/quality/declarations/H027", json={"tables": ["nope"]}, headers=h)
    assert bad.status_code == 422


def test_problem_lifecycle(client, auth) -> None:  # type: ignore[no-untyped-def]
    m, up = auth("manager"), auth("uploader", institution="H030")
    r = client.post(
        "/api/v1/quality/items",
        json={
            "institution_code": "H030",
            "title": "门急诊上传率偏低",
            "dimension": "completeness",
            "due_on": "2025-05-31",
        },
        headers=m,
    )
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["status"] == "open" and item["status_label"] == "待整改"
    url = f"/api/v1/quality/items/{item['id']}"
    assert client.post(f"{url}/move", json={"to": "verified"}, headers=m).status_code == 409
    assert (
        client.post(f"{url}/move", json={"to": "rectifying", "comment": "已排查接口"}, headers=up).status_code
        == 200
    )
    assert client.post(f"{url}/move", json={"to": "verified"}, headers=up).status_code == 403
    assert client.post(f"{url}/comments", json={"body": "请补传 3 月数据"}, headers=m).status_code == 201
    assert client.post(f"{url}/move", json={"to": "verified"}, headers=m).status_code == 200
    closed = client.post(f"{url}/move", json={"to": "closed"}, headers=m).json()
    assert closed["status"] == "closed"
    assert [c["status_to"] for c in closed["comments"]] == ["rectifying", None, "verified", "closed"]
    other = auth("uploader", institution="H031")
    assert client.get(url, headers=other).status_code == 403
    assert all(
        i["institution_code"] == "H031"
        for i in client.get("/api/v1/quality/items", headers=other).json()["items"]
    )


def test_inspections(client, auth) -> None:  # type: ignore[no-untyped-def]
    m = auth("manager")
    body = {"institution_code": "H020", "scheduled_on": "2020-05-19", "note": "数据质量提升专项检查"}
    assert client.post("/api/v1/quality/inspections", json=body, headers=m).status_code == 201
    assert client.post("/api/v1/quality/inspections", json=body, headers=m).status_code == 409
    got = client.get(
        "/api/v1/quality/inspections", params={"start": "2020-05-01", "end": "2020-05-31"}, headers=m
    )
    assert [i["institution_code"] for i in got.json()] == ["H020"]


def test_dashboard_and_bulletin_pages(client, auth) -> None:  # type: ignore[no-untyped-def]
    h = auth("manager")
    r = client.get("/quality", params={"month": "2023-06", "unit": "H020"}, headers=h)
    assert r.status_code == 200, r.text
    assert "数据采集情况（区）" in r.text and "实时数据上传日历" in r.text and "南京鼓楼医院" in r.text
    mine = client.get("/quality", params={"month": "2023-06"}, headers=auth("uploader", institution="H020"))
    assert "数据采集情况（区）" not in mine.text and "南京鼓楼医院" in mine.text
    b = client.get("/bulletin", params={"month": "2023-06"}, headers=h)
    assert b.status_code == 200 and "南京卫生信息化简报" in b.text and "2023年第7期" in b.text
    x = client.get("/bulletin/2023-06.xlsx", headers=h)
    assert x.status_code == 200 and "数据采集情况（医院）" in load_workbook(io.BytesIO(x.content)).sheetnames
    assert client.get("/bulletin", headers=auth("resident")).status_code == 403


def test_modified_z_and_dimensions() -> None:
    assert dimensions.modified_z(100, [100, 101, 99]) == 0.0
    z = dimensions.modified_z(400, [100, 110, 90, 105, 95])
    assert z is not None and z > 3.5
    assert dimensions.modified_z(5, [1, 2]) is None
    u = figures.UnitFigures(
        code="H020",
        name="南京鼓楼医院",
        kind="hospital",
        uploads=1000,
        rejected=100,
        upload_days=20,
        active_days=31,
        forms=11,
        visits=400,
        visits_realtime=100,
    )
    a = dimensions.assess_unit(
        u, {"2025-01": 100, "2025-02": 110, "2024-12": 90, "2024-11": 105}, "2025-03", dimensions.Thresholds()
    )
    assert set(a.failed) == {"timeliness", "conformity", "continuity", "consistency", "outlier"}
    assert a.values["completeness"] == 11 / 12 and a.score is not None
    loose = dimensions.assess_unit(
        u, {}, "2025-03", dimensions.Thresholds(timeliness=0.2, conformity=0.5, continuity=0.5)
    )
    assert loose.failed == {}
