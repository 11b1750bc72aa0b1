"""Calls, CDR import, work orders and their state machine, 回访, the crisis path, the SLA job."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip import clock
from rhip.clock import SHANGHAI
from rhip.errors import Conflict, Forbidden, Invalid
from rhip.hotline import cdr, service as svc
from rhip.hotline.models import Call, WorkOrder, WorkOrderEvent
from rhip.identity import service as identity
from rhip.registry.idnumber import make_id
from rhip.security.roles import Role
from rhip.security.service import Principal
from tests.factories import id_sequence
from tests.hotline.conftest import AGENT, MANAGER, staff

HOSPITAL = "H020"


def line(**kw: str) -> str:
    row = {
        "caller_id_name": "",
        "caller_id_number": "13851234567",
        "destination_number": "12320",
        "context": "default",
        "start_stamp": "2025-03-03 09:00:00",
        "answer_stamp": "2025-03-03 09:00:20",
        "end_stamp": "2025-03-03 09:05:00",
        "duration": "300",
        "billsec": "280",
        "hangup_cause": "NORMAL_CLEARING",
        "uuid": str(uuid.uuid4()),
        "bleg_uuid": "",
        "accountcode": "",
        "read_codec": "PCMA",
        "write_codec": "PCMA",
    }
    row.update(kw)
    return cdr.write_line(row)


def test_cdr_import_reports_bad_lines_and_stores_good_ones(session: Session) -> None:
    good = [
        line(rhip_category="consult", rhip_agent="a1"),
        line(rhip_ivr_path="3"),  # complaint from the IVR path
        line(accountcode="5", billsec="0", answer_stamp=""),  # 自助语音问答
        line(rhip_category="咨询类", billsec="0", answer_stamp="", hangup_cause="ORIGINATOR_CANCEL"),
    ]
    bad = [
        line(start_stamp="03/03/2025 09:00", rhip_category="consult"),
        line(duration="abc", rhip_category="consult"),
        line(rhip_category="不存在"),
        '"only","three","fields"\n',
        line(rhip_id_number="320102198001011234", rhip_category="consult"),  # wrong check character
    ]
    text = "".join(good[:2] + bad[:3] + good[2:] + bad[3:])
    with session.begin():
        report = svc.import_cdr(session, data=text.encode("utf-8"), actor=AGENT)
    assert report.lines == 9 and report.imported == 4 and report.orders == 1
    assert [(e.line, e.field) for e in report.errors] == [
        (3, "start_stamp"),
        (4, "duration"),
        (5, "rhip_category"),
        (8, "*"),
        (9, "rhip_id_number"),
    ]
    with session.begin():
        again = svc.import_cdr(session, data=text.encode("utf-8"), actor=AGENT)
        assert again.imported == 0 and again.duplicates == 4
        calls = session.scalars(select(Call).order_by(Call.id.desc()).limit(4)).all()
        outcomes = sorted((c.category, c.outcome) for c in calls)
        assert outcomes == [
            ("complaint", "answered"),
            ("consult", "abandoned"),
            ("consult", "answered"),
            ("ivr", "ivr_only"),
        ]
        assert all(c.caller_masked == "138****4567" and "13851234567" not in c.caller_hash for c in calls)
        complaint = next(c for c in calls if c.category == "complaint")
        order = session.scalar(select(WorkOrder).where(WorkOrder.call_id == complaint.id))
        assert order is not None and order.source == "wo_self" and order.number.startswith("ZJ20250303")


def test_gbk_cdr_file_is_read(session: Session) -> None:
    text = line(rhip_category="人工服务", caller_id_name="张三")
    with session.begin():
        report = svc.import_cdr(session, data=text.encode("gbk"), actor=AGENT)
    assert report.imported == 1 and not report.errors


def new_order(session: Session, **kw: object) -> WorkOrder:
    args: dict[str, object] = {"actor": AGENT, "source": "wo_self", "title": "投诉挂号难"}
    args.update(kw)
    with session.begin():
        order = svc.create_order(session, **args)  # type: ignore[arg-type]
        session.expunge(order)
    return order


def test_state_machine_and_refusals(session: Session) -> None:
    order = new_order(session)
    with session.begin(), pytest.raises(Conflict) as exc:
        svc.act(session, order_id=order.id, action="close", actor=AGENT)
    assert exc.value.code == "bad-transition" and "待派发" in exc.value.detail
    with session.begin():
        svc.act(session, order_id=order.id, action="assign", actor=AGENT, institution_code=HOSPITAL)
    # another institution's staff cannot see it; its own can accept and reply
    with session.begin(), pytest.raises(Exception) as other:
        svc.act(session, order_id=order.id, action="accept", actor=staff("H029"))
    assert getattr(other.value, "status", None) == 404
    me = staff(HOSPITAL)
    with session.begin():
        page = svc.get_all_orders(session, actor=me, limit=200)
        assert order.id in [r.id for r in page.items] and page.count is not None
        assert all(r.institution_code == HOSPITAL for r in page.items)
    with session.begin():
        svc.act(session, order_id=order.id, action="accept", actor=me)
    with session.begin(), pytest.raises(Invalid):
        svc.act(session, order_id=order.id, action="reply", actor=me, note="  ")
    with session.begin():
        svc.act(session, order_id=order.id, action="reply", actor=me, note="已联系患者并改约")
    with session.begin(), pytest.raises(Forbidden):
        svc.act(session, order_id=order.id, action="close", actor=me)  # the centre reviews and closes
    with session.begin():
        svc.act(session, order_id=order.id, action="return", actor=AGENT, note="答复不完整")
        svc.act(session, order_id=order.id, action="reply", actor=me, note="补充：已退费")
        svc.callback(session, order_id=order.id, satisfaction=4, note="基本满意", actor=AGENT)
        done = svc.act(session, order_id=order.id, action="close", actor=AGENT)
        assert done.state == "closed" and done.satisfaction == 4 and done.closed_at is not None
    with session.begin(), pytest.raises(Conflict):
        svc.act(session, order_id=order.id, action="reply", actor=me, note="x")
    with session.begin():
        assert svc.act(session, order_id=order.id, action="reopen", actor=MANAGER).state == "reopened"
        actions = [e.action for e in svc.order_events(session, order_id=order.id)]
    assert actions == [
        "create",
        "assign",
        "accept",
        "reply",
        "return",
        "reply",
        "callback",
        "close",
        "reopen",
    ]


def test_callback_before_reply_is_refused(session: Session) -> None:
    order = new_order(session)
    with session.begin(), pytest.raises(Conflict):
        svc.callback(session, order_id=order.id, satisfaction=5, note="", actor=AGENT)


def test_crisis_call_opens_p0_order_with_24_hour_follow_up(session: Session) -> None:
    t = datetime(2025, 10, 1, 23, 30, tzinfo=SHANGHAI)  # National Day: the clock is not in working days
    with session.begin(), pytest.raises(Invalid):
        svc.log_call(session, actor=AGENT, category="crisis", caller="13900001111", started_at=t)
    with session.begin():
        call = svc.log_call(
            session,
            actor=AGENT,
            category="心理危机干预",
            caller="13900001111",
            started_at=t,
            outcome="transferred_12356",
            risk_level="high",
        )
        order = session.scalar(select(WorkOrder).where(WorkOrder.call_id == call.id))
        assert order is not None and order.priority == "P0" and order.source == "crisis"
        assert order.follow_up_due_at == datetime(2025, 10, 2, 23, 30, tzinfo=SHANGHAI)
        assert "12356" in order.content and call.outcome == "transferred_12356" and call.risk_level == "high"


def test_sla_job_raises_levels_once(session: Session) -> None:
    received = datetime(2025, 9, 30, 15, tzinfo=SHANGHAI)
    order = new_order(session, received_at=received, title=f"SLA {uuid.uuid4()}")
    half, late = datetime(2025, 10, 11, 13, tzinfo=SHANGHAI), datetime(2025, 10, 15, 1, tzinfo=SHANGHAI)
    with session.begin():
        first = svc.run_sla(session, at=half)
        assert order.level_at(half) == "warn50"  # derived from the marks, never stored
        assert first["warn50"] >= 1 and min(first.values()) >= 0
        # the same moment again writes nothing: a run is idempotent and counts what it announced
        assert svc.run_sla(session, at=half) == dict.fromkeys(first, 0)
        second = svc.run_sla(session, at=late)
        assert order.level_at(late) == "breach"
        assert second["breach"] >= 1
        svc.run_sla(session, at=datetime(2025, 10, 16, tzinfo=SHANGHAI))
        events = session.scalars(
            select(WorkOrderEvent.action)
            .where(WorkOrderEvent.order_id == order.id)
            .order_by(WorkOrderEvent.id)
        ).all()
    assert list(events) == ["create", "sla_warn50", "sla_breach"]  # 75% and 100% crossed at once: one event


def test_12345_file_import_reports_lines(session: Session) -> None:
    n = uuid.uuid4().hex[:8]
    text = (
        "工单编号,受理时间,办理期限,标题,内容,承办机构代码\n"
        f"S{n}1,2025-03-03 09:00,2025-03-10 00:00,咨询疫苗,问,H020\n"
        f"S{n}2,昨天,,标题,内容,\n"
        f"S{n}3,2025-03-03 10:00,,,内容,\n"
        f"S{n}4,2025-03-03 10:00,,机构不存在,内容,X999\n"
        f"S{n}1,2025-03-03 09:00,,重复,内容,\n"
    )
    with session.begin():
        r = svc.import_orders(session, source="wo_city_12345", data=text.encode(), actor=AGENT)
    assert (r.lines, r.created, r.duplicates) == (5, 1, 1)
    assert [(e.line, e.field) for e in r.errors] == [(3, "受理时间"), (4, "标题"), (5, "*")]


def test_phone_booking_needs_the_agent_role(session: Session) -> None:
    with session.begin():
        call = svc.log_call(session, actor=AGENT, category="phone_booking", caller="13800000000")
        person = make_id("320102", datetime(1980, 5, 1).date(), 11)
        with pytest.raises(Forbidden):
            svc.book_for_caller(
                session, call_id=call.id, slot_id=1, id_number=person, name="王五", actor=MANAGER
            )
        with pytest.raises(Exception) as exc:  # no such slot: the booking service refuses
            svc.book_for_caller(
                session, call_id=call.id, slot_id=999_999_999, id_number=person, name=None, actor=AGENT
            )
        assert getattr(exc.value, "status", 0) in (404, 409, 422)


def test_caller_giving_an_id_number_is_linked_by_the_empi(session: Session) -> None:
    with session.begin(), pytest.raises(Invalid):
        svc.log_call(session, actor=AGENT, category="consult", caller="13800000000", id_number="123")
    with clock.frozen(datetime(2025, 3, 3, 9, tzinfo=SHANGHAI)), session.begin():
        good = make_id("320102", datetime(1980, 5, 1).date(), id_sequence())
        agent = Principal("a", Role.agent)
        c = svc.log_call(session, actor=agent, category="consult", caller="13912340000", id_number=good)
        assert c.id_number == good and c.person_id
        again = svc.log_call(session, actor=agent, category="manual", caller="13912340000", id_number=good)
        assert again.person_id == c.person_id  # the same caller is the same person
        person = identity.get_person(session, person_id=c.person_id)
        assert person.id_number == good and any(r.institution_code == "12320" for r in person.records)
        anonymous = svc.log_call(session, actor=agent, category="consult", caller="13912340000")
        assert anonymous.person_id is None
