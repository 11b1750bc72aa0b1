"""The catalogue's JSON API and pages, on a bare app and through create_app's wiring."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rhip.registry import api_catalogue, pages_catalogue
from rhip.web import problems
from rhip.web.app import make_templates

API = "/api/v1/registry"


@pytest.fixture(scope="module")
def bare() -> Iterator[TestClient]:
    """Only the catalogue routers, so these tests do not depend on the database."""
    app = FastAPI()
    app.state.templates = make_templates()
    problems.install(app)
    app.include_router(api_catalogue.router, prefix=API)
    app.include_router(pages_catalogue.router)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_list_datasets(bare: TestClient) -> None:
    r = bare.get(f"{API}/datasets")
    assert r.status_code == 200
    body = r.json()
    assert len(body) >= 18
    visit = next(d for d in body if d["name"] == "outpatient_visit")
    assert visit["label"] == "门急诊就诊记录" and visit["realtime"] is True
    assert visit["business_key"] == ["visit_no"] and visit["event_time"] == "visit_time"


def test_realtime_filter(bare: TestClient) -> None:
    realtime = bare.get(f"{API}/datasets", params={"realtime": "true"}).json()
    assert len(realtime) == 12 and all(d["realtime"] for d in realtime)
    scheduled = bare.get(f"{API}/datasets", params={"realtime": "false"}).json()
    assert scheduled and not any(d["realtime"] for d in scheduled)
    ph = bare.get(f"{API}/datasets", params={"category": "public_health"}).json()
    names = {d["name"] for d in ph}
    assert {"health_record", "hypertension_followup", "diabetes_followup", "mch_child_exam"} <= names
    assert all(d["category"] == "public_health" for d in ph)


def test_dataset_detail(bare: TestClient) -> None:
    r = bare.get(f"{API}/datasets/diagnosis")
    assert r.status_code == 200
    body = r.json()
    common = ["org_code", "collected_at", "updated_at", "change_flag"]
    assert [f["name"] for f in body["fields"][:4]] == common
    code = next(f for f in body["fields"] if f["name"] == "diagnosis_code")
    assert code["code_system"] == "icd10" and code["required"] is True and code["type_label"] == "代码"
    link = {"fields": ["visit_no"], "dataset": "outpatient_visit", "target_fields": ["visit_no"]}
    assert link in body["links"]


def test_unknown_dataset_is_problem_json(bare: TestClient) -> None:
    r = bare.get(f"{API}/datasets/nope")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "dataset-not-found" and "outpatient_visit" in body["detail"]


def test_code_systems(bare: TestClient) -> None:
    body = bare.get(f"{API}/codesystems").json()
    ids = {cs["id"]: cs for cs in body}
    assert {"sex", "icd10", "department", "change_flag", "modality"} <= set(ids)
    assert ids["icd10"]["size"] >= 400
    assert ids["department"]["external"] is True
    sex = bare.get(f"{API}/codesystems/sex").json()
    assert [c["code"] for c in sex["codes"]] == ["0", "1", "2", "9"] and sex["total"] == 4


def test_icd10_search_and_pagination(bare: TestClient) -> None:
    page1 = bare.get(f"{API}/codesystems/icd10", params={"limit": 50}).json()
    assert page1["total"] >= 400 and len(page1["codes"]) == 50 and page1["codes"][0]["chapter"] == "I"
    page2 = bare.get(f"{API}/codesystems/icd10", params={"limit": 50, "offset": 50}).json()
    assert page2["codes"][0]["code"] > page1["codes"][-1]["code"]
    hits = bare.get(f"{API}/codesystems/icd10", params={"q": "高血压"}).json()
    assert "I10" in {c["code"] for c in hits["codes"]} and hits["q"] == "高血压"
    by_code = bare.get(f"{API}/codesystems/icd10", params={"q": "e11"}).json()
    assert all(c["code"].startswith("E11") for c in by_code["codes"]) and by_code["total"] == 8
    assert bare.get(f"{API}/codesystems/icd10", params={"limit": 0}).status_code == 422


def test_unknown_code_system(bare: TestClient) -> None:
    r = bare.get(f"{API}/codesystems/nope")
    assert r.status_code == 404 and r.json()["code"] == "codesystem-not-found"


def test_id_check(bare: TestClient) -> None:
    ok = bare.get(f"{API}/id-check", params={"number": "11010519491231002x"}).json()
    assert ok["ok"] is True and ok["normalized"] == "11010519491231002X"
    assert ok["birth_date"] == "1949-12-31" and ok["sex"] == "2" and ok["sex_display"] == "女性"
    bad = bare.get(f"{API}/id-check", params={"number": "320106198506151232"}).json()
    assert bad["ok"] is False and bad["errors"][0]["rule"] == "id-check-char"
    mismatch = bare.get(
        f"{API}/id-check", params={"number": "320106198506151231", "birth_date": "1985-06-16", "sex": "2"}
    ).json()
    assert {e["rule"] for e in mismatch["errors"]} == {"id-birth-mismatch", "id-sex-mismatch"}
    assert bare.get(f"{API}/id-check").status_code == 422


def test_datasets_page(bare: TestClient) -> None:
    r = bare.get("/registry/datasets")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    html = r.text
    assert "数据集目录" in html and "门急诊就诊记录" in html and "实时" in html
    assert "<code>visit_no</code>" in html and 'href="/registry/datasets/outpatient_visit"' in html


def test_dataset_page(bare: TestClient) -> None:
    r = bare.get("/registry/datasets/discharge_summary")
    assert r.status_code == 200
    assert "出院小结" in r.text and "total_fee" in r.text and "离院方式" in r.text and "WS/T 500.53" in r.text
    missing = bare.get("/registry/datasets/nope", headers={"accept": "text/html"})
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert "不存在" in missing.text


def test_code_system_page(bare: TestClient) -> None:
    r = bare.get("/registry/codesystems/icd10", params={"q": "肺炎"})
    assert r.status_code == 200 and "J18.9" in r.text
    r = bare.get("/registry/codesystems/icd10", params={"page": 2})
    assert r.status_code == 200 and "第 2 /" in r.text


def test_routes_are_public(bare: TestClient) -> None:
    from fastapi.routing import APIRoute

    from rhip.security.deps import declared_roles

    for router in (api_catalogue.router, pages_catalogue.router):
        for route in router.routes:
            assert isinstance(route, APIRoute)
            assert declared_roles([d.call for d in route.dependant.dependencies]) == frozenset(), route.path


def test_wired_into_the_app(client: TestClient) -> None:
    """Through create_app (conftest's client): the routers are mounted at their prefixes."""
    assert client.get(f"{API}/datasets", params={"realtime": "true"}).status_code == 200
    assert client.get("/registry/datasets").status_code == 200
