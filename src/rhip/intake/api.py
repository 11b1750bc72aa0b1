"""Intake JSON API: batch uploads (multipart or raw, streamed to disk), real-time forms, CDA documents,
receipts and problem lists (JSON, CSV, XLSX)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.orm import Session

from rhip import clock
from rhip.config import Settings
from rhip.db.engine import Database
from rhip.errors import BadRequest, Forbidden, Invalid
from rhip.intake import cda, export, pipeline, reading, service, uploads
from rhip.intake.schemas import (
    BatchPage,
    BatchRead,
    CdaCount,
    CdaCountPage,
    CdaRead,
    RealtimeRead,
    batch_read,
    problem_fields,
)
from rhip.lake.store import Lake
from rhip.security.deps import SessionDep, audit_read, require
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter()
SENDERS = (Role.uploader, Role.manager, Role.admin)
READERS = (Role.uploader, Role.manager, Role.admin, Role.auditor)
MAX_JSON_BYTES = 64 * 1024 * 1024


def upload_institution(principal: Principal, requested: str | None) -> str:
    """The institution a sender uploads for: an uploader only its own; a manager names one."""
    if principal.role is Role.uploader:
        if not principal.institution_code:
            raise Forbidden("上传员未绑定机构，不能上传", code="no-institution")
        if requested and requested != principal.institution_code:
            raise Forbidden(
                f"只能上传本机构（{principal.institution_code}）的数据，不能代 {requested} 上传",
                code="other-institution",
            )
        return principal.institution_code
    code = requested or principal.institution_code
    if not code:
        raise BadRequest("请用 institution 参数指明机构代码", code="institution-required")
    return code


def _lake(request: Request) -> Lake:
    settings: Settings = request.app.state.settings
    return Lake.from_settings(settings)


def _workdir(request: Request) -> Path:
    settings: Settings = request.app.state.settings
    root = settings.data_dir / "intake" / "incoming"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="up_", dir=root))


def _receipt(request: Request, batch_id: str, viewer: Principal) -> BatchRead:
    db: Database = request.app.state.db
    with db.session() as s:
        return batch_read(s, service.get_batch(s, batch_id=batch_id), problems_limit=200, viewer=viewer)


@router.post("/batches", response_model=BatchRead, status_code=201)
async def upload_batch(
    request: Request,
    principal: Annotated[Principal, Depends(require(*SENDERS))],
    institution: Annotated[str | None, Query(max_length=32)] = None,
    table: Annotated[str | None, Query(max_length=64)] = None,
    encoding: Annotated[str | None, Query(max_length=16)] = None,
    filename: Annotated[str | None, Query(max_length=255)] = None,
) -> BatchRead:
    """Upload one or more files (定时上传): multipart `file` parts, or a raw body with `table`/`filename`."""
    settings: Settings = request.app.state.settings
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise uploads.too_large(limit)
    inst = upload_institution(principal, institution)
    workdir = _workdir(request)
    try:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/"):
            got = await uploads.receive_multipart(
                request.stream(), content_type=ctype, folder=workdir, limit=limit
            )
            table = table or got.fields.get("table") or None
            encoding = encoding or got.fields.get("encoding") or None
            if got.fields.get("institution"):
                inst = upload_institution(principal, got.fields["institution"])
            files = got.files
        else:
            path = workdir / "body"
            await uploads.receive_raw(request.stream(), path=path, limit=limit)
            files = [(uploads.client_filename(filename, f"{table}.csv" if table else "upload.csv"), path)]
        if not files:
            raise BadRequest("请求中没有文件（multipart 字段 file）", code="no-file")
        if table and len(files) > 1:
            raise BadRequest("多个文件时不能用 table 参数；请用文件名标明数据表", code="table-ambiguous")
        ups = [reading.Upload(path=p, filename=name, table=table, encoding=encoding) for name, p in files]
        # headers first, off the event loop: a wrong header is refused before any file is parsed
        await run_in_threadpool(reading.check_headers_first, ups)
        db: Database = request.app.state.db
        receipt = await run_in_threadpool(
            service.ingest,
            db,
            _lake(request),
            institution_code=inst,
            submitted_by=principal.subject,
            channel="batch",
            uploads=ups,
            workdir=workdir,
        )
        return _receipt(request, receipt.batch_id, principal)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def parse_records(raw: bytes) -> list[dict[str, Any]]:
    """Records from a JSON body: one object, a list, or {"records": [...]}."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BadRequest(f"请求体不是有效的 JSON：{str(exc)[:100]}", code="bad-json") from None
    if isinstance(body, dict) and isinstance(body.get("records"), list):
        body = body["records"]
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list) or not body:
        raise Invalid("请求体应为一条记录（JSON 对象）或记录数组", code="no-records")
    if len(body) > 100_000:
        raise Invalid("实时上传一次最多 100000 条记录；更多请用定时上传", code="too-many-records")
    for rec in body:
        if not isinstance(rec, dict):
            raise Invalid("每条记录必须是 JSON 对象", code="not-an-object")
    return body


def _realtime_frames(ds: Any, raw: bytes) -> dict[str, Any]:
    return dict(service.records_frames(ds.name, parse_records(raw)))


@router.post("/realtime/{table}", response_model=RealtimeRead)
async def upload_realtime(
    table: str,
    request: Request,
    principal: Annotated[Principal, Depends(require(*SENDERS))],
    institution: Annotated[str | None, Query(max_length=32)] = None,
) -> RealtimeRead:
    """Real-time form upload (实时上传): one or many records as JSON, answered synchronously."""
    ds = reading.get_dataset(table)
    inst = upload_institution(principal, institution)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            raise uploads.too_large(MAX_JSON_BYTES)
    # parsing and framing a large body is CPU: off the event loop
    frames = await run_in_threadpool(_realtime_frames, ds, bytes(raw))
    db: Database = request.app.state.db
    receipt = await run_in_threadpool(
        service.ingest,
        db,
        _lake(request),
        institution_code=inst,
        submitted_by=principal.subject,
        channel="realtime",
        frames=frames,
    )
    out = receipt.outcome
    counts = out.tables.get(ds.name, pipeline.TableCounts())
    problems = out.problems.to_dicts() if out.problems is not None else []
    return RealtimeRead(
        receipt_id=receipt.batch_id,
        table=ds.name,
        received=counts.received,
        accepted=counts.accepted,
        updated=counts.updated,
        revoked=counts.revoked,
        duplicate=counts.duplicate,
        rejected=counts.rejected,
        problems=[
            {
                "row": p.get("row"),
                "rule": p.get("rule"),
                "field": p.get("field"),
                **problem_fields(p, principal),
            }
            for p in problems
        ],
    )


@router.post("/cda", response_model=CdaRead, status_code=201)
async def upload_cda(
    request: Request,
    principal: Annotated[Principal, Depends(require(*SENDERS))],
    institution: Annotated[str | None, Query(max_length=32)] = None,
) -> CdaRead:
    """Upload one CDA shared document (WS/T 500, HL7 CDA R2 XML): kept, counted and mapped into intake."""
    inst = upload_institution(principal, institution)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cda.MAX_CDA_BYTES:
        raise uploads.too_large(cda.MAX_CDA_BYTES)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > cda.MAX_CDA_BYTES:
            raise uploads.too_large(cda.MAX_CDA_BYTES)
    now_local = clock.local_now().strftime("%Y-%m-%d %H:%M:%S")
    db: Database = request.app.state.db
    doc, receipt, kept = await run_in_threadpool(
        cda.ingest_document,
        db,
        _lake(request),
        bytes(raw),
        institution_code=inst,
        submitted_by=principal.subject,
        collected_at=now_local,
    )
    return CdaRead(
        document_id=doc.document_id,
        doc_type=doc.doc_type.code,
        doc_type_label=doc.doc_type.label,
        title=doc.title,
        new_document=kept,
        receipt=_receipt(request, receipt.batch_id, principal),
    )


@router.get("/cda/counts", response_model=CdaCountPage)
def cda_counts(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*READERS))],
    institution: Annotated[str | None, Query(max_length=32)] = None,
) -> CdaCountPage:
    """CDA documents kept per institution and document type (the bulletin's CDA 文档 column)."""
    code = principal.institution_code if principal.role is Role.uploader else institution
    labels = {d.code: d.label for d in cda.DOC_TYPES.values()}
    return CdaCountPage(
        items=[
            CdaCount(institution_code=i, doc_type=t, doc_type_label=labels.get(t, t), documents=n)
            for i, t, n in service.cda_counts(session, institution_code=code)
        ]
    )


@router.get("/batches", response_model=BatchPage)
def list_batches(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*READERS))],
    institution: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> BatchPage:
    """Recent receipts: an institution's own, or (managers) any institution's."""
    code = institution
    if principal.role is Role.uploader:
        code = principal.institution_code
    items = service.recent_batches(session, institution_code=code, limit=limit)
    return BatchPage(items=[batch_read(session, b, problems_limit=0) for b in items])


@router.get("/batches/{batch_id}", response_model=BatchRead)
def get_batch(
    batch_id: str,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*READERS))],
    limit: Annotated[int, Query(ge=0, le=100_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> BatchRead:
    """A receipt: counts per table and the rejected records with their rule codes (personal values
    masked by role; the read audited when it shows problems)."""
    return audited_receipt(request, session, principal, batch_id, limit=limit, offset=offset)


def audited_receipt(
    request: Request,
    session: Session,
    principal: Principal,
    batch_id: str,
    *,
    limit: int,
    offset: int = 0,
    what: str = "intake.problems",
) -> BatchRead:
    """A receipt as this caller may see it (personal values masked), its read audited when it shows
    problems (the API's and the page's)."""
    with session.begin():
        batch = service.get_batch(session, batch_id=batch_id, principal=principal)
        out = batch_read(session, batch, problems_limit=limit, problems_offset=offset, viewer=principal)
        if out.problems:
            audit_read(session, request, principal, what=what, target=batch.id, results=len(out.problems))
    return out


def _problems(
    request: Request, session: Session, batch_id: str, principal: Principal, kind: str
) -> tuple[Any, list[Any]]:
    """A batch and its whole problem list for an export (masked by the export), the read audited."""
    with session.begin():
        batch = service.get_batch(session, batch_id=batch_id, principal=principal)
        _total, items = service.get_problems(session, batch_id=batch.id, limit=None)
        if items:
            audit_read(
                session,
                request,
                principal,
                what=f"intake.problems.{kind}",
                target=batch.id,
                results=len(items),
            )
    return batch, items


@router.get("/batches/{batch_id}/problems.csv")
def problems_csv(
    batch_id: str,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*READERS))],
) -> Response:
    """The problem list (问题清单) as CSV (UTF-8 with BOM, opens in Excel)."""
    batch, items = _problems(request, session, batch_id, principal, "csv")
    return Response(
        export.problems_csv(items),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="problems_{batch.id}.csv"'},
    )


@router.get("/batches/{batch_id}/problems.xlsx")
def problems_xlsx(
    batch_id: str,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*READERS))],
) -> Response:
    """The problem list (问题清单) as an Excel workbook."""
    batch, items = _problems(request, session, batch_id, principal, "xlsx")
    return Response(
        export.problems_xlsx(batch, items),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="problems_{batch.id}.xlsx"'},
    )
