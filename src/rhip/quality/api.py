"""Quality JSON API: monthly figures and scores (with CSV/XLSX export), declarations, the statistics report,
tracked problems and special inspections. Managers see every institution; an uploader its own.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import Response
from openpyxl import Workbook
from sqlalchemy.orm import Session

from rhip import months
from rhip.clock import local_now
from rhip.config import Settings
from rhip.errors import Forbidden, Invalid
from rhip.lake.store import Lake
from rhip.quality import dimensions, service, usage
from rhip.quality.figures import MonthFigures, UnitFigures, months_with_data
from rhip.quality.layouts import thousands
from rhip.quality.models import ITEM_LABELS, Inspection, QualityItem
from rhip.quality.schemas import (
    CommentCreate,
    CommentRead,
    DeclarationRead,
    DeclarationUpdate,
    ImportResult,
    InspectionCreate,
    InspectionRead,
    ItemCreate,
    ItemMove,
    ItemPage,
    ItemRead,
    ItemUpdate,
    MonthFiguresRead,
    UnitFiguresRead,
)
from rhip.quality.units import required_tables
from rhip.registry import data as registry_data
from rhip.security.deps import SessionDep, require
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter()
VIEWERS = (Role.uploader, Role.manager, Role.admin, Role.auditor)
MANAGERS = (Role.manager, Role.admin)
MonthQ = Annotated[
    str | None, Query(pattern=months.PATTERN, description="YYYY-MM; default: the latest month with data")
]


def default_month(session: Session) -> str:
    """The latest month with uploads, else the month before the current one (what a bulletin reports)."""
    return months.latest(months_with_data(session), months.previous(local_now().date()))


def lake_of(request: Request) -> Lake:
    """The app's lake."""
    settings: Settings = request.app.state.settings
    return Lake.from_settings(settings)


def unit_read(u: UnitFigures, score: float | None = None) -> UnitFiguresRead:
    """The API form of a unit's figures."""
    return UnitFiguresRead(
        code=u.code,
        name=u.name,
        kind=u.kind,
        uploads=u.uploads,
        upload_days=u.upload_days,
        active_days=u.active_days,
        forms=u.forms,
        forms_of=u.forms_of,
        visits=u.visits,
        visit_revenue_thousand=thousands(u.visit_revenue),
        visit_compliance=u.visit_compliance,
        visit_upload_rate=u.visit_upload_rate,
        discharges=u.discharges,
        inpatient_revenue_thousand=thousands(u.inpatient_revenue),
        discharge_compliance=u.discharge_compliance,
        discharge_upload_rate=u.discharge_upload_rate,
        declared=u.declared,
        required=u.required,
        tables_uploaded=u.tables_uploaded,
        cda=u.cda,
        records_basic=u.records_basic,
        records_hypertension=u.records_hypertension,
        records_diabetes=u.records_diabetes,
        score=score,
    )


def visible_figures(
    session: Session, *, lake: Lake, month: str, principal: Principal
) -> tuple[MonthFigures, list[dimensions.Assessment]]:
    """The month's figures and scores, narrowed to the caller's own unit unless a manager asks."""
    fig, assessed = dimensions.assess_month(session, lake=lake, month=month)
    if principal.role in service.MANAGERS:
        return fig, assessed
    own = fig.unit_of(principal.institution_code or "")
    if own is None:
        raise Forbidden("本机构不在数据采集接入单位中", code="not-a-unit")
    fig.units = [own]
    return fig, [a for a in assessed if a.code == own.code]


@router.get("/figures", response_model=MonthFiguresRead)
def get_figures(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*VIEWERS))],
    month: MonthQ = None,
) -> MonthFiguresRead:
    """Every data-collection figure of a month per unit, with its quality score."""
    with session.begin():
        m = month or default_month(session)
        fig, assessed = visible_figures(session, lake=lake_of(request), month=m, principal=principal)
    scores = {a.code: a.score for a in assessed}
    return MonthFiguresRead(
        month=m, cumulative=fig.cumulative, units=[unit_read(u, scores.get(u.code)) for u in fig.units]
    )


EXPORT_HEADER = [
    "机构代码", "接入单位", "类别", "定时数据上传量", "实时数据上传天数", "应传天数", "实时数据表单上传情况",
    "门急诊人次", "门急诊收入（千元）", "门急诊实时数据符合率", "门急诊上传率（与卫统对比）",
    "出院人次", "住院收入（千元）", "出院实时数据符合率", "出院上传率（与卫统对比）",
    "声明上传表", "规定上传表", "已上传表", "CDA 文档（份）", "健康档案·基本信息", "健康档案·高血压",
    "健康档案·糖尿病", "质量评分",
]  # fmt: skip


def export_rows(fig: MonthFigures, assessed: list[dimensions.Assessment]) -> list[list[Any]]:
    """One export row per unit (numbers as numbers)."""
    scores = {a.code: a.score for a in assessed}
    rows = []
    for u in fig.of_kind("district") + fig.of_kind("hospital"):
        rows.append(
            [
                u.code,
                u.name,
                "区" if u.kind == "district" else "医院",
                u.uploads,
                u.upload_days,
                u.active_days,
                f"{u.forms}/{u.forms_of}",
                u.visits,
                thousands(u.visit_revenue),
                u.visit_compliance,
                u.visit_upload_rate,
                u.discharges,
                thousands(u.inpatient_revenue),
                u.discharge_compliance,
                u.discharge_upload_rate,
                u.declared,
                u.required,
                u.tables_uploaded,
                u.cda,
                u.records_basic,
                u.records_hypertension,
                u.records_diabetes,
                scores.get(u.code),
            ]
        )
    return rows


@router.get("/figures.{fmt}")
def export_figures(
    fmt: str,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*VIEWERS))],
    month: MonthQ = None,
) -> Response:
    """The month's figures as CSV (UTF-8 with BOM) or XLSX."""
    if fmt not in ("csv", "xlsx"):
        raise Invalid(f"不支持的导出格式：{fmt}（可选 csv、xlsx）", code="bad-format")
    with session.begin():
        m = month or default_month(session)
        fig, assessed = visible_figures(session, lake=lake_of(request), month=m, principal=principal)
    rows = export_rows(fig, assessed)
    name = f"quality_{m}.{fmt}"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(EXPORT_HEADER)
        w.writerows(["" if v is None else v for v in r] for r in rows)
        return Response(
            ("\ufeff" + buf.getvalue()).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = f"数据采集情况{m}"
    ws.append(EXPORT_HEADER)
    for r in rows:
        ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return Response(
        out.getvalue(),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _own_or_manager(principal: Principal, code: str) -> None:
    service.check_institution(code)  # an unknown institution is 404 for everyone, before any ownership check
    if not service.can_see(principal, code):
        raise Forbidden("只能查看或修改本机构的数据", code="other-institution")


@router.get("/declarations/{code}", response_model=DeclarationRead)
def get_declaration(
    code: str,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*VIEWERS))],
) -> DeclarationRead:
    """An institution's declared tables (声明上传表) against the tables it must upload (规定上传表)."""
    _own_or_manager(principal, code)
    tables = service.get_declaration(session, institution_code=code)
    record = registry_data.get(code)
    kind = "district" if record is not None and record.kind == "district_platform" else "hospital"
    return DeclarationRead(
        institution_code=code,
        tables=tables,
        declared=len(tables) or None,
        required=len(required_tables(kind)),
    )


@router.put("/declarations/{code}", response_model=DeclarationRead)
def put_declaration(
    code: str,
    body: DeclarationUpdate,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.uploader, Role.manager, Role.admin))],
) -> DeclarationRead:
    """Replace an institution's declaration (its own uploader, or a manager)."""
    _own_or_manager(principal, code)
    with session.begin():
        service.declare(session, institution_code=code, tables=body.tables, declared_by=principal.subject)
    return get_declaration(code, session, principal)


def _decoded(raw: bytes) -> str:
    """An uploaded CSV's text: UTF-8 (with or without BOM), else GB18030 as institutions send it."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("gb18030")


# `def`, not `async def`: the import is synchronous database work, run in the thread pool (on the event
# loop it would stop every other request while it ran)
@router.post("/statistics", response_model=ImportResult)
def post_statistics(
    session: SessionDep,
    _p: Annotated[Principal, Depends(require(*MANAGERS))],
    file: Annotated[UploadFile, File(description="CSV: month, institution, visits, discharges")],
    month: MonthQ = None,
) -> ImportResult:
    """Import the official statistics report (卫统) of a month."""
    text = _decoded(file.file.read())
    with session.begin():
        n = service.import_statistics(session, text=text, source=file.filename or "upload.csv", month=month)
    return ImportResult(institutions=n)


@router.post("/usage", response_model=ImportResult)
def post_usage(
    session: SessionDep,
    _p: Annotated[Principal, Depends(require(*MANAGERS))],
    file: Annotated[
        UploadFile,
        File(description="CSV: month, institution, browser_deployed/_calls, reminder_deployed/_calls"),
    ],
    month: MonthQ = None,
) -> ImportResult:
    """Import the reported 健康档案浏览器 and 智能提示 deployments and calls of a month."""
    text = _decoded(file.file.read())
    with session.begin():
        n = usage.import_usage(session, text=text, source=file.filename or "upload.csv", month=month)
    return ImportResult(institutions=n)


def item_read(item: QualityItem, *, with_comments: bool = False) -> ItemRead:
    """The API form of a tracked problem."""
    return ItemRead(
        id=item.id,
        institution_code=item.institution_code,
        month=item.month,
        dimension=item.dimension,
        title=item.title,
        detail=item.detail,
        status=item.status,
        status_label=ITEM_LABELS[item.status],
        owner=item.owner,
        due_on=item.due_on,
        created_by=item.created_by,
        created_at=item.created_at,
        updated_at=item.updated_at,
        comments=[
            CommentRead(
                id=c.id,
                author=c.author,
                body=c.body,
                status_from=c.status_from,
                status_to=c.status_to,
                created_at=c.created_at,
            )
            for c in item.comments
        ]
        if with_comments
        else [],
    )


@router.get("/items", response_model=ItemPage)
def list_items(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*VIEWERS))],
    institution: str | None = None,
    status: str | None = None,
    month: MonthQ = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ItemPage:
    """Tracked problems (问题清单), newest first; an uploader sees its institution's only."""
    if principal.role not in service.MANAGERS:
        institution = principal.institution_code
    items, total = service.get_all_items(
        session, institution_code=institution, status=status, month=month, limit=limit, offset=offset
    )
    return ItemPage(total=total, items=[item_read(i) for i in items])


@router.post("/items", response_model=ItemRead, status_code=201)
def create_item(
    body: ItemCreate,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*MANAGERS))],
) -> ItemRead:
    """Open a tracked problem for an institution."""
    with session.begin():
        item = service.create_item(
            session,
            institution_code=body.institution_code,
            title=body.title,
            dimension=body.dimension,
            detail=body.detail,
            month=body.month,
            owner=body.owner,
            due_on=body.due_on,
            created_by=principal.subject,
        )
        return item_read(item, with_comments=True)


@router.get("/items/{item_id}", response_model=ItemRead)
def get_item(
    item_id: int,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*VIEWERS))],
) -> ItemRead:
    """One tracked problem with its comments and state changes."""
    return item_read(service.get_item(session, item_id=item_id, principal=principal), with_comments=True)


@router.patch("/items/{item_id}", response_model=ItemRead)
def patch_item(
    item_id: int,
    body: ItemUpdate,
    session: SessionDep,
    _p: Annotated[Principal, Depends(require(*MANAGERS))],
) -> ItemRead:
    """Set a problem's owner and due date."""
    with session.begin():
        item = service.update_item(session, item_id=item_id, owner=body.owner, due_on=body.due_on)
        return item_read(item, with_comments=True)


@router.post("/items/{item_id}/move", response_model=ItemRead)
def move_item(
    item_id: int,
    body: ItemMove,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*VIEWERS))],
) -> ItemRead:
    """Move a problem: open → rectifying (the institution), → verified → closed (a manager)."""
    with session.begin():
        item = service.move_item(
            session,
            item_id=item_id,
            to=body.to,
            author=principal.subject,
            comment=body.comment,
            principal=principal,
        )
        return item_read(item, with_comments=True)


@router.post("/items/{item_id}/comments", response_model=CommentRead, status_code=201)
def comment_item(
    item_id: int,
    body: CommentCreate,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*VIEWERS))],
) -> CommentRead:
    """Comment on a problem."""
    with session.begin():
        c = service.comment_item(
            session, item_id=item_id, author=principal.subject, body=body.body, principal=principal
        )
        return CommentRead(
            id=c.id, author=c.author, body=c.body, status_from=None, status_to=None, created_at=c.created_at
        )


def inspection_read(i: Inspection) -> InspectionRead:
    """The API form of an inspection."""
    return InspectionRead(
        id=i.id, institution_code=i.institution_code, scheduled_on=i.scheduled_on, note=i.note, done=i.done
    )


@router.get("/inspections", response_model=list[InspectionRead])
def list_inspections(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*VIEWERS))],
    start: date | None = None,
    end: date | None = None,
) -> list[InspectionRead]:
    """Scheduled special inspections (专项检查)."""
    code = None if principal.role in service.MANAGERS else principal.institution_code
    return [
        inspection_read(i)
        for i in service.get_all_inspections(session, start=start, end=end, institution_code=code)
    ]


@router.post("/inspections", response_model=InspectionRead, status_code=201)
def create_inspection(
    body: InspectionCreate,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*MANAGERS))],
) -> InspectionRead:
    """Schedule a special inspection of an institution on a date."""
    with session.begin():
        i = service.schedule_inspection(
            session,
            institution_code=body.institution_code,
            on=body.scheduled_on,
            note=body.note,
            created_by=principal.subject,
        )
        return inspection_read(i)
