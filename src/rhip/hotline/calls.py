"""Calls: the agent desk, call-detail records from the telephony system, caller identification through
the EMPI and 电话预约 through the booking service.
A complaint call opens its 自接工单, a crisis call the crisis path.

Functions take a Session and keyword arguments and never commit: the entry point owns the transaction.
"""

from __future__ import annotations

import re
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.booking import service as booking
from rhip.clock import now
from rhip.errors import Conflict, Forbidden, Invalid, NotFound
from rhip.hotline import cdr
from rhip.hotline.crisis import open_crisis
from rhip.hotline.models import CENTRE, Call
from rhip.hotline.order_list import Count, count_capped
from rhip.hotline.orders import create_order
from rhip.hotline.personal import audit_by, check_id_number
from rhip.identity import service as identity
from rhip.security.roles import Role
from rhip.security.service import Principal

CATEGORY_LABELS = cdr.CALL_LABELS
PHONE_RE = re.compile(r"^\+?[\d\- ]{3,20}$")


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
    audit_by(
        session,
        actor,
        "hotline.cdr_import",
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
    with_count: bool = True,
) -> tuple[list[Call], Count | None]:
    """A page of calls, newest first, and how many match (counted up to the cap, as the work-order list)."""
    q = select(Call)
    if category:
        q = q.where(Call.category == category)
    if start:
        q = q.where(Call.started_at >= start)
    if end:
        q = q.where(Call.started_at < end)
    count = count_capped(session, q, key=Call.id) if with_count else None
    rows = session.scalars(q.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit).offset(offset))
    return list(rows), count


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
