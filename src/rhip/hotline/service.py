"""Hotline services: calls (CDR import, agent desk), phone booking through booking, caller identification,
work orders with their state machine, assignment and institution inbox, 回访, the crisis path, the SLA job.

Functions take a Session and keyword arguments and never commit: the entry point owns the transaction.
"""

from __future__ import annotations

import csv
import io
import re
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from rhip.booking import service as booking
from rhip.clock import SHANGHAI, now
from rhip.errors import Conflict, Forbidden as Forbidden, Invalid, NotFound
from rhip.hotline import cdr, sla
from rhip.hotline.models import CENTRE, Call, WorkOrder, WorkOrderEvent
from rhip.identity import service as identity
from rhip.registry import idnumber, service as registry
from rhip.security.roles import Role
from rhip.security.service import Principal, audit

CENTRE_ROLES = (Role.agent, Role.manager, Role.admin)
READERS = (Role.agent, Role.manager, Role.admin, Role.auditor)
STATES = ("new", "assigned", "in_progress", "replied", "closed", "reopened", "escalated")
STATE_LABELS = {
    "new": "待派发",
    "assigned": "已派发",
    "in_progress": "办理中",
    "replied": "已答复",
    "closed": "已办结",
    "reopened": "重新办理",
    "escalated": "已升级",
}
COUNT_CAP = 10_000
OPEN_STATES = ("new", "assigned", "in_progress", "reopened", "escalated")  # the SLA clock runs
# action → (states it may start from, state it leads to, who may take it: "centre" or "institution")
ACTIONS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "assign": (("new", "assigned", "reopened", "escalated"), "assigned", "centre"),
    "handle": (("new", "reopened", "escalated"), "in_progress", "centre"),
    "accept": (("assigned",), "in_progress", "institution"),
    "decline": (("assigned",), "new", "institution"),
    "reply": (("in_progress",), "replied", "institution"),
    "return": (("replied",), "in_progress", "centre"),
    "close": (("replied",), "closed", "centre"),
    "reopen": (("closed",), "reopened", "centre"),
    "escalate": (("new", "assigned", "in_progress", "reopened"), "escalated", "centre"),
}
ACTION_LABELS = {
    "assign": "派发",
    "handle": "中心自办",
    "accept": "签收",
    "decline": "退回中心",
    "reply": "答复",
    "return": "审核退回",
    "close": "办结",
    "reopen": "重新办理",
    "escalate": "升级",
}
SOURCES = {
    "wo_city_12345": ("市12345工单", "SJ", "city_12345"),
    "wo_province_12345": ("省12345工单", "SH", "province_12345"),
    "wo_self": ("自接工单", "ZJ", "complaint"),
    "crisis": ("心理危机干预随访", "WJ", "crisis"),
    "assistant": ("智慧客服转人工", "ZN", "handoff"),
}
RISK_LEVELS = {"low": "低", "medium": "中", "high": "高", "imminent": "紧急（正在实施或即将实施）"}
CATEGORY_LABELS = cdr.CALL_LABELS
PHONE_RE = re.compile(r"^\+?[\d\- ]{3,20}$")


# ------------------------------------------------------------------ calls


def check_id_number(value: str | None) -> str | None:
    """A normalised 18-character ID number, None when not given, or Invalid."""
    if not value or not value.strip():
        return None
    checked = idnumber.validate_id(value)
    if not checked.ok or not checked.normalized:
        reason = "；".join(m for _r, m in checked.errors) or "号码无效"
        raise Invalid(f"身份证号码无效：{reason}", code="bad-id-number")
    return checked.normalized


def identify_caller(
    session: Session, *, call: Call, id_number: str | None, phone: str | None = None, name: str | None = None
) -> None:
    """Link a caller who gives an ID number to a person through the identity service (EMPI).

    The 12320 centre keeps one patient record per caller: institution `12320`, local id = the ID number; the
    caller's number and name help the EMPI when the ID number is mistyped. A record sent for review still
    gets a person (the EMPI's rule), so `person_id` is always filled when a number was given.
    """
    number = check_id_number(id_number)
    call.id_number = number
    if number is None:
        return
    digits = re.sub(r"\D", "", phone or "")
    linked = identity.link_record(
        session,
        institution_code=CENTRE,
        local_id=number,
        id_number=number,
        name=name,
        birth_date=None,
        sex=None,
        phone=digits if len(digits) >= 7 else None,
        district=None,
        source="hotline",
    )
    call.person_id = linked.person_id


def log_call(
    session: Session,
    *,
    actor: Principal,
    category: str,
    caller: str,
    started_at: datetime | None = None,
    duration_s: int = 0,
    outcome: str = "answered",
    ivr_path: str = "",
    id_number: str | None = None,
    note: str = "",
    risk_level: str | None = None,
) -> Call:
    """A call logged at the agent desk; a complaint opens its 自接工单, a crisis call the crisis path."""
    cat = cdr.resolve_category(category)
    if cat is None or cat not in cdr.CALL_CATEGORIES:
        raise Invalid(f"未知的来电分类：{category}", code="bad-category")
    if not PHONE_RE.match(caller.strip()):
        raise Invalid("来电号码格式不正确", code="bad-caller")
    if cat == "crisis" and risk_level is None:
        raise Invalid("心理危机干预来电必须评估并记录风险等级", code="risk-required")
    t = started_at or now()
    if t.tzinfo is None:
        raise Invalid("通话时间必须带时区", code="naive-time")
    call = Call(
        call_uuid=f"desk-{uuidlib.uuid4()}",
        started_at=t,
        answered_at=t,
        ended_at=t + timedelta(seconds=duration_s),
        duration_s=duration_s,
        billsec=duration_s,
        caller_masked=cdr.mask_number(caller),
        caller_hash=cdr.hash_number(caller),
        ivr_path=ivr_path,
        category=cat,
        agent=actor.subject,
        outcome=outcome,
        source="desk",
        note=note,
    )
    session.add(call)
    identify_caller(session, call=call, id_number=id_number, phone=caller)
    session.flush()
    _after_call(
        session, call=call, actor=actor, risk_level=risk_level, transferred=outcome == "transferred_12356"
    )
    return call


def _after_call(
    session: Session,
    *,
    call: Call,
    actor: Principal,
    risk_level: str | None = None,
    transferred: bool = False,
) -> None:
    """The orders a call opens by its category: every complaint a 自接工单, every crisis call a P0 order."""
    if call.outcome == "abandoned":
        return
    if call.category == "complaint":
        order = create_order(
            session,
            actor=actor,
            source="wo_self",
            title="来电投诉",
            content=call.note or "热线来电投诉，详见通话记录",
            caller_masked=call.caller_masked,
            id_number=call.id_number,
            received_at=call.started_at,
            call_id=call.id,
        )
        order.person_id = call.person_id
    elif call.category == "crisis":
        open_crisis(
            session,
            actor=actor,
            call=call,
            risk_level=risk_level or "unassessed",
            transferred=transferred,
            note=call.note,
        )


@dataclass
class CdrReport:
    """What a CDR import did: lines read, calls stored, duplicates skipped, orders opened, refused lines."""

    lines: int = 0
    imported: int = 0
    duplicates: int = 0
    orders: int = 0
    errors: list[cdr.LineError] = field(default_factory=list)


def import_cdr(session: Session, *, data: bytes, actor: Principal) -> CdrReport:
    """Import a CDR file: good lines become calls (a known uuid is skipped), bad lines are reported."""
    if len(data) > cdr.MAX_BYTES:
        raise Invalid("话单文件超过 50 MB，请分批导入", code="too-large")
    parsed = cdr.parse(cdr.decode(data))
    report = CdrReport(lines=parsed.lines, errors=parsed.errors)
    uuids = [r.uuid for r in parsed.rows]
    seen: set[str] = set()
    for chunk in range(0, len(uuids), 500):
        part = uuids[chunk : chunk + 500]
        seen.update(session.scalars(select(Call.call_uuid).where(Call.call_uuid.in_(part))))
    for row in parsed.rows:
        if row.uuid in seen:
            report.duplicates += 1
            continue
        seen.add(row.uuid)
        answered = row.billsec > 0 or row.category == "ivr"
        outcome = "ivr_only" if row.category == "ivr" else ("answered" if answered else "abandoned")
        call = Call(
            call_uuid=row.uuid,
            started_at=row.started_at,
            answered_at=row.answered_at,
            ended_at=row.ended_at,
            duration_s=row.duration_s,
            billsec=row.billsec,
            caller_masked=cdr.mask_number(row.caller_number),
            caller_hash=cdr.hash_number(row.caller_number),
            ivr_path=row.ivr_path,
            category=row.category,
            agent=None if row.category == "ivr" else row.agent,
            outcome=outcome,
            hangup_cause=row.hangup_cause,
            source="cdr",
        )
        session.add(call)
        identify_caller(session, call=call, id_number=row.id_number, phone=row.caller_number)
        session.flush()
        before = report.orders
        if call.category in ("complaint", "crisis") and outcome != "abandoned":
            _after_call(session, call=call, actor=actor)
            report.orders = before + 1
        report.imported += 1
    audit(
        session,
        actor=actor.subject,
        role=actor.role.value,
        action="hotline.cdr_import",
        detail={"lines": report.lines, "imported": report.imported, "errors": len(report.errors)},
    )
    return report


def get_call(session: Session, *, call_id: int) -> Call:
    """One call (NotFound otherwise)."""
    call = session.get(Call, call_id)
    if call is None:
        raise NotFound(f"通话记录不存在：{call_id}", code="call-not-found")
    return call


def get_all_calls(
    session: Session,
    *,
    category: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Call], int]:
    """A page of calls, newest first, and the total."""
    q = select(Call)
    if category:
        q = q.where(Call.category == category)
    if start:
        q = q.where(Call.started_at >= start)
    if end:
        q = q.where(Call.started_at < end)
    total = int(session.scalar(select(func.count()).select_from(q.subquery())) or 0)
    rows = session.scalars(q.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def book_for_caller(
    session: Session,
    *,
    call_id: int,
    slot_id: int,
    id_number: str,
    name: str | None,
    actor: Principal,
) -> Any:
    """电话预约: book through the booking service under the agent role (channel 12320电话预约)."""
    if actor.role is not Role.agent:
        raise Forbidden("只有热线坐席可以为来电者预约", code="agent-only")
    call = get_call(session, call_id=call_id)
    if call.category != "phone_booking":
        raise Conflict("只有电话预约来电可以预约挂号", code="not-a-booking-call")
    if call.appointment_id is not None:
        raise Conflict("该来电已经预约过", code="already-booked")
    number = check_id_number(id_number)
    assert number is not None
    booked = booking.book(
        session,
        slot_id=slot_id,
        person=number,
        actor=actor,
        person_name=name,
        channel="phone_12320",
        idempotency_key=f"hotline-{call.call_uuid}"[:120],
    )
    if call.id_number != number or call.person_id is None:
        identify_caller(session, call=call, id_number=number, name=name)
    call.appointment_id = booked.appointment.id
    call.outcome = "booked"
    return booked.appointment


# ------------------------------------------------------------------ work orders


def _number(order: WorkOrder) -> str:
    prefix = SOURCES[order.source][1]
    day = order.received_at.astimezone(SHANGHAI).strftime("%Y%m%d")
    return f"{prefix}{day}{order.id:07d}"


def _event(
    session: Session, order: WorkOrder, *, actor: Principal, action: str, before: str | None, note: str = ""
) -> None:
    session.add(
        WorkOrderEvent(
            order_id=order.id,
            at=now(),
            actor=actor.subject,
            role=actor.role.value,
            action=action,
            from_state=before,
            to_state=order.state,
            note=note,
        )
    )


def create_order(
    session: Session,
    *,
    actor: Principal,
    source: str,
    title: str,
    content: str = "",
    order_type: str | None = None,
    external_no: str | None = None,
    caller_masked: str = "",
    id_number: str | None = None,
    received_at: datetime | None = None,
    due_at: datetime | None = None,
    institution_code: str | None = None,
    call_id: int | None = None,
    priority: str | None = None,
    transcript: list[Any] | None = None,
    risk_level: str | None = None,
) -> WorkOrder:
    """Open a work order; its timers come from its own deadline (12345) or its type's limit."""
    if source not in SOURCES:
        raise Invalid(f"未知的工单来源：{source}（可选：{'、'.join(SOURCES)}）", code="bad-source")
    kind = order_type or SOURCES[source][2]
    lim = sla.limit_of(kind)
    t = received_at or now()
    if t.tzinfo is None or (due_at is not None and due_at.tzinfo is None):
        raise Invalid("时间必须带时区", code="naive-time")
    if external_no:
        dup = session.scalar(
            select(WorkOrder.id).where(WorkOrder.source == source, WorkOrder.external_no == external_no)
        )
        if dup is not None:
            raise Conflict(f"工单已存在：{external_no}", code="duplicate-order")
    if institution_code:
        institution_code = registry.get_institution(session, code=institution_code).code
    timers = sla.timers(received=t, order_type=kind, due=due_at)
    order = WorkOrder(
        number=f"tmp-{uuidlib.uuid4().hex[:28]}",  # replaced after the flush gives the id
        source=source,
        external_no=external_no,
        order_type=kind,
        priority=priority or lim.priority,
        title=title[:200],
        content=content,
        caller_masked=caller_masked,
        id_number=check_id_number(id_number),
        institution_code=institution_code,
        state="assigned" if institution_code else "new",
        received_at=t,
        due_at=timers.due_at,
        warn50_at=timers.warn50_at,
        warn75_at=timers.warn75_at,
        sla_level="ok",
        call_id=call_id,
        transcript=transcript,
        risk_level=risk_level,
        created_by=actor.subject,
        updated_at=now(),
    )
    session.add(order)
    session.flush()
    order.number = _number(order)
    _event(session, order, actor=actor, action="create", before=None, note=SOURCES[source][0])
    return order


def get_order(session: Session, *, order_id: int, actor: Principal | None = None) -> WorkOrder:
    """One work order; institution staff see only their own institution's (NotFound otherwise)."""
    order = session.get(WorkOrder, order_id)
    if order is None or (
        actor is not None and actor.role is Role.doctor and order.institution_code != actor.institution_code
    ):
        raise NotFound(f"工单不存在：{order_id}", code="order-not-found")
    return order


def order_events(session: Session, *, order_id: int) -> list[WorkOrderEvent]:
    """The order's history, oldest first."""
    q = select(WorkOrderEvent).where(WorkOrderEvent.order_id == order_id).order_by(WorkOrderEvent.id)
    return list(session.scalars(q))


def _may(actor: Principal, order: WorkOrder, who: str) -> None:
    if actor.role in CENTRE_ROLES:
        return
    if (
        who == "institution"
        and actor.role is Role.doctor
        and actor.institution_code == order.institution_code
    ):
        return
    raise Forbidden("无权对该工单执行此操作", code="not-allowed")


def act(
    session: Session,
    *,
    order_id: int,
    action: str,
    actor: Principal,
    note: str = "",
    institution_code: str | None = None,
) -> WorkOrder:
    """Move an order through its states; an action its state does not allow is a Conflict (409)."""
    if action not in ACTIONS:
        raise Invalid(f"未知的操作：{action}（可选：{'、'.join(ACTIONS)}）", code="bad-action")
    order = get_order(session, order_id=order_id, actor=actor)
    sources, target, who = ACTIONS[action]
    _may(actor, order, who)
    if order.state not in sources:
        raise Conflict(
            f"工单当前状态为“{STATE_LABELS[order.state]}”，不能{ACTION_LABELS[action]}",
            code="bad-transition",
        )
    if action == "assign":
        if not institution_code:
            raise Invalid("派发工单需指定承办机构", code="institution-required")
        order.institution_code = registry.get_institution(session, code=institution_code).code
    if action == "reply":
        if not note.strip():
            raise Invalid("答复内容不能为空", code="reply-required")
        order.reply, order.replied_at = note.strip(), now()
    if action == "decline":
        order.institution_code = None
    if action == "close":
        order.closed_at = now()
    if action == "reopen":
        order.closed_at = None
    before, order.state, order.updated_at = order.state, target, now()
    _event(session, order, actor=actor, action=action, before=before, note=note)
    return order


def callback(session: Session, *, order_id: int, satisfaction: int, note: str, actor: Principal) -> WorkOrder:
    """回访: the caller's satisfaction (1 very dissatisfied … 5 very satisfied) after the reply."""
    if actor.role not in CENTRE_ROLES:
        raise Forbidden("回访由热线中心进行", code="not-allowed")
    if not 1 <= satisfaction <= 5:
        raise Invalid("满意度应为 1–5", code="bad-satisfaction")
    order = get_order(session, order_id=order_id)
    if order.state not in ("replied", "closed"):
        raise Conflict("工单答复后才能回访", code="not-replied")
    order.satisfaction, order.callback_note, order.callback_at = satisfaction, note, now()
    _event(
        session,
        order,
        actor=actor,
        action="callback",
        before=order.state,
        note=f"满意度 {satisfaction}；{note}",
    )
    return order


def get_all_orders(
    session: Session,
    *,
    actor: Principal,
    state: str | None = None,
    source: str | None = None,
    institution_code: str | None = None,
    sla_level: str | None = None,
    open_only: bool = False,
    limit: int = 50,
    offset: int = 0,
    with_total: bool = True,
) -> tuple[list[WorkOrder], int | None]:
    """A page of orders the caller may see, most urgent deadline first; institution staff see their own."""
    q = select(WorkOrder)
    if actor.role is Role.doctor:
        q = q.where(WorkOrder.institution_code == (actor.institution_code or ""))
    elif actor.role not in READERS:
        raise Forbidden("无权查看工单", code="not-allowed")
    if state:
        if state not in STATES:
            raise Invalid(f"未知的工单状态：{state}", code="bad-state")
        q = q.where(WorkOrder.state == state)
    elif open_only:
        q = q.where(WorkOrder.state.in_(OPEN_STATES))
    if source:
        q = q.where(WorkOrder.source == source)
    if institution_code:
        q = q.where(WorkOrder.institution_code == institution_code)
    if sla_level:
        if sla_level not in sla.LEVELS:
            raise Invalid(f"未知的时限状态：{sla_level}", code="bad-sla-level")
        q = q.where(WorkOrder.sla_level == sla_level)
    # the total is counted up to COUNT_CAP (a page says "10,000+" beyond): counting every open order of a
    # million would cost more than the page itself
    total = None
    if with_total:
        capped = q.with_only_columns(WorkOrder.id).order_by(None).limit(COUNT_CAP + 1).subquery()
        total = int(session.scalar(select(func.count()).select_from(capped)) or 0)
    limit = min(max(1, limit), 200)
    rows = session.scalars(q.order_by(WorkOrder.due_at, WorkOrder.id).limit(limit).offset(max(0, offset)))
    return list(rows), total


def read_personal(session: Session, *, order: WorkOrder, actor: Principal) -> str | None:
    """The order's ID number for the centre (the read is audited); institution staff get it masked."""
    if not order.id_number:
        return None
    if actor.role in (Role.agent, Role.manager, Role.admin):
        audit(
            session,
            actor=actor.subject,
            role=actor.role.value,
            action="hotline.read_id_number",
            target=order.number,
        )
        return order.id_number
    return order.id_number[:6] + "********" + order.id_number[-4:]


# ------------------------------------------------------------------ crisis


def open_crisis(
    session: Session,
    *,
    actor: Principal,
    risk_level: str,
    call: Call | None = None,
    transferred: bool = False,
    note: str = "",
    transcript: list[Any] | None = None,
    source: str = "crisis",
) -> WorkOrder:
    """The crisis path: risk recorded, warm transfer to 12356 noted, a P0 order with a 24-hour follow-up.

    Deterministic and audited; the order goes to a person (the centre's crisis team) in every case.
    """
    if risk_level not in RISK_LEVELS and risk_level != "unassessed":
        raise Invalid(f"未知的风险等级：{risk_level}（可选：{'、'.join(RISK_LEVELS)}）", code="bad-risk")
    at = call.started_at if call is not None else now()
    if call is not None:
        call.risk_level = risk_level
        if transferred:
            call.outcome = "transferred_12356"
    steps = "已转接 12356 心理援助热线（热转接）" if transferred else "未转接 12356：须由坐席回拨并转接"
    if risk_level == "imminent":
        steps += "；风险紧急：立即联系 110/120"
    order = create_order(
        session,
        actor=actor,
        source=source,
        order_type="crisis",
        title=f"心理危机干预随访（风险：{RISK_LEVELS.get(risk_level, '待评估')}）",
        content=f"{steps}。{note}".strip(),
        caller_masked=call.caller_masked if call else "",
        id_number=call.id_number if call else None,
        received_at=at,
        call_id=call.id if call else None,
        priority="P0",
        transcript=transcript,
        risk_level=risk_level,
    )
    order.follow_up_due_at = order.due_at
    order.person_id = call.person_id if call is not None else None
    audit(
        session,
        actor=actor.subject,
        role=actor.role.value,
        action="hotline.crisis",
        target=order.number,
        detail={"risk": risk_level, "transferred_12356": transferred},
    )
    return order


# ------------------------------------------------------------------ SLA job


def run_sla(session: Session, *, at: datetime | None = None) -> dict[str, int]:
    """Raise open orders' SLA levels whose marks have passed (an event per change); counts per new level."""
    t = at or now()
    counts: dict[str, int] = {}
    job = Principal(subject="sla-job", role=Role.admin)
    columns = ["order_id", "at", "actor", "role", "action", "from_state", "to_state", "note"]
    postgres = session.get_bind().dialect.name == "postgresql"
    for level, column, lower in (
        ("breach", WorkOrder.due_at, ("ok", "warn50", "warn75")),
        ("warn75", WorkOrder.warn75_at, ("ok", "warn50")),
        ("warn50", WorkOrder.warn50_at, ("ok",)),
    ):
        cond = and_(WorkOrder.sla_level.in_(lower), column <= t, WorkOrder.state.in_(OPEN_STATES))
        raise_ = update(WorkOrder).where(cond).values(sla_level=level, sla_checked_at=t)

        def event_row(order_id: Any, state: Any, level: str = level) -> Any:
            return select(
                order_id,
                literal(t, WorkOrder.due_at.type),
                literal(job.subject),
                literal(job.role.value),
                literal(f"sla_{level}"),
                state,
                state,
                literal(sla.LEVEL_LABELS[level]),
            )

        if postgres:  # one scan: the UPDATE's RETURNING feeds the events (a data-modifying WITH)
            raised = raise_.returning(WorkOrder.id, WorkOrder.state).cte("raised")
            logged = (
                insert(WorkOrderEvent)
                .from_select(columns, event_row(raised.c.id, raised.c.state).select_from(raised))
                .returning(WorkOrderEvent.order_id)
                .cte("logged")
            )
            counted = select(func.count()).select_from(logged).add_cte(raised).add_cte(logged)
            counts[level] = int(session.scalar(counted) or 0)
            continue
        events = event_row(WorkOrder.id, WorkOrder.state).where(cond)
        session.execute(insert(WorkOrderEvent).from_select(columns, events))
        result = session.execute(raise_.execution_options(synchronize_session=False))
        counts[level] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    session.expire_all()  # orders loaded before the run see their new levels
    return counts


def sla_summary(session: Session) -> dict[str, int]:
    """Open orders per SLA level."""
    rows = session.execute(
        select(WorkOrder.sla_level, func.count())
        .where(WorkOrder.state.in_(OPEN_STATES))
        .group_by(WorkOrder.sla_level)
    )
    out = dict.fromkeys(sla.LEVELS, 0)
    out.update({str(k): int(v) for k, v in rows})
    return out


def search_orders(session: Session, *, text: str, limit: int = 20) -> list[WorkOrder]:
    """Orders whose number, 12345 number or title contains the text."""
    like = f"%{text.strip()}%"
    q = select(WorkOrder).where(
        or_(WorkOrder.number.like(like), WorkOrder.external_no.like(like), WorkOrder.title.like(like))
    )
    return list(session.scalars(q.order_by(WorkOrder.id.desc()).limit(limit)))


# ------------------------------------------------------------------ 12345 orders by file

ORDER_FILE_COLUMNS = ("工单编号", "受理时间", "办理期限", "标题", "内容", "承办机构代码")


@dataclass
class OrderImportReport:
    """What an order-file import did: lines, orders created, duplicates, refused lines."""

    lines: int = 0
    created: int = 0
    duplicates: int = 0
    errors: list[cdr.LineError] = field(default_factory=list)


def _local_time(value: str) -> datetime:
    text = value.strip().replace("T", " ")
    fmt = "%Y-%m-%d %H:%M:%S" if len(text) > 16 else "%Y-%m-%d %H:%M"
    return datetime.strptime(text, fmt).replace(tzinfo=SHANGHAI)


def import_orders(session: Session, *, source: str, data: bytes, actor: Principal) -> OrderImportReport:
    """12345 orders from a CSV file (header 工单编号,受理时间,办理期限,标题,内容,承办机构代码; Beijing
    time); each bad line is reported with its number, the good ones are created, known numbers skipped."""
    if source not in ("wo_city_12345", "wo_province_12345"):
        raise Invalid("文件导入只用于市、省 12345 工单", code="bad-source")
    reader = csv.DictReader(io.StringIO(cdr.decode(data)))
    missing = [c for c in ORDER_FILE_COLUMNS[:4] if c not in (reader.fieldnames or [])]
    if missing:
        raise Invalid(f"缺少列：{'、'.join(missing)}", code="bad-header")
    report = OrderImportReport()
    known = set(session.scalars(select(WorkOrder.external_no).where(WorkOrder.source == source)))
    for row in reader:
        line = reader.line_num
        report.lines += 1
        number = (row.get("工单编号") or "").strip()
        errs: list[cdr.LineError] = []
        if not number or len(number) > 64:
            errs.append(cdr.LineError(line, "工单编号", "工单编号为空或过长"))
        try:
            received = _local_time(row.get("受理时间") or "")
        except ValueError:
            errs.append(cdr.LineError(line, "受理时间", "时间格式应为 YYYY-MM-DD HH:MM[:SS]"))
        due: datetime | None = None
        if (row.get("办理期限") or "").strip():
            try:
                due = _local_time(row["办理期限"])
            except ValueError:
                errs.append(cdr.LineError(line, "办理期限", "时间格式应为 YYYY-MM-DD HH:MM[:SS]"))
        title = (row.get("标题") or "").strip()
        if not title:
            errs.append(cdr.LineError(line, "标题", "标题为空"))
        inst = (row.get("承办机构代码") or "").strip() or None
        if errs:
            report.errors.extend(errs)
            continue
        if number in known:
            report.duplicates += 1
            continue
        try:
            with session.begin_nested():
                create_order(
                    session,
                    actor=actor,
                    source=source,
                    title=title,
                    content=(row.get("内容") or "").strip(),
                    external_no=number,
                    received_at=received,
                    due_at=due,
                    institution_code=inst,
                )
        except (Invalid, NotFound, Conflict) as exc:
            report.errors.append(cdr.LineError(line, "*", exc.detail))
            continue
        known.add(number)
        report.created += 1
    return report
