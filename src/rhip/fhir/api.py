"""The FHIR R4 facade: `POST /fhir/r4` (transaction/batch Bundles into intake) and `GET /fhir/r4/metadata`."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

import rhip
from rhip import clock
from rhip.config import Settings
from rhip.db.engine import Database
from rhip.errors import BadRequest
from rhip.fhir.mapping import SUPPORTED, map_bundle
from rhip.intake import formats, pipeline, service, uploads
from rhip.intake.api import SENDERS, upload_institution
from rhip.lake.store import Lake
from rhip.security.deps import public, require
from rhip.security.service import Principal

router = APIRouter()
FHIR_JSON = "application/fhir+json"
MAX_BUNDLE_BYTES = 256 * 1024 * 1024
BOOKING_TYPES = ("Schedule", "Slot", "Appointment")


def _fhir(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


def outcome(issues: list[tuple[str, str, str]]) -> dict[str, Any]:
    """An OperationOutcome from (severity, code, Chinese text) triples."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": s, "code": c, "diagnostics": t} for s, c, t in issues],
    }


@router.get("/metadata", dependencies=[Depends(public())])
def metadata(request: Request) -> JSONResponse:
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


@router.post("")
async def bundle(
    request: Request,
    principal: Annotated[Principal, Depends(require(*SENDERS))],
    institution: str | None = None,
) -> JSONResponse:
    """Take a transaction/batch Bundle; answer a *-response Bundle, OperationOutcome per rejected entry."""
    inst = upload_institution(principal, institution)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BUNDLE_BYTES:
            raise uploads.too_large(MAX_BUNDLE_BYTES)
    try:
        body = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BadRequest(f"请求体不是有效的 JSON：{str(exc)[:100]}", code="bad-json") from None
    settings: Settings = request.app.state.settings
    db: Database = request.app.state.db
    now_local = clock.local_now().strftime("%Y-%m-%d %H:%M:%S")
    mapped = map_bundle(body, institution_code=inst, collected_at=now_local)
    frames = {}
    for table, rows in mapped.rows.items():
        ds = pipeline.get_dataset(table)
        frames[table] = pipeline.frame_of(ds, formats.table_from_records(rows))
    entries = body.get("entry") or []
    problems: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    for i, msg in mapped.errors.items():
        problems[i].append(("error", "not-supported", msg))
    receipt_id = None
    if frames:
        receipt = await run_in_threadpool(
            service.ingest,
            db,
            Lake(settings.resolved_lake_dir),
            institution_code=inst,
            submitted_by=principal.subject,
            channel="fhir",
            frames=frames,
        )
        receipt_id = receipt.batch_id
        if receipt.outcome.problems is not None:
            for p in receipt.outcome.problems.iter_rows(named=True):
                entry = mapped.entries[p["table_name"]][int(p["row"]) - 1]
                problems[entry].append(("error", "invalid", f"[{p['rule']}] {p['message']}"))
    out_entries: list[dict[str, Any]] = []
    for i, e in enumerate(entries):
        res = e.get("resource") if isinstance(e, dict) else {}
        loc = f"{res.get('resourceType')}/{res.get('id')}" if isinstance(res, dict) else None
        if i in problems:
            out_entries.append(
                {"response": {"status": "422 Unprocessable Entity", "outcome": outcome(problems[i])}}
            )
        else:
            out_entries.append({"response": {"status": "201 Created", "location": loc or ""}})
    kind = "transaction-response" if body.get("type") == "transaction" else "batch-response"
    result: dict[str, Any] = {"resourceType": "Bundle", "type": kind, "entry": out_entries}
    if receipt_id:
        result["identifier"] = {"system": "https://rhip.example/intake/receipt", "value": receipt_id}
    return _fhir(result)
