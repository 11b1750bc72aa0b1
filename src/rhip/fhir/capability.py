"""The CapabilityStatement, generated from what each FHIR router module declares.

Convention: a module whose router is mounted under `/fhir/r4` exports `FHIR_REST`, a fragment of
`CapabilityStatement.rest[0]` in FHIR JSON — `resource` (per type: `interaction`, `searchParam`,
`operation`, `supportedProfile`, ...), and system-level `interaction` and `operation` — with
`{canonical}` standing for the configured canonical base (`RHIP_FHIR_CANONICAL`). `/metadata` merges the
fragments of every module that serves a route under `/fhir/r4`, so a domain adds its resources by declaring
them beside its routes (it imports nothing from here). `undeclared(app)` lists routes no fragment declares;
a test fails on any.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

BASE = "/fhir/r4"
_KEYED = {"interaction": "code", "searchParam": "name", "operation": "name"}


def _walk(routes: Iterable[Any], prefix: str) -> Iterator[tuple[str, APIRoute]]:
    for r in routes:
        if isinstance(r, APIRoute):
            yield prefix + r.path, r
        elif hasattr(r, "original_router"):  # FastAPI's lazily included router
            ctx = getattr(r, "include_context", None)
            yield from _walk(r.original_router.routes, prefix + str(getattr(ctx, "prefix", "") or ""))


def fhir_routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    """The app's routes under the FHIR base, with their full paths."""
    return [(p, r) for p, r in _walk(app.routes, "") if p == BASE or p.startswith(BASE + "/")]


def declarations(app: FastAPI) -> list[tuple[str, dict[str, Any]]]:
    """(module, FHIR_REST) of every module serving a FHIR route, in mounting order."""
    seen: dict[str, dict[str, Any]] = {}
    for _path, r in fhir_routes(app):
        name = getattr(r.endpoint, "__module__", "")
        if name in seen:
            continue
        module = sys.modules.get(name)
        seen[name] = getattr(module, "FHIR_REST", None) or {}
    return list(seen.items())


def _fill(value: Any, canonical: str) -> Any:
    if isinstance(value, str):
        return value.replace("{canonical}", canonical)
    if isinstance(value, list):
        return [_fill(v, canonical) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, canonical) for k, v in value.items()}
    return value


def _merge_list(into: list[dict[str, Any]], items: Iterable[dict[str, Any]], key: str) -> None:
    have = {x.get(key) for x in into}
    for x in items:
        if x.get(key) not in have:
            into.append(x)
            have.add(x.get(key))


def merged_rest(fragments: Iterable[dict[str, Any]], *, canonical: str) -> dict[str, Any]:
    """One `rest` component from the modules' fragments (resources merged by type)."""
    resources: dict[str, dict[str, Any]] = {}
    rest: dict[str, Any] = {"mode": "server", "resource": [], "interaction": [], "operation": []}
    for frag in fragments:
        frag = _fill(frag, canonical)
        for res in frag.get("resource") or []:
            have = resources.get(res["type"])
            if have is None:
                resources[res["type"]] = {k: (list(v) if isinstance(v, list) else v) for k, v in res.items()}
                continue
            for k, v in res.items():
                if k in _KEYED:
                    _merge_list(have.setdefault(k, []), v, _KEYED[k])
                elif k == "supportedProfile":
                    have[k] = [*have.get(k, []), *[p for p in v if p not in have.get(k, [])]]
                else:
                    have.setdefault(k, v)
        _merge_list(rest["interaction"], frag.get("interaction") or [], "code")
        _merge_list(rest["operation"], frag.get("operation") or [], "name")
    rest["resource"] = [resources[t] for t in sorted(resources)]
    return {k: v for k, v in rest.items() if v}


def rest_of(app: FastAPI, *, canonical: str) -> dict[str, Any]:
    """The merged `rest` component for an app."""
    return merged_rest((frag for _m, frag in declarations(app)), canonical=canonical)


def _needs(method: str, rel: str) -> tuple[str, str | None, str] | None:
    """What a route under the FHIR base must be declared as: (kind, resource type or None, code)."""
    if rel in ("", "/"):
        return ("interaction", None, "transaction") if method == "POST" else None
    segs = rel.strip("/").split("/")
    if segs[0] == "metadata":
        return None  # the CapabilityStatement itself
    if segs[0].startswith("$"):
        return ("operation", None, segs[0][1:])
    rtype = None if segs[0].startswith("{") else segs[0]
    if len(segs) == 1:
        code = {"GET": "search-type", "POST": "create", "PUT": "update", "DELETE": "delete"}.get(method)
        return ("interaction", rtype, code) if code else None
    if segs[1].startswith("$"):
        return ("operation", rtype, segs[1][1:])
    if len(segs) == 2:
        code = {"GET": "read", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)
        return ("interaction", rtype, code) if code else None
    if segs[2].startswith("$"):
        return ("operation", rtype, segs[2][1:])
    if segs[2] == "_history":
        return ("interaction", rtype, "vread" if len(segs) > 3 else "history-instance")
    return ("unknown", rtype, rel)


_PARAM = re.compile(r"\{[^}]*\}")


def undeclared(app: FastAPI, *, canonical: str = "") -> list[str]:
    """Routes under /fhir/r4 that no module's FHIR_REST declares ("METHOD path: what is missing")."""
    rest = rest_of(app, canonical=canonical)
    by_type = {r["type"]: r for r in rest.get("resource", [])}
    system_ops = {o["name"] for o in rest.get("operation", [])}
    system_inter = {i["code"] for i in rest.get("interaction", [])}
    missing: list[str] = []
    for path, route in fhir_routes(app):
        rel = path[len(BASE) :]
        for method in sorted(route.methods or ()):
            need = _needs(method, rel)
            if need is None:
                continue
            kind, rtype, code = need
            if kind == "unknown":
                missing.append(f"{method} {path}: 不是 FHIR RESTful 形式的路径")
                continue
            if rtype is None and _PARAM.match(rel.strip("/").split("/")[0] or "x"):
                # /{type}/...: declared for at least one type
                ok = any(code in {x.get(_KEYED[kind]) for x in r.get(kind, [])} for r in by_type.values())
            elif rtype is None:
                ok = code in (system_ops if kind == "operation" else system_inter)
            else:
                r = by_type.get(rtype, {})
                ok = code in {x.get(_KEYED[kind]) for x in r.get(kind, [])}
            if not ok:
                missing.append(f"{method} {path}: 未声明 {kind} {code}" + (f"（{rtype}）" if rtype else ""))
    return missing
