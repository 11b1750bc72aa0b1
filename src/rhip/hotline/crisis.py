"""The crisis path (心理危机干预): deterministic and audited, never answered by anything automated alone."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.errors import Invalid
from rhip.hotline.models import Call, WorkOrder
from rhip.hotline.orders import create_order
from rhip.hotline.personal import audit_by
from rhip.security.service import Principal

RISK_LEVELS = {"low": "低", "medium": "中", "high": "高", "imminent": "紧急（正在实施或即将实施）"}


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
    audit_by(
        session,
        actor,
        "hotline.crisis",
        target=order.number,
        detail={"risk": risk_level, "transferred_12356": transferred},
    )
    return order
