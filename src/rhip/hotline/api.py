"""Hotline JSON API, mounted at /api/v1/hotline: calls (desk, CDR import, phone booking, crisis), work
orders (12345 by API or file, the state machine, 回访, inbox), the SLA job and the month's figures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile

from rhip.hotline import cdr, service as svc, stats
from rhip.hotline.schemas import (
    CallbackCreate,
    CallCreate,
    CallPage,
    CallRead,
    CdrReportRead,
    CrisisCreate,
    LineErrorRead,
    MonthRead,
    OrderImportRead,
    PhoneBooking,
    ProvinceImport,
    WorkOrderAction,
    WorkOrderCreate,
    WorkOrderDetail,
    WorkOrderEventRead,
    WorkOrderPage,
    WorkOrderRead,
)
from rhip.security.deps import SessionDep, audit_read, require
from rhip.security.roles import Role
from rhip.security.service import Principal

router = APIRouter()
Agent = Annotated[Principal, Depends(require(Role.agent))]
Centre = Annotated[Principal, Depends(require(Role.agent, Role.manager, Role.admin))]
Readers = Annotated[Principal, Depends(require(Role.agent, Role.manager, Role.admin, Role.auditor))]
ORDER_ROLES = (Role.agent, Role.manager, Role.admin, Role.auditor, Role.doctor)
OrderUsers = Annotated[Principal, Depends(require(*ORDER_ROLES))]
Actors = Annotated[Principal, Depends(require(Role.agent, Role.manager, Role.admin, Role.doctor))]
Managers = Annotated[Principal, Depends(require(Role.manager, Role.admin))]
MonthQ = Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")]


def _errors(errors: list[cdr.LineError]) -> list[LineErrorRead]:
    return [LineErrorRead(line=e.line, field=e.field, message=e.message) for e in errors[:1000]]


@router.post("/calls", response_model=CallRead, status_code=201)
def log_call(body: CallCreate, session: SessionDep, me: Agent) -> CallRead:
    """Log a call at the agent desk (a complaint opens its 自接工单, a crisis call the crisis path)."""
    with session.begin():
        call = svc.log_call(session, actor=me, **body.model_dump())
        return CallRead.model_validate(call)


@router.get("/calls", response_model=CallPage)
def list_calls(
    request: Request,
    session: SessionDep,
    me: Readers,
    category: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CallPage:
    """Calls, newest first (callers' numbers masked; the read is audited)."""
    with session.begin():
        rows, count = svc.get_all_calls(session, category=category, limit=limit, offset=offset)
        if rows:
            audit_read(session, request, me, what="hotline.calls", target=category)
        assert count is not None
        return CallPage(
            items=[CallRead.model_validate(c) for c in rows],
            total=count.value,
            total_capped=count.capped,
            total_estimate=count.estimate,
        )


@router.post("/calls/import", response_model=CdrReportRead)
def import_cdr(session: SessionDep, me: Centre, file: Annotated[UploadFile, File()]) -> CdrReportRead:
    """Import call-detail records (FreeSWITCH cdr_csv default template + the IVR's fields)."""
    data = file.file.read(cdr.MAX_BYTES + 1)
    with session.begin():
        r = svc.import_cdr(session, data=data, actor=me)
    return CdrReportRead(
        lines=r.lines, imported=r.imported, duplicates=r.duplicates, orders=r.orders, errors=_errors(r.errors)
    )


@router.post("/calls/{call_id}/booking", status_code=201)
def book_for_caller(call_id: int, body: PhoneBooking, session: SessionDep, me: Agent) -> dict[str, object]:
    """电话预约: book for the caller through the booking service (channel 12320电话预约)."""
    with session.begin():
        appt = svc.book_for_caller(
            session, call_id=call_id, slot_id=body.slot_id, id_number=body.id_number, name=body.name, actor=me
        )
        return {"appointment_id": appt.id, "starts_at": appt.starts_at, "hospital_code": appt.hospital_code}


@router.post("/crisis", response_model=WorkOrderRead, status_code=201)
def crisis(body: CrisisCreate, session: SessionDep, me: Agent) -> WorkOrderRead:
    """The crisis path for a call: risk level, warm transfer to 12356, a P0 order with a 24-hour follow-up."""
    with session.begin():
        call = svc.get_call(session, call_id=body.call_id)
        order = svc.open_crisis(
            session,
            actor=me,
            call=call,
            risk_level=body.risk_level,
            transferred=body.transferred,
            note=body.note,
        )
        return WorkOrderRead.model_validate(order)


@router.post("/work-orders", response_model=WorkOrderRead, status_code=201)
def create_order(body: WorkOrderCreate, session: SessionDep, me: Centre) -> WorkOrderRead:
    """A work order: a 12345 order with its number and deadline, or one opened by an agent."""
    with session.begin():
        order = svc.create_order(session, actor=me, **body.model_dump())
        return WorkOrderRead.model_validate(order)


@router.post("/work-orders/import", response_model=OrderImportRead)
def import_orders(
    session: SessionDep,
    me: Centre,
    file: Annotated[UploadFile, File()],
    source: Annotated[str, Query(pattern="^(wo_city_12345|wo_province_12345)$")] = "wo_city_12345",
) -> OrderImportRead:
    """12345 orders from a CSV file; bad lines are reported with their numbers."""
    data = file.file.read(cdr.MAX_BYTES + 1)
    with session.begin():
        r = svc.import_orders(session, source=source, data=data, actor=me)
    return OrderImportRead(
        lines=r.lines, created=r.created, duplicates=r.duplicates, errors=_errors(r.errors)
    )


@router.get("/work-orders", response_model=WorkOrderPage)
def list_orders(
    request: Request,
    session: SessionDep,
    me: OrderUsers,
    state: str | None = None,
    source: str | None = None,
    institution: str | None = None,
    sla_level: str | None = None,
    open_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> WorkOrderPage:
    """Orders, most urgent deadline first, paged by `cursor` (the previous page's `next_cursor`); institution
    staff (doctor role) see their institution's inbox. The first page counts up to 1,000 (beyond: an
    estimate, labelled)."""
    with session.begin():
        page = svc.get_all_orders(
            session,
            actor=me,
            state=state,
            source=source,
            institution_code=institution,
            sla_level=sla_level,
            open_only=open_only,
            limit=limit,
            cursor=cursor,
        )
        if page.items:
            audit_read(session, request, me, what="hotline.work_orders", target=institution or state)
        return WorkOrderPage(
            items=[WorkOrderRead.model_validate(o) for o in page.items],
            total=page.count.value if page.count else None,
            total_capped=bool(page.count and page.count.capped),
            total_estimate=page.count.estimate if page.count else None,
            next_cursor=page.next_cursor,
        )


def _detail(session: SessionDep, request: Request, order_id: int, me: Principal) -> WorkOrderDetail:
    order = svc.get_order(session, order_id=order_id, actor=me)
    audit_read(session, request, me, what="hotline.work_order", target=order.number)
    return WorkOrderDetail(
        **WorkOrderRead.model_validate(order).model_dump(),
        id_number=svc.read_personal(order, actor=me),
        events=[WorkOrderEventRead.model_validate(e) for e in svc.order_events(session, order_id=order.id)],
    )


@router.get("/work-orders/{order_id}", response_model=WorkOrderDetail)
def get_order(order_id: int, request: Request, session: SessionDep, me: OrderUsers) -> WorkOrderDetail:
    """One order with its history (the ID number masked; the read is audited)."""
    with session.begin():
        return _detail(session, request, order_id, me)


@router.post("/work-orders/{order_id}/actions", response_model=WorkOrderDetail)
def act(
    order_id: int, body: WorkOrderAction, request: Request, session: SessionDep, me: Actors
) -> WorkOrderDetail:
    """Move an order through its states (assign, handle, accept, decline, reply, return, close, reopen,
    escalate); an action the state does not allow is 409."""
    with session.begin():
        svc.act(
            session,
            order_id=order_id,
            action=body.action,
            actor=me,
            note=body.note,
            institution_code=body.institution_code,
        )
        return _detail(session, request, order_id, me)


@router.post("/work-orders/{order_id}/callback", response_model=WorkOrderRead)
def callback(order_id: int, body: CallbackCreate, session: SessionDep, me: Centre) -> WorkOrderRead:
    """回访: record the caller's satisfaction after the reply."""
    with session.begin():
        order = svc.callback(
            session, order_id=order_id, satisfaction=body.satisfaction, note=body.note, actor=me
        )
        return WorkOrderRead.model_validate(order)


@router.post("/sla/run")
def run_sla(session: SessionDep, me: Managers) -> dict[str, object]:
    """Run the SLA job now: announce the warnings at 50% / 75% and the breaches at 100% of each open order's
    limit crossed since the last run (levels themselves are derived when read). At most one chunk of each pass
    in this request (`more`: call again, or let `rhip hotline sla` catch up); the open orders per level are
    counted up to 1,000 (`open_capped` names the levels beyond)."""
    with session.begin():
        changed, more = svc.run_sla_step(session, chunk=svc.CHUNK)
        counts = svc.sla_counts(session)
        return {
            "changed": changed,
            "more": more,
            "open": {level: c.value for level, c in counts.items()},
            "open_capped": [level for level, c in counts.items() if c.capped],
        }


@router.put("/province/{month}")
def import_province(month: str, body: ProvinceImport, session: SessionDep, me: Managers) -> dict[str, int]:
    """The province's 12320 calls by city for a month (replaces what was there)."""
    with session.begin():
        n = stats.import_province(session, month=month, rows=[(r.city, r.calls) for r in body.rows])
    return {"rows": n}


@router.get("/months/{month}", response_model=MonthRead)
def month(month: str, session: SessionDep, me: Readers) -> MonthRead:
    """The month's figures and the bulletin paragraph."""
    with session.begin():
        fig = stats.month_figures(session, month=month)
    return MonthRead(
        month=month,
        total=fig.total,
        calls=fig.calls,
        orders=fig.orders,
        paragraph=stats.paragraph(fig),
        province=stats.province_sentence(fig),
        assistant=stats.assistant_sentence(fig),
    )
