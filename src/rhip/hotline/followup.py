"""回访 (call-back): after the reply the centre calls the person back and records their satisfaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.errors import Conflict, Forbidden, Invalid
from rhip.hotline.models import WorkOrder
from rhip.hotline.orders import CENTRE_ROLES, get_order, record_event
from rhip.security.service import Principal


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
    record_event(
        session,
        order,
        actor=actor,
        action="callback",
        before=order.state,
        note=f"满意度 {satisfaction}；{note}",
    )
    return order
