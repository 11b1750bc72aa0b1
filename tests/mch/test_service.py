"""MCH services: the episode from 建册 to the 42-day check, risk re-grading and its audit, case follow-ups,
the newborn's link from the mother's ID to its own, and the rules that refuse bad data."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.errors import Conflict, Invalid
from rhip.mch import rules, service as svc
from rhip.mch.models import FIRST, RETURN, RiskAssessment
from rhip.security.models import AuditEvent
from tests.mch.conftest import (
    ACTOR,
    GULOU,
    XUANWU,
    child_id,
    child_of,
    deliver,
    register,
    unique,
    visits,
    woman_id,
)

D0 = date(2025, 1, 6)


def test_episode_from_registration_to_42_day_check(session: Session) -> None:
    with session.begin():
        p = register(session, on=D0, week=9)
        assert p.lmp == D0 - timedelta(weeks=9) and p.edd == p.lmp + timedelta(days=280)
        assert (p.district_code, p.registered_district_code) == ("320102", "320102")
        visits(session, p, 6, first=D0, every=30)
        kinds = [v.kind for v in svc.visits_of(session, pregnancy_id=p.id)["antenatal"]]
        assert kinds == [FIRST] + [RETURN] * 5
        birth = p.lmp + timedelta(weeks=39, days=2)
        deliver(session, p, birth)
        assert (p.status, p.delivery_week, p.delivery_district_code, p.outcome) == (
            "delivered",
            39,
            "320104",
            "live",
        )
        v1 = svc.record_postpartum_visit(
            session,
            actor=ACTOR,
            pregnancy_id=p.id,
            visit_date=birth + timedelta(days=5),
            institution_code=XUANWU,
        )
        v2 = svc.record_postpartum_visit(
            session,
            actor=ACTOR,
            pregnancy_id=p.id,
            visit_date=birth + timedelta(days=20),
            institution_code=XUANWU,
        )
        c42 = svc.record_postpartum_visit(
            session,
            actor=ACTOR,
            pregnancy_id=p.id,
            visit_date=birth + timedelta(days=42),
            institution_code=XUANWU,
            kind="check42",
        )
        assert (v1.seq, v2.seq, v1.days_after, v2.days_after, c42.kind) == (1, 2, 5, 20, "check42")
        with pytest.raises(Conflict, match="42 天健康检查"):
            svc.record_postpartum_visit(
                session,
                actor=ACTOR,
                pregnancy_id=p.id,
                visit_date=birth + timedelta(days=44),
                institution_code=XUANWU,
                kind="check42",
            )


def test_visit_before_registration_is_refused_with_the_rule(session: Session) -> None:
    with session.begin():
        p = register(session, on=D0)
        with pytest.raises(Invalid, match="早于建册日期") as exc:
            svc.record_antenatal_visit(
                session,
                actor=ACTOR,
                pregnancy_id=p.id,
                visit_date=D0 - timedelta(days=1),
                institution_code=XUANWU,
            )
        assert exc.value.code == "visit-before-registration"
        with pytest.raises(Invalid, match="尚无初诊"):
            svc.record_antenatal_visit(
                session, actor=ACTOR, pregnancy_id=p.id, visit_date=D0, institution_code=XUANWU, kind="return"
            )


def test_delivery_before_20_weeks_is_refused(session: Session) -> None:
    with session.begin():
        p = register(session, on=D0, week=8)
        with pytest.raises(Invalid, match="不足 20 周") as exc:
            deliver(session, p, p.lmp + timedelta(weeks=19, days=6))
        assert exc.value.code == "delivery-before-20-weeks"
        assert p.status == "active"
        ended = svc.end_pregnancy(
            session, actor=ACTOR, pregnancy_id=p.id, ended_on=p.lmp + timedelta(weeks=12)
        )
        assert ended.status == "terminated"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("systolic", 400, "收缩压"), ("weight_kg", 5, "孕妇体重"), ("haemoglobin", 5, "血红蛋白")],
)
def test_absurd_values_are_refused(session: Session, field: str, value: float, message: str) -> None:
    with session.begin():
        p = register(session, on=D0)
        with pytest.raises(Invalid, match=message):
            svc.record_antenatal_visit(
                session,
                actor=ACTOR,
                pregnancy_id=p.id,
                visit_date=D0,
                institution_code=XUANWU,
                **{field: value},
            )


def test_absurd_registrations_are_refused(session: Session) -> None:
    with session.begin():
        with pytest.raises(Invalid, match="建册孕周"):
            register(session, on=D0, week=50)
        with pytest.raises(Invalid, match="晚于今天"):
            register(session, on=svc.today() + timedelta(days=3))
        with pytest.raises(Invalid, match="身份证号码无效"):
            svc.register_pregnancy(
                session,
                actor=ACTOR,
                institution_code=XUANWU,
                local_id=unique("P"),
                id_number="320102199203040011",
                name="甲",
                registered_on=D0,
                gestational_week=8,
            )
        with pytest.raises(Invalid, match="不是本市可登记"):
            register(session, on=D0, institution="X999")
        p = register(session, on=D0)
        with pytest.raises(Conflict, match="在管的孕产期保健册"):
            svc.register_pregnancy(
                session,
                actor=ACTOR,
                institution_code=XUANWU,
                local_id=unique("P"),
                id_number=p.id_number,
                name="甲",
                registered_on=D0,
                gestational_week=8,
            )


def test_regrading_keeps_history_is_audited_and_opens_the_case(session: Session) -> None:
    with session.begin():
        p = register(session, on=D0, colour="green")
        assert p.next_follow_up_on is None
        with pytest.raises(Invalid, match="专案管理责任人"):
            svc.assess_risk(
                session, actor=ACTOR, pregnancy_id=p.id, assessed_on=D0 + timedelta(days=20), colour="red"
            )
        a = svc.assess_risk(
            session,
            actor=ACTOR,
            pregnancy_id=p.id,
            assessed_on=D0 + timedelta(days=20),
            colour="orange",
            purple=True,
            factors="妊娠期糖尿病；乙肝表面抗原阳性",
            case_owner="王医生",
        )
        assert (a.previous_colour, a.previous_purple, a.colour, a.purple, a.reported) == (
            "green",
            False,
            "orange",
            True,
            True,
        )
        assert (p.case_owner, p.case_opened_on) == ("王医生", D0 + timedelta(days=20))
        assert p.next_follow_up_on == D0 + timedelta(days=20 + rules.FOLLOW_UP_DAYS["orange"])
        svc.assess_risk(
            session, actor=ACTOR, pregnancy_id=p.id, assessed_on=D0 + timedelta(days=30), colour="red"
        )
        assert p.next_follow_up_on == D0 + timedelta(days=37)
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.target == f"mch_pregnancy:{p.id}", AuditEvent.action.like("mch.risk.%"))
            .order_by(AuditEvent.id)
        ).all()
        assert [(e.action, e.detail["from"], e.detail["to"]) for e in events] == [
            ("mch.risk.grade", None, "green"),
            ("mch.risk.regrade", "green", "orange"),
            ("mch.risk.regrade", "orange", "red"),
        ]
        history = session.scalars(
            select(RiskAssessment).where(RiskAssessment.pregnancy_id == p.id).order_by(RiskAssessment.id)
        ).all()
        assert [h.colour for h in history] == ["green", "orange", "red"]


def test_high_risk_list_flags_overdue_and_follow_up_moves_the_due_date(session: Session) -> None:
    with session.begin():
        p = register(session, on=D0, colour="red", owner="李医生", institution=GULOU)
        q = register(session, on=D0, colour="yellow", purple=True, owner="张医生", institution=GULOU)
        green = register(session, on=D0, colour="green", institution=GULOU)
        on = D0 + timedelta(days=10)
        rows = {r.pregnancy.id: r for r in svc.high_risk_cases(session, on=on, district_code="320106")}
        assert green.id not in rows
        assert rows[p.id].overdue and rows[p.id].overdue_days == 3
        assert not rows[q.id].overdue and rows[q.id].due_on == D0 + timedelta(days=14)
        f = svc.record_follow_up(session, actor=ACTOR, pregnancy_id=p.id, followed_on=on, method="phone")
        assert f.next_due_on == on + timedelta(days=7) and p.next_follow_up_on == f.next_due_on
        rows = {r.pregnancy.id: r for r in svc.high_risk_cases(session, on=on, district_code="320106")}
        assert not rows[p.id].overdue
        with pytest.raises(Conflict, match="不在专案管理"):
            svc.record_follow_up(session, actor=ACTOR, pregnancy_id=green.id, followed_on=on)


def test_newborn_starts_under_mothers_id_and_links_to_its_own(session: Session) -> None:
    with session.begin():
        p = register(session, on=D0, week=10)
        visits(session, p, 1, first=D0)
        birth = p.lmp + timedelta(weeks=40)
        deliver(session, p, birth)
        c = child_of(session, p)
        assert (c.mother_id_number, c.id_number, c.district_code, c.birth_week) == (
            p.id_number,
            None,
            "320102",
            40,
        )
        with pytest.raises(Conflict, match="已全部建档"):
            child_of(session, p)
        with pytest.raises(Invalid, match="出生日期"):
            svc.link_child(session, actor=ACTOR, child_id=c.id, id_number=child_id(birth + timedelta(days=1)))
        with pytest.raises(Invalid, match="不能与母亲相同"):
            svc.link_child(session, actor=ACTOR, child_id=c.id, id_number=p.id_number)
        own = child_id(birth, "1")
        linked = svc.link_child(session, actor=ACTOR, child_id=c.id, id_number=own, person_id="P-000123")
        assert (linked.id_number, linked.person_id, linked.mother_id_number) == (own, "P-000123", p.id_number)
        found, _ = svc.get_all_children(session, q=p.id_number)
        assert c.id in [x.id for x in found]
        found, _ = svc.get_all_children(session, q=own)
        assert [x.id for x in found] == [c.id]


def test_child_visits_newborn_window_growth_and_schedule(session: Session) -> None:
    with session.begin():
        born = date(2024, 3, 10)
        c = svc.register_child(
            session,
            actor=ACTOR,
            institution_code=XUANWU,
            local_id=unique("C"),
            name="乙",
            sex="2",
            birth_date=born,
            registered_on=born + timedelta(days=3),
            mother_id_number=woman_id(),
            birth_certificate_no=f"Q{320000000 + int(unique(''))}",
        )
        with pytest.raises(Invalid, match="28 天内"):
            svc.record_child_visit(
                session,
                actor=ACTOR,
                child_id=c.id,
                visit_date=born + timedelta(days=29),
                institution_code=XUANWU,
                kind="newborn",
            )
        svc.record_child_visit(
            session,
            actor=ACTOR,
            child_id=c.id,
            visit_date=born + timedelta(days=7),
            institution_code=XUANWU,
            kind="newborn",
        )
        with pytest.raises(Invalid, match="体重"):
            svc.record_child_visit(
                session,
                actor=ACTOR,
                child_id=c.id,
                visit_date=rules.add_months(born, 3),
                institution_code=XUANWU,
                weight_kg=90,
            )
        for m in (1, 3, 6, 8):
            svc.record_child_visit(
                session,
                actor=ACTOR,
                child_id=c.id,
                visit_date=rules.add_months(born, m),
                institution_code=XUANWU,
                weight_kg=6 + m * 0.4,
                length_cm=60 + m * 1.5,
            )
        # on 2025-03-20 the 12-month examination is due and missing; 3, 6 and 8 were done
        assert svc.exams_due(session, child_id=c.id, on=date(2025, 3, 20)) == [12]
        with pytest.raises(Invalid, match="出生医学证明编号"):
            svc.register_child(
                session,
                actor=ACTOR,
                institution_code=XUANWU,
                local_id=unique("C"),
                name="丙",
                sex="1",
                birth_date=born,
                registered_on=born,
                mother_id_number=woman_id(),
                birth_certificate_no="12345",
            )


def test_transfer_moves_the_managing_district_and_keeps_the_history(session: Session) -> None:
    with session.begin():
        p = register(session, on=D0, institution=XUANWU)
        t = svc.transfer_pregnancy(
            session,
            actor=ACTOR,
            pregnancy_id=p.id,
            moved_on=D0 + timedelta(days=40),
            to_institution_code=GULOU,
        )
        assert (t.from_district_code, t.to_district_code) == ("320102", "320106")
        assert (p.district_code, p.registered_district_code) == ("320106", "320102")


def test_postpartum_rules(session: Session) -> None:
    with session.begin():
        p = register(session, on=D0)
        with pytest.raises(Conflict, match="尚未登记分娩"):
            svc.record_postpartum_visit(
                session, actor=ACTOR, pregnancy_id=p.id, visit_date=D0, institution_code=XUANWU
            )
        birth = p.lmp + timedelta(weeks=38)
        deliver(session, p, birth, place="home")
        assert p.delivery_district_code == p.district_code and p.delivery_institution_code is None
        with pytest.raises(Invalid, match="早于分娩日期"):
            svc.record_postpartum_visit(
                session,
                actor=ACTOR,
                pregnancy_id=p.id,
                visit_date=birth - timedelta(days=1),
                institution_code=XUANWU,
            )
        with pytest.raises(Invalid, match="35–70"):
            svc.record_postpartum_visit(
                session,
                actor=ACTOR,
                pregnancy_id=p.id,
                visit_date=birth + timedelta(days=10),
                institution_code=XUANWU,
                kind="check42",
            )


def test_reminder_job_writes_once_per_case_and_due_date(session: Session) -> None:
    from rhip.mch import jobs

    with session.begin():
        p = register(session, on=date(2019, 5, 6), colour="red", owner="冯医生", institution="F320111")
        q = register(session, on=date(2019, 5, 1), colour="orange", owner="冯医生", institution="F320111")
        first = jobs.remind(session, on=date(2019, 5, 11))
        again = jobs.remind(session, on=date(2019, 5, 11))
        inbox = jobs.reminders_for(session, institution_code="F320111")
    mine = [r for r in inbox if r.pregnancy_id in (p.id, q.id)]
    assert first.due >= 1 and again.due == 0 and again.already >= 1
    assert {(r.pregnancy_id, r.kind) for r in mine} == {(p.id, "due")}  # q is due on 05-15, p on 05-13
    with session.begin():
        later = jobs.remind(session, on=date(2019, 5, 20))
    assert later.overdue >= 2


def test_women_and_linked_children_are_persons_of_the_identity_service(session: Session) -> None:
    from rhip.identity import service as identity

    with session.begin():
        p = register(session, on=D0, week=10)
        assert p.person_id and identity.find_persons(session, id_number=p.id_number) == [p.person_id]
        visits(session, p, 1, first=D0)
        deliver(session, p, p.lmp + timedelta(weeks=39))
        c = child_of(session, p)
        assert c.person_id is None  # under the mother's number the child is not a person yet
        assert p.delivered_on
        own = child_id(p.delivered_on, "1")
        svc.link_child(session, actor=ACTOR, child_id=c.id, id_number=own)
        assert c.person_id and c.person_id != p.person_id
        assert identity.find_persons(session, id_number=own) == [c.person_id]
