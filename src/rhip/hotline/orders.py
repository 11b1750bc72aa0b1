"""Work orders (工单): their sources and numbers, the state machine, the institution's view and the list.

Functions take a Session and keyword arguments and never commit: the entry point owns the transaction.
"""

from __future__ import annotations

import uuid as uuidlib
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.clock import SHANGHAI, now
from rhip.errors import Conflict, Forbidden, Invalid, NotFound
from rhip.hotline import sla
from rhip.hotline.models import WorkOrder, WorkOrderEvent
from rhip.hotline.personal import check_id_number
from rhip.registry import service as registry
from rhip.security.roles import Role
from rhip.security.service import Principal

CENTRE_ROLES = (Role.agent, Role.manager, Role.admin)
READERS = (Role.agent, Role.manager, Role.admin, Role.auditor)  # may list every order
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
OPEN_STATES = sla.OPEN_STATES  # the SLA clock runs
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


def _number(order: WorkOrder) -> str:
    prefix = SOURCES[order.source][1]
    day = order.received_at.astimezone(SHANGHAI).strftime("%Y%m%d")
    return f"{prefix}{day}{order.id:07d}"


def record_event(
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
        call_id=call_id,
        transcript=transcript,
        risk_level=risk_level,
        created_by=actor.subject,
        updated_at=now(),
    )
    session.add(order)
    session.flush()
    order.number = _number(order)
    record_event(session, order, actor=actor, action="create", before=None, note=SOURCES[source][0])
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
    if target in OPEN_STATES:  # the clock runs (again): the level comes from the marks
        order.sla_stopped_level = None
    elif before in OPEN_STATES:  # the clock stops: the order keeps the level it reached
        order.sla_stopped_level = sla.level_at(order, order.updated_at)
    record_event(session, order, actor=actor, action=action, before=before, note=note)
    return order
