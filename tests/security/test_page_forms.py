"""A hand-written set of edge inputs for every page route (not in the OpenAPI schema): every form field
and path parameter gets empty, huge, NUL, out-of-range and malformed values, as several roles; the
answer is never a 5xx."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel

from rhip.web.app import ROUTERS
from tests.booking.conftest import new_person

Auth = Callable[..., dict[str, str]]
EDGES = [
    "",
    "x" * 4000,
    "a\x00b",
    str(2**64),
    "-1",
    "9999-99-99",
    "<script>alert(1)</script>",
    "'; --",
    "٣",
]


def _page_routes() -> list[tuple[str, APIRoute]]:
    out = []
    for module_name, prefix, _tag in ROUTERS:
        for r in importlib.import_module(module_name).router.routes:
            if isinstance(r, APIRoute) and not r.include_in_schema:
                out.append((prefix, r))
    return out


def _form_names(route: APIRoute) -> list[str]:
    names = []
    for p in route.dependant.body_params:
        model = p.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):  # a form model: its fields
            names += [f.alias or name for name, f in model.model_fields.items()]
        else:
            names.append(p.alias)
    return names + [p.alias for p in route.dependant.query_params]


def _path(prefix: str, route: APIRoute, value: str) -> str:
    path = prefix + route.path
    for p in route.dependant.path_params:
        path = path.replace("{" + p.name + "}", quote(value[:200], safe="") or "0")
    return path


def test_page_routes_never_answer_5xx(app_: Any, auth: Auth) -> None:
    # its own client address: the failed sign-ins it sends must not lock the address other tests share
    client = TestClient(
        app_,
        raise_server_exceptions=False,
        client=("10.250.0.2", 50000),
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    who = [
        {},
        auth("manager"),
        auth("resident", subject=new_person()),
    ]
    failures: list[str] = []
    seen = 0
    for prefix, route in _page_routes():
        names = _form_names(route)
        for method in sorted(route.methods - {"HEAD"}):
            for value in EDGES:
                for headers in who:
                    path = _path(prefix, route, value if value not in ("", "x" * 4000) else "1")
                    data = dict.fromkeys(names, value)
                    if method == "GET":
                        r = client.get(path, params=data, headers=headers, follow_redirects=False)
                    else:
                        r = client.request(method, path, data=data, headers=headers, follow_redirects=False)
                    seen += 1
                    if r.status_code >= 500:
                        failures.append(f"{method} {route.path} {value[:20]!r} -> {r.status_code}")
    assert seen > 200
    assert not failures, "\n".join(dict.fromkeys(failures))
