"""The app: health, problem+json for every kind of error, OpenAPI, the home page."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import event


def test_healthz(client: TestClient, backend: str) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["database"] == ("sqlite" if backend == "sqlite" else "postgresql")


def test_livez_answers_without_the_database(client: TestClient) -> None:
    statements: list[str] = []

    def count(_conn: object, _cur: object, sql: str, *_a: object) -> None:
        statements.append(sql)

    engine = client.app.state.db.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", count)
    try:
        r = client.get("/livez")
        during_livez = list(statements)
        client.get("/healthz")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert during_livez == []  # /livez touches no database
    assert any("SELECT 1" in sql for sql in statements)  # /healthz does, and the listener sees it


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"].startswith("rhip")
    assert "/api/v1/registry/institutions" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_unknown_path_is_problem_json(client: TestClient) -> None:
    r = client.get("/api/v1/nope")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"] == "路径不存在：/api/v1/nope"


def test_unknown_page_is_html_in_chinese(client: TestClient) -> None:
    r = client.get("/nope", headers={"accept": "text/html"})
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    assert "未找到" in r.text


def test_bad_query_is_422_problem(client: TestClient) -> None:
    r = client.get("/api/v1/registry/institutions?limit=abc")
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "request-invalid" and body["errors"][0]["loc"][-1] == "limit"


def test_bad_method_is_405_problem(client: TestClient) -> None:
    r = client.delete("/healthz")
    assert r.status_code == 405 and r.json()["status"] == 405


def test_login_form_missing_fields(client: TestClient) -> None:
    r = client.post("/api/v1/auth/token", data={"username": "x"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")


def test_home_page_lists_the_parts(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    for text in ["区域全民健康信息平台", "机构注册库", "数据采集", "预约挂号", "信息化简报"]:
        assert text in r.text
    assert client.get("/static/htmx.min.js").status_code == 200


def test_pages_send_people_to_sign_in_and_back(client: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    import uuid

    from rhip.security import service as security

    r = client.get("/quality?month=2025-03", headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/quality%3Fmonth%3D2025-03"
    page = client.get("/login?next=/quality")
    assert page.status_code == 200 and "工作人员登录" in page.text
    name = f"mgr-{uuid.uuid4().hex[:6]}"
    with db.session() as s, s.begin():
        security.create_user(s, username=name, password="manager-pass-9", role="manager")
    bad = client.post(
        "/login", data={"username": name, "password": "nope", "next": "/quality"}, follow_redirects=False
    )
    assert bad.status_code == 303 and bad.headers["location"].startswith("/login?next=/quality&msg=")
    assert "rhip_token" not in bad.cookies
    evil = client.post(
        "/login",
        data={"username": name, "password": "manager-pass-9", "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert evil.headers["location"] == "/"
    ok = client.post(
        "/login",
        data={"username": name, "password": "manager-pass-9", "next": "/quality"},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/quality"
    client.cookies.set("rhip_token", ok.cookies["rhip_token"])
    assert client.get("/api/v1/auth/me").json()["role"] == "manager"
    client.cookies.clear()
    out = client.get("/logout", follow_redirects=False)
    assert out.status_code == 303 and 'rhip_token=""' in out.headers["set-cookie"]
