"""Pydantic response models for intake: receipts, per-table counts, problems."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from rhip.errors import NotFound
from rhip.intake import service
from rhip.intake.models import IntakeBatch
from rhip.registry import catalogue
from rhip.security.masking import Masker


class Counts(BaseModel):
    received: int = 0
    accepted: int = 0
    updated: int = 0
    revoked: int = 0
    duplicate: int = 0
    rejected: int = 0


class TableRead(Counts):
    table: str
    label: str


class ProblemRead(BaseModel):
    table: str
    file: str | None = None
    row: int
    business_key: str | None
    rule: str
    field: str | None
    value: str | None
    message: str


class BatchRead(BaseModel):
    id: str
    institution_code: str
    channel: str
    status: str
    status_label: str
    submitted_by: str
    created_at: datetime
    committed_at: datetime | None
    files: list[dict[str, Any]]
    totals: Counts
    tables: list[TableRead]
    rules: dict[str, int]
    problems_total: int
    problems: list[ProblemRead]
    error_code: str | None = None
    error_detail: str | None = None
    links: dict[str, str]


class BatchPage(BaseModel):
    items: list[BatchRead]


class RealtimeRead(Counts):
    receipt_id: str
    table: str
    problems: list[dict[str, Any]]


class CdaRead(BaseModel):
    """The answer to a CDA document upload: the document, whether it was new, and the receipt."""

    document_id: str
    doc_type: str
    doc_type_label: str
    title: str
    new_document: bool
    receipt: BatchRead


class CdaCount(BaseModel):
    institution_code: str
    doc_type: str
    doc_type_label: str
    documents: int


class CdaCountPage(BaseModel):
    items: list[CdaCount]


def _label(name: str) -> str:
    try:
        return catalogue.get(name).label
    except NotFound:  # a table no longer in the catalogue: its name
        return name


def problem_fields(p: Any, viewer: Any) -> dict[str, Any]:
    """A problem's personal values as this viewer may see them (security.masking, by field name): the
    value of an ID-number, phone, name or address field masked by its rule, every other text with its
    embedded ID numbers and phones masked."""
    m = Masker(viewer)
    return {
        "business_key": m.text(p["business_key"]),
        "value": m.field(p["field"], p["value"]),
        "message": m.text(p["message"]) or "",
    }


def batch_read(
    session: Session,
    batch: IntakeBatch,
    *,
    problems_limit: int = 1000,
    problems_offset: int = 0,
    viewer: Any = None,
) -> BatchRead:
    """A receipt as the API shows it, its problems' personal values masked for the viewer."""
    total, items = (
        service.get_problems(session, batch_id=batch.id, limit=problems_limit, offset=problems_offset)
        if problems_limit
        else (batch.rejected, [])
    )
    base = f"/api/v1/intake/batches/{batch.id}"
    return BatchRead(
        id=batch.id,
        institution_code=batch.institution_code,
        channel=batch.channel,
        status=batch.status,
        status_label=service.STATUS_LABELS.get(batch.status, batch.status),
        submitted_by=batch.submitted_by,
        created_at=batch.created_at,
        committed_at=batch.committed_at,
        files=list(batch.files or []),
        totals=Counts(**{k: getattr(batch, k) for k in service.COUNT_FIELDS}),
        tables=[
            TableRead(
                table=t.table_name,
                label=_label(t.table_name),
                **{k: getattr(t, k) for k in service.COUNT_FIELDS},
            )
            for t in service.batch_tables(session, batch_id=batch.id)
        ],
        rules=service.rule_counts(session, batch_id=batch.id) if problems_limit else {},
        problems_total=total,
        problems=[
            ProblemRead(
                table=p.table_name,
                file=p.file,
                row=p.row,
                rule=p.rule,
                field=p.field,
                **problem_fields(
                    {
                        "business_key": p.business_key,
                        "field": p.field,
                        "value": p.value,
                        "message": p.message,
                    },
                    viewer,
                ),
            )
            for p in items
        ],
        error_code=batch.error_code,
        error_detail=batch.error_detail,
        links={
            "self": base,
            "problems_csv": f"{base}/problems.csv",
            "problems_xlsx": f"{base}/problems.xlsx",
        },
    )
