"""The FHIR R4 facade's server-wide routes under /fhir/r4: transaction/batch Bundles and single resources
into intake, `$validate`, the StructureDefinitions of what it takes, and the CapabilityStatement.

FHIR routes convention: routes of a domain's own resources live in that domain (`DOMAIN/fhir_api.py`,
e.g. booking's Schedule/Slot/Appointment) and declare themselves in `FHIR_REST`; this module holds what
spans the domains (see docs/fhir.md).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

import rhip
from rhip import clock
from rhip.config import Settings
from rhip.db.engine import Database
from rhip.errors import BadRequest, NotFound, TooLarge
from rhip.fhir import capability, profiles
from rhip.fhir.elements import PROFILES
from rhip.fhir.intake import BundleResult, Issue, ingest_bundle, lookup_conditionals, mapped_frames
from rhip.fhir.mapping import SUPPORTED, map_bundle
from rhip.intake import uploads
from rhip.intake.api import SENDERS, upload_institution
from rhip.lake.store import Lake
from rhip.security.deps import public, require
from rhip.security.masking import Masker, mask_text
from rhip.security.service import Principal

router = APIRouter()
FHIR_JSON = "application/fhir+json"
MAX_BUNDLE_BYTES = 256 * 1024 * 1024
RECEIPT_SYSTEM = "urn:rhip:intake-receipt"
VALIDATE = "http://hl7.org/fhir/OperationDefinition/Resource-validate"
Senders = Annotated[Principal, Depends(require(*SENDERS))]

FHIR_REST: dict[str, Any] = {
    "resource": [
        {
            "type": t,
            "supportedProfile": [
                f"{{canonical}}/StructureDefinition/{p.id}" for p in PROFILES if p.type == t
            ],
            "documentation": "写入数据采集（intake）：单个资源或 transaction/batch Bundle 中的条目",
            "interaction": [{"code": "create"}, {"code": "update"}],
            "versioning": "no-version",
            "conditionalCreate": True,
            "conditionalUpdate": True,
            "operation": [{"name": "validate", "definition": VALIDATE}],
        }
        for t in SUPPORTED
    ]
    + [
        {
            "type": "StructureDefinition",
            "documentation": "本服务器各资源的约束 profile 与扩展定义",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": "url", "type": "uri"}, {"name": "type", "type": "token"}],
        },
        {"type": "Bundle", "operation": [{"name": "validate", "definition": VALIDATE}]},
    ],
    "interaction": [
        {"code": "transaction", "documentation": "全部成功才入库，任一条目未通过则整体拒绝（422）"},
        {"code": "batch", "documentation": "逐条目入库，每个条目各有 status 与 OperationOutcome"},
    ],
}


def _fhir(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # orjson: a response Bundle of thousands of entries serialises ~10x faster than json.dumps
    return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON, headers=headers)


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def issue_json(issue: Issue, *, prefix: str | None = None) -> dict[str, Any]:
    """One OperationOutcome issue (expressions rebased from the Bundle entry onto `prefix` if given)."""
    # the text may quote a submitted value: ID numbers and phones in it masked (security.masking)
    text = mask_text(issue.text)
    out: dict[str, Any] = {"severity": issue.severity, "code": issue.code, "diagnostics": text}
    if issue.rule:
        out["details"] = {
            "coding": [{"system": "urn:rhip:intake-rule", "code": issue.rule}],
            "text": text,
        }
    if issue.expression:
        exprs = list(issue.expression)
        if prefix is not None:
            exprs = [prefix + e.split("].resource", 1)[-1] if "].resource" in e else e for e in exprs]
        out["expression"] = exprs
    return out


def outcome(issues: list[Issue], *, prefix: str | None = None) -> dict[str, Any]:
    """An OperationOutcome of issues."""
    return {"resourceType": "OperationOutcome", "issue": [issue_json(i, prefix=prefix) for i in issues]}


_gc_lock = threading.Lock()
_gc_holders = 0


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a bundle is parsed and mapped.

    A bundle of thousands of resources allocates hundreds of thousands of dicts at once, which set off
    full collections that walk them all (half the parse-and-map time); none of them form cycles. Counted,
    so overlapping requests in other threads turn collection back on only when the last one finishes.
    """
    global _gc_holders
    with _gc_lock:
        _gc_holders += 1
        if _gc_holders == 1:
            gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0:
                gc.enable()


@router.get("/metadata", dependencies=[Depends(public())])
def metadata(request: Request) -> Response:
    """The CapabilityStatement: every resource, interaction, search parameter and operation served,
    merged from the `FHIR_REST` declarations of the modules that serve them."""
    settings = _settings(request)
    rest = capability.rest_of(request.app, canonical=settings.resolved_fhir_canonical)
    rest["security"] = {"description": "Bearer 令牌或 X-API-Key（机构上传密钥）；各资源的角色见 docs/fhir.md"}
    return _fhir(
        {
            "resourceType": "CapabilityStatement",
            "url": f"{settings.resolved_fhir_canonical}/CapabilityStatement/rhip",
            "name": "RhipFhirServer",
            "title": "rhip 区域全民健康信息平台 FHIR R4 接口",
            "status": "active",
            "date": clock.now().date().isoformat(),
            "publisher": "rhip 区域全民健康信息平台",
            "kind": "instance",
            "software": {"name": "rhip", "version": rhip.__version__},
            "implementation": {
                "description": "南京区域全民健康信息平台 FHIR R4 接口",
                "url": settings.fhir_base_url,
            },
            "fhirVersion": "4.0.1",
            "format": ["json", "application/fhir+json"],
            "rest": [rest],
        }
    )


@router.get("/StructureDefinition", dependencies=[Depends(public())])
def search_profiles(request: Request) -> Response:
    """Every StructureDefinition served (`url=` and `type=` narrow the search)."""
    settings = _settings(request)
    canonical = settings.resolved_fhir_canonical
    q = request.query_params
    items = [profiles.get(i, canonical=canonical) for i in profiles.ids()]
    found = [
        sd
        for sd in items
        if sd is not None
        and (not q.get("url") or sd["url"] == q["url"])
        and (not q.get("type") or sd["type"] == q["type"])
    ]
    base = settings.fhir_base_url.rstrip("/")
    return _fhir(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "link": [{"relation": "self", "url": f"{base}/StructureDefinition"}],
            "entry": [
                {
                    "fullUrl": f"{base}/StructureDefinition/{sd['id']}",
                    "resource": sd,
                    "search": {"mode": "match"},
                }
                for sd in found
            ],
        }
    )


@router.get("/StructureDefinition/{sd_id}", dependencies=[Depends(public())])
def read_profile(sd_id: str, request: Request) -> Response:
    """One StructureDefinition: a profile (`rhip-patient`, ...) or an extension (`fee-total`, ...)."""
    sd = profiles.get(sd_id, canonical=_settings(request).resolved_fhir_canonical)
    if sd is None:
        raise NotFound(f"没有这个 StructureDefinition：{sd_id[:64]}", code="not-found")
    return _fhir(sd)


async def _body(request: Request) -> bytes:
    """The request body, refused (413) as soon as it passes RHIP_MAX_FHIR_BUNDLE_BYTES."""
    limit = min(_settings(request).max_fhir_bundle_bytes, MAX_BUNDLE_BYTES)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise uploads.too_large(limit)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise uploads.too_large(limit)
    return bytes(raw)


def _parse(raw: bytes, max_entries: int) -> Any:
    """The parsed Bundle; refused when it is not JSON or has more entries than allowed."""
    try:
        body = orjson.loads(raw)
    except (orjson.JSONDecodeError, RecursionError) as exc:
        raise BadRequest(f"请求体不是有效的 JSON：{str(exc)[:100]}", code="bad-json") from None
    entries = body.get("entry") if isinstance(body, dict) else None
    if isinstance(entries, list) and len(entries) > max_entries:
        raise TooLarge(
            f"一个 Bundle 最多 {max_entries:,} 个 entry，本次 {len(entries):,} 个；请拆分后分批提交",
            code="too-many-entries",
            limit=max_entries,
        )
    return body


def _run(
    request: Request, inst: str, principal: Principal, body: Any, *, store_it: bool = True
) -> BundleResult:
    """Map and ingest (or only validate) a parsed Bundle; runs in a worker thread."""
    settings = _settings(request)
    db: Database = request.app.state.db
    lake = Lake.from_settings(settings)
    now_local = clock.local_now().strftime("%Y-%m-%d %H:%M:%S")
    with _gc_paused():
        found = lookup_conditionals(db, lake, body, institution_code=inst)
        mapped = map_bundle(body, institution_code=inst, collected_at=now_local, found=found)
        # the record frames too: building them allocates as much again, with the whole Bundle alive
        keep_going = not mapped.errors or body.get("type") == "batch" or not store_it
        frames = mapped_frames(mapped) if keep_going else None
    return ingest_bundle(
        db,
        lake,
        body,
        institution_code=inst,
        submitted_by=principal.subject,
        collected_at=now_local,
        mapped=mapped,
        frames=frames,
        canonical=settings.resolved_fhir_canonical,
        store_it=store_it,
    )


def _parse_and_run(
    request: Request, inst: str, principal: Principal, raw: bytes, store_it: bool
) -> tuple[Any, BundleResult]:
    with _gc_paused():
        body = _parse(raw, _settings(request).max_fhir_entries)
    return body, _run(request, inst, principal, body, store_it=store_it)


@router.post("")
async def bundle(request: Request, principal: Senders, institution: str | None = None) -> Response:
    """Take a transaction/batch Bundle; answer a *-response Bundle (status and location per entry, an
    OperationOutcome per rejected one).

    A `transaction` is all or nothing (FHIR R4 3.1.0.11.2): if any entry fails, nothing is stored and the
    answer is one OperationOutcome (422) naming every failing entry's element. A `batch` is judged entry by
    entry. Parsing, mapping and storing run off the event loop.
    """
    inst = upload_institution(principal, institution)
    raw = await _body(request)
    body, got = await run_in_threadpool(_parse_and_run, request, inst, principal, raw, True)
    entries = body.get("entry") or []
    if got.refused:
        return _refused(got, len(entries))
    out_entries: list[dict[str, Any]] = []
    for i in range(len(entries)):
        if i in got.problems:
            out_entries.append(
                {"response": {"status": "422 Unprocessable Entity", "outcome": outcome(got.problems[i])}}
            )
        else:
            resp = {"status": got.status.get(i, "200 OK")}
            if got.locations.get(i):
                resp["location"] = got.locations[i]
            out_entries.append({"response": resp})
    kind = "transaction-response" if got.transaction else "batch-response"
    result: dict[str, Any] = {"resourceType": "Bundle", "type": kind, "entry": out_entries}
    if got.receipt_id:
        result["identifier"] = {"system": RECEIPT_SYSTEM, "value": got.receipt_id}
    return _fhir(result)


def _refused(got: BundleResult, n_entries: int, *, prefix: str | None = None) -> Response:
    """A failed transaction: one OperationOutcome naming every failing entry; nothing was stored."""
    head = Issue(
        "error",
        "processing",
        f"事务未入库：{len(got.problems)} 个条目未通过校验，整个事务已回滚（未保存任何资源）"
        if prefix is None
        else "资源未通过校验，未保存",
    )
    issues = [head, *[x for i in sorted(got.problems) for x in got.problems[i]]]
    body = outcome(issues, prefix=prefix)
    if got.receipt_id:
        body["extension"] = [{"url": RECEIPT_SYSTEM, "valueString": got.receipt_id}]
    return _fhir(body, status=422)


def _single(rtype: str, res: Any, *, method: str, url: str, if_none_exist: str | None) -> dict[str, Any]:
    if not isinstance(res, dict) or res.get("resourceType") != rtype:
        raise BadRequest(f"请求体应为 {rtype[:40]} 资源", code="bad-resource")
    if method == "PUT" and "?" not in url:
        rid = url.split("/", 1)[1]
        if res.get("id") not in (None, rid):  # FHIR R4 3.1.0.4: the ids must agree
            raise BadRequest(f"资源 id（{str(res.get('id'))[:64]}）与 URL 中的 id 不一致", code="id-mismatch")
        res = {**res, "id": rid}
    req: dict[str, Any] = {"method": method, "url": url}
    if if_none_exist:
        req["ifNoneExist"] = if_none_exist
    return {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": res, "request": req}]}


def _check_type(rtype: str) -> None:
    if rtype not in SUPPORTED:
        raise NotFound(f"不支持的资源类型：{rtype[:40]}（支持 {'、'.join(SUPPORTED)}）", code="not-supported")


async def _write_one(
    request: Request, principal: Principal, rtype: str, institution: str | None, *, method: str, url: str
) -> Response:
    _check_type(rtype)
    inst = upload_institution(principal, institution)
    raw = await _body(request)

    def run() -> tuple[Any, BundleResult]:
        with _gc_paused():
            res = _parse(raw, _settings(request).max_fhir_entries)
        body = _single(rtype, res, method=method, url=url, if_none_exist=request.headers.get("if-none-exist"))
        return res, _run(request, inst, principal, body)

    res, got = await run_in_threadpool(run)
    if got.refused or got.problems:
        return _refused(got, 1, prefix=rtype)
    location = got.locations.get(0, "")
    status = got.status.get(0, "200 OK")
    key = location.rsplit("/", 1)[-1]
    # the stored resource echoed back, its people masked for the sender's role (security.masking)
    body = Masker(principal).fhir({**res, "id": key} if key else res)
    headers = {"Location": f"{_settings(request).fhir_base_url.rstrip('/')}/{location}"} if location else None
    return _fhir(body, int(status[:3]), headers=headers)


@router.post("/{rtype}")
async def create(
    request: Request, rtype: str, principal: Senders, institution: str | None = None
) -> Response:
    """Create one resource (`If-None-Exist: identifier=system|value` makes it conditional)."""
    return await _write_one(request, principal, rtype, institution, method="POST", url=rtype)


@router.put("/{rtype}")
async def conditional_update(
    request: Request, rtype: str, principal: Senders, institution: str | None = None
) -> Response:
    """Conditional update: `PUT Patient?identifier=system|value` updates the record that identifier names,
    or creates it."""
    ident = request.query_params.get("identifier")
    if not ident:
        raise BadRequest("条件更新需要 identifier=system|value 参数", code="condition-required")
    return await _write_one(
        request, principal, rtype, institution, method="PUT", url=f"{rtype}?identifier={ident}"
    )


@router.put("/{rtype}/{rid}")
async def update(
    request: Request, rtype: str, rid: str, principal: Senders, institution: str | None = None
) -> Response:
    """Update (or create) one resource at its id, the business key of its record."""
    return await _write_one(request, principal, rtype, institution, method="PUT", url=f"{rtype}/{rid}")


@router.post("/{rtype}/$validate")
async def validate(
    request: Request, rtype: str, principal: Senders, institution: str | None = None
) -> Response:
    """`$validate`: the OperationOutcome an upload of this resource (or Bundle) would get; stores nothing.

    The body is the resource, or a `Parameters` with a `resource` parameter. Checked like an upload: the
    catalogue's rules, codes and links against what this institution has stored (nothing is written)."""
    if rtype != "Bundle":
        _check_type(rtype)
    inst = upload_institution(principal, institution)
    raw = await _body(request)

    def run() -> BundleResult:
        with _gc_paused():
            res = _parse(raw, _settings(request).max_fhir_entries)
        if isinstance(res, dict) and res.get("resourceType") == "Parameters":
            res = next(
                (
                    p.get("resource")
                    for p in res.get("parameter") or []
                    if isinstance(p, dict) and p.get("name") == "resource"
                ),
                None,
            )
        if rtype == "Bundle":
            if not isinstance(res, dict) or res.get("resourceType") != "Bundle":
                raise BadRequest("请求体应为 Bundle", code="bad-resource")
            body = res
        else:
            body = _single(rtype, res, method="POST", url=rtype, if_none_exist=None)
        return _run(request, inst, principal, body, store_it=False)

    got = await run_in_threadpool(run)
    prefix = None if rtype == "Bundle" else rtype
    issues = [x for i in sorted(got.problems) for x in got.problems[i]]
    if not issues:
        issues = [Issue("information", "informational", "校验通过：按数据集目录的规则可以入库（未保存）")]
    return _fhir(outcome(issues, prefix=prefix))
