"""The FHIR R4 facade: `POST /fhir/r4` (transaction/batch Bundles into intake) and `GET /fhir/r4/metadata`."""

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
from rhip.errors import BadRequest, TooLarge
from rhip.fhir.intake import ingest_bundle, mapped_frames
from rhip.fhir.mapping import SUPPORTED, map_bundle
from rhip.intake import uploads
from rhip.intake.api import SENDERS, upload_institution
from rhip.lake.store import Lake
from rhip.security.deps import public, require
from rhip.security.service import Principal

router = APIRouter()
FHIR_JSON = "application/fhir+json"
BOOKING_TYPES = ("Schedule", "Slot", "Appointment")


def _fhir(body: dict[str, Any], status: int = 200) -> Response:
    # orjson: a response Bundle of thousands of entries serialises ~10x faster than json.dumps
    return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON)


def outcome(issues: list[tuple[str, str, str]]) -> dict[str, Any]:
    """An OperationOutcome from (severity, code, Chinese text) triples."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": s, "code": c, "diagnostics": t} for s, c, t in issues],
    }


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
    """The CapabilityStatement: what this FHIR server supports."""
    paths = {getattr(r, "path", "") for r in request.app.routes}
    resources = [
        {
            "type": t,
            "interaction": [{"code": "create"}, {"code": "update"}],
            "documentation": "经 transaction/batch Bundle 写入数据采集",
        }
        for t in SUPPORTED
    ]
    for t in BOOKING_TYPES:
        if any(p.startswith(f"/fhir/r4/{t}") for p in paths):
            resources.append({"type": t, "interaction": [{"code": "read"}, {"code": "search-type"}]})
    return _fhir(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": clock.now().date().isoformat(),
            "publisher": "rhip 区域全民健康信息平台",
            "kind": "instance",
            "software": {"name": "rhip", "version": rhip.__version__},
            "implementation": {
                "description": "南京区域全民健康信息平台 FHIR R4 接口",
                "url": str(request.base_url) + "fhir/r4",
            },
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "rest": [
                {
                    "mode": "server",
                    "security": {"description": "Bearer 令牌或 X-API-Key（机构上传密钥）"},
                    "resource": resources,
                    "interaction": [{"code": "transaction"}, {"code": "batch"}],
                }
            ],
        }
    )


def _parse_bundle(raw: bytes, inst: str, now_local: str, max_entries: int) -> tuple[Any, Any, Any]:
    with _gc_paused():
        try:
            body = orjson.loads(raw)
        except (orjson.JSONDecodeError, RecursionError) as exc:
            raise BadRequest(f"请求体不是有效的 JSON：{str(exc)[:100]}", code="bad-json") from None
        if not isinstance(body, dict):
            raise BadRequest("请求体应为 FHIR Bundle（JSON 对象）", code="not-a-bundle")
        entries = body.get("entry")
        if isinstance(entries, list) and len(entries) > max_entries:
            raise TooLarge(
                f"一个 Bundle 最多 {max_entries:,} 个 entry，本次 {len(entries):,} 个；请拆分后分批提交",
                code="too-many-entries",
                limit=max_entries,
            )
        mapped = map_bundle(body, institution_code=inst, collected_at=now_local)
        # the record frames too: building them allocates as much again, with the whole Bundle alive
        frames = mapped_frames(mapped) if not mapped.errors else None
    return body, mapped, frames


@router.post("")
async def bundle(
    request: Request,
    principal: Annotated[Principal, Depends(require(*SENDERS))],
    institution: str | None = None,
) -> Response:
    """Take a transaction/batch Bundle; answer a *-response Bundle, OperationOutcome per rejected entry.

    A `transaction` is all or nothing (FHIR R4 3.1.0.11.2): if any entry fails, nothing is stored and the
    answer is one OperationOutcome (422) naming every failing entry. A `batch` is judged entry by entry.
    """
    inst = upload_institution(principal, institution)
    settings: Settings = request.app.state.settings
    limit = settings.max_fhir_bundle_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise uploads.too_large(limit)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise uploads.too_large(limit)
    db: Database = request.app.state.db
    now_local = clock.local_now().strftime("%Y-%m-%d %H:%M:%S")
    # parsing and mapping a bundle is CPU (seconds for a large one): off the event loop, or /livez stalls
    body, mapped, frames = await run_in_threadpool(
        _parse_bundle, bytes(raw), inst, now_local, settings.max_fhir_entries
    )
    entries = body.get("entry") or []
    got = await run_in_threadpool(
        ingest_bundle,
        db,
        Lake(settings.resolved_lake_dir),
        body,
        institution_code=inst,
        submitted_by=principal.subject,
        collected_at=now_local,
        mapped=mapped,
        frames=frames,
    )
    transaction, problems, receipt_id = got.transaction, got.problems, got.receipt_id
    if got.refused:
        return _refused(problems, entries, receipt_id=receipt_id)
    out_entries: list[dict[str, Any]] = []
    for i, e in enumerate(entries):
        if i in problems:
            out_entries.append(
                {"response": {"status": "422 Unprocessable Entity", "outcome": outcome(problems[i])}}
            )
        else:
            out_entries.append({"response": {"status": "201 Created", "location": _location(e)}})
    kind = "transaction-response" if transaction else "batch-response"
    result: dict[str, Any] = {"resourceType": "Bundle", "type": kind, "entry": out_entries}
    if receipt_id:
        result["identifier"] = {"system": RECEIPT_SYSTEM, "value": receipt_id}
    return _fhir(result)


RECEIPT_SYSTEM = "https://rhip.example/intake/receipt"


def _location(entry: Any) -> str:
    res = entry.get("resource") if isinstance(entry, dict) else None
    return f"{res.get('resourceType')}/{res.get('id')}" if isinstance(res, dict) else ""


def _refused(
    problems: dict[int, list[tuple[str, str, str]]], entries: list[Any], *, receipt_id: str | None = None
) -> Response:
    """A failed transaction: one OperationOutcome naming every failing entry; nothing was stored."""
    issues: list[dict[str, Any]] = [
        {
            "severity": "error",
            "code": "processing",
            "diagnostics": f"事务未入库：{len(problems)} 个条目未通过校验，整个事务已回滚（未保存任何资源）",
        }
    ]
    for i in sorted(problems):
        for severity, code, text in problems[i]:
            issues.append(
                {
                    "severity": severity,
                    "code": code,
                    "diagnostics": f"Bundle.entry[{i}]（{_location(entries[i])}）：{text}",
                    "expression": [f"Bundle.entry[{i}]"],
                }
            )
    body: dict[str, Any] = {"resourceType": "OperationOutcome", "issue": issues}
    if receipt_id:
        body["extension"] = [{"url": RECEIPT_SYSTEM, "valueString": receipt_id}]
    return _fhir(body, status=422)
