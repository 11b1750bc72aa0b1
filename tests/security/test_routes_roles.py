"""Every route states its roles: no token gives 401, a wrong role 403, an allowed role passes."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from rhip.security.deps import declared_roles
from rhip.security.roles import Role
from rhip.web.app import ROUTERS
from tests.security.conftest import walk_routes

Route = tuple[str, APIRoute, frozenset[Role]]


def _routes(app) -> list[Route]:  # type: ignore[no-untyped-def]
    """Every API route of every router the app includes (web.app.ROUTERS), with its full path and roles."""
    out: list[Route] = []
    for module_name, prefix, _tag in ROUTERS:
        for path, route in walk_routes(importlib.import_module(module_name).router.routes, prefix):
            roles = declared_roles([d.call for d in route.dependant.dependencies])
            assert roles is not None, f"{route.methods} {path} declares no roles (use require() or public())"
            out.append((path, route, roles))
    schema_paths = set(app.openapi()["paths"])
    assert {p for p, r, _ in out if r.include_in_schema} <= schema_paths, "a listed router is not mounted"
    return out


def _path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "X0", path)


ROLE_REFUSAL = "role-forbidden"  # the code (and, on pages, the words) of require()'s refusal
ROLE_WORDS = "无权访问此接口"


def _answer(client: TestClient, path: str, route: APIRoute, headers: dict[str, str]) -> tuple[int, str]:
    method = sorted(route.methods - {"HEAD", "OPTIONS"})[0]
    kwargs: dict[str, object] = {"headers": headers}
    if method in {"POST", "PUT", "PATCH"}:
        kwargs["json"] = {}
    r = client.request(method, _path(path), **kwargs)  # type: ignore[arg-type]
    return r.status_code, r.text


def _call(client: TestClient, path: str, route: APIRoute, headers: dict[str, str]) -> int:
    return _answer(client, path, route, headers)[0]


def _role_refused(status: int, text: str) -> bool:
    """A 403 from the role check itself (not a refusal about the data, e.g. a record without consent)."""
    return status == 403 and (ROLE_REFUSAL in text or ROLE_WORDS in text)


def test_every_route_declares_roles(app_) -> None:  # type: ignore[no-untyped-def]
    routes = _routes(app_)
    assert len(routes) >= 5
    assert any(roles for _p, _r, roles in routes), "no protected route found"


def test_protected_routes_refuse_and_admit(
    client: TestClient, app_, auth: Callable[..., dict[str, str]]
) -> None:  # type: ignore[no-untyped-def]
    checked = 0
    for path, route, roles in _routes(app_):
        if not roles:
            continue
        assert _call(client, path, route, {}) == 401, f"{path} without token"
        assert _call(client, path, route, {"Authorization": "Bearer not-a-jwt"}) == 401, f"{path} bad token"
        for role in Role:
            status, text = _answer(client, path, route, auth(role.value, institution="H001"))
            if role in roles:
                assert status != 401 and not _role_refused(status, text), (
                    f"{path} refused allowed role {role}"
                )
            else:
                assert _role_refused(status, text), f"{path} admitted {role}: {status}"
        checked += 1
    assert checked >= 3


def test_public_routes_answer_without_token(client: TestClient, app_) -> None:  # type: ignore[no-untyped-def]
    for path, route, roles in _routes(app_):
        if roles or "{" in path or "GET" not in route.methods:
            continue
        r = client.get(path)
        assert r.status_code not in (401, 403, 500), f"{path}: {r.status_code}"


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_audit_log_visible_to_auditors(
    client: TestClient, auth: Callable[..., dict[str, str]], role: str
) -> None:
    r = client.get("/api/v1/audit", headers=auth(role))
    assert r.status_code == 200
    assert isinstance(r.json(), list)


def test_forbidden_is_problem_json(client: TestClient, auth: Callable[..., dict[str, str]]) -> None:
    r = client.get("/api/v1/audit", headers=auth("resident"))
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 403 and body["code"] == "role-forbidden" and "居民" in body["detail"]
    r = client.get("/api/v1/audit")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["code"] == "auth-required"


def test_login_and_api_key_flow(client: TestClient, auth: Callable[..., dict[str, str]], db) -> None:  # type: ignore[no-untyped-def]
    import uuid

    from rhip.security import service as security

    name = f"mgr-{uuid.uuid4().hex[:6]}"
    with db.session() as s, s.begin():
        security.create_user(
            s, username=name, password="manager-pass-1", role="manager", display_name="王管理"
        )
    r = client.post("/api/v1/auth/token", data={"username": name, "password": "wrong"})
    assert r.status_code == 401 and r.json()["code"] == "bad-credentials"
    r = client.post("/api/v1/auth/token", data={"username": name, "password": "manager-pass-1"})
    assert r.status_code == 200, r.text
    bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
    me = client.get("/api/v1/auth/me", headers=bearer).json()
    assert me["subject"] == name and me["role"] == "manager" and me["role_label"] == "信息中心管理员"
    from rhip.registry import data as registry_data

    code = registry_data.institutions()[0].code
    r = client.post("/api/v1/auth/api-keys", json={"institution_code": code, "name": "HIS"}, headers=bearer)
    assert r.status_code == 201, r.text
    key = r.json()["api_key"]
    me = client.get("/api/v1/auth/me", headers={"X-API-Key": key}).json()
    assert me == {**me, "role": "uploader", "institution_code": code, "via": "api_key"}
    r = client.post("/api/v1/auth/api-keys", json={"institution_code": "NOPE", "name": "x"}, headers=bearer)
    assert r.status_code == 404
    assert client.get("/api/v1/auth/me", headers={"X-API-Key": "rhip_bad_key"}).status_code == 401
    events = client.get("/api/v1/audit?action=login", headers=auth("auditor")).json()
    assert any(e["actor"] == name and e["outcome"] == "denied" for e in events)
    assert any(e["actor"] == name and e["outcome"] == "ok" for e in events)
