"""The report year's indicators on a hand-built cohort (report year 2012 = 2011-10-01..2012-09-30): the
year's boundary, a woman who moved district, twins, a home birth, a maternal and an infant death."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rhip.mch import indicators, rules, service as svc
from rhip.mch.models import Child, Pregnancy
from tests.mch.conftest import ACTOR, GULOU, XUANWU, child_of, deliver, register, unique, visits, woman_id

W = timedelta(weeks=1)


def _pp(session: Session, p: Pregnancy, days: int, inst: str = XUANWU) -> None:
    assert p.delivered_on
    svc.record_postpartum_visit(
        session,
        actor=ACTOR,
        pregnancy_id=p.id,
        visit_date=p.delivered_on + timedelta(days=days),
        institution_code=inst,
    )


def _child(session: Session, born: date, *, exams: list[date] = (), newborn: bool = False) -> Child:  # type: ignore[assignment]
    c = svc.register_child(
        session,
        actor=ACTOR,
        institution_code=XUANWU,
        local_id=unique("C"),
        name="丁",
        sex="1",
        birth_date=born,
        registered_on=born,
        mother_id_number=woman_id(),
    )
    if newborn:
        _visit(session, c, born + timedelta(days=7), "newborn")
    for day in exams:
        _visit(session, c, day, "exam")
    return c


def _visit(session: Session, c: Child, day: date, kind: str) -> None:
    svc.record_child_visit(
        session, actor=ACTOR, child_id=c.id, visit_date=day, institution_code=XUANWU, kind=kind
    )


@pytest.fixture(scope="module")
def cohort(app_) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Build the cohort once per backend."""
    with app_.state.db.session() as session, session.begin():
        # A: early, 8 visits, hospital birth, postpartum visit day 5, child examined at 3, 6, 8 months
        a = register(session, on=date(2011, 7, 1), week=10)
        visits(session, a, 8, first=date(2011, 7, 1), every=21)
        deliver(session, a, a.lmp + 39 * W)
        _pp(session, a, 5)
        ac = child_of(session, a)
        _visit(session, ac, ac.birth_date + timedelta(days=6), "newborn")
        for m in (1, 3, 6, 8):
            _visit(session, ac, rules.add_months(ac.birth_date, m), "exam")
        # B: late registration (16 weeks), 3 visits, twins born at home, no postpartum visit
        b = register(session, on=date(2011, 12, 1), week=16)
        visits(session, b, 3, first=date(2011, 12, 1))
        deliver(session, b, b.lmp + 39 * W, place="home", live=2)
        b1, _b2 = child_of(session, b), child_of(session, b)
        _visit(session, b1, b1.birth_date + timedelta(days=10), "newborn")
        # C: registered at 12 weeks (早孕 but not WHO's first trimester), delivered on the year's last day,
        # postpartum visit only on day 30 (too late to count)
        c = register(session, on=date(2011, 12, 31) + 12 * W, week=12)
        visits(session, c, 2, first=c.registered_on)
        deliver(session, c, date(2012, 9, 30))
        _pp(session, c, 30)
        # D: delivered on 2011-09-30, the day before the year: counts in report year 2011 only
        d = register(session, on=date(2011, 3, 4), week=10)
        visits(session, d, 6, first=d.registered_on)
        deliver(session, d, date(2011, 9, 30))
        _pp(session, d, 3)
        # E: registered in 玄武 at 8 weeks, moved to 鼓楼, delivered and visited there: counts in 鼓楼 only
        e = register(session, on=date(2011, 6, 1), week=8)
        visits(session, e, 5, first=e.registered_on)
        svc.transfer_pregnancy(
            session, actor=ACTOR, pregnancy_id=e.id, moved_on=date(2011, 10, 1), to_institution_code=GULOU
        )
        deliver(session, e, e.lmp + 40 * W)
        _pp(session, e, 7, GULOU)
        # F: late, one visit, delivered in hospital, died 10 days later (maternal death)
        f = register(session, on=date(2011, 11, 1), week=14)
        visits(session, f, 1, first=f.registered_on)
        deliver(session, f, f.lmp + 38 * W)
        assert f.delivered_on
        svc.record_maternal_death(
            session, actor=ACTOR, pregnancy_id=f.id, died_on=f.delivered_on + timedelta(days=10)
        )
        # children without a delivery in the city's records
        _child(
            session, date(2011, 3, 15), exams=[date(2011, 11, 15), date(2012, 3, 15), date(2012, 9, 15)]
        )  # G
        _child(session, date(2010, 6, 1), exams=[date(2011, 12, 1)])  # H: 1 of 2 due
        _child(session, date(2006, 1, 1))  # I: under 7, no examination
        _child(session, date(2005, 9, 30), exams=[date(2012, 1, 5)])  # J: 7 on the year's last day: out
        k = _child(session, date(2012, 1, 10), newborn=True)  # K: infant death
        svc.record_child_death(session, actor=ACTOR, child_id=k.id, died_on=date(2012, 4, 1))
    return {"gulou": 1}


EXPECTED_CITY = {
    "women": 5,
    "live_births": 6,
    "hospital_births": 4,
    "early": 3,
    "anc1": 5,
    "anc4": 2,
    "anc8": 1,
    "first_trimester_who": 2,
    "system": 2,
    "postpartum": 2,
    "maternal_deaths": 1,
    "newborns": 4,
    "newborn_visited": 3,
    "under3": 5,
    "under3_managed": 2,
    "under7": 6,
    "under7_managed": 3,
    "infant_deaths": 1,
    "u5_deaths": 1,
}


def test_city_counts_and_rates(cohort: dict[str, int], session: Session) -> None:
    with session.begin():
        rep = indicators.report(session, year=2012)
    assert rep.total.counts == EXPECTED_CITY
    v = {d.key: rep.total.value(d) for d in indicators.DEFINITIONS}
    assert v["early_registration"] == 50.0  # 3 women / 6 live births
    assert v["hospital_delivery"] == 66.67  # the twins were born at home
    assert v["maternal_system_management"] == 33.33
    assert v["newborn_visit"] == 50.0
    assert v["under3_system_management"] == 40.0
    assert v["under7_health_management"] == 50.0
    assert v["maternal_mortality"] == round(100_000 / 6, 2)
    assert v["infant_mortality"] == round(1000 / 6, 2)
    assert v["ANC.IND.01"] == 40.0 and v["ANC.IND.04"] == 40.0 and v["ANC.IND.05"] == 20.0


def test_woman_who_moved_counts_in_her_new_district_only(cohort: dict[str, int], session: Session) -> None:
    with session.begin():
        rep = indicators.report(session, year=2012)
        gulou = indicators.report(session, year=2012, district="320106")
    by = {r.code: r.counts for r in rep.districts}
    assert by["320106"]["women"] == 1 and by["320106"]["system"] == 1 and by["320106"]["postpartum"] == 1
    assert by["320102"]["women"] == 4 and by["320102"]["system"] == 1
    assert gulou.total.counts["women"] == 1 and [r.code for r in gulou.institutions] == [GULOU]
    assert sum(r.counts["live_births"] for r in rep.institutions) == rep.total.counts["live_births"]


def test_report_year_boundary(cohort: dict[str, int], session: Session) -> None:
    with session.begin():
        before = indicators.report(session, year=2011)
        after = indicators.report(session, year=2013)
    assert before.total.counts["women"] == 1 and before.total.counts["system"] == 1  # D, delivered 2011-09-30
    assert after.total.counts["women"] == 0
    assert rules.report_year(2012) == (date(2011, 10, 1), date(2012, 9, 30))
    assert rules.year_of(date(2012, 9, 30)) == 2012 and rules.year_of(date(2012, 10, 1)) == 2013


def test_indicators_endpoint(
    cohort: dict[str, int], client: TestClient, auth: Callable[..., dict[str, str]]
) -> None:
    r = client.get("/api/v1/mch/indicators?year=2012", headers=auth("manager"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["period"] == {"start": "2011-10-01", "end": "2012-09-30"}
    assert body["total"]["counts"]["live_births"] == 6
    assert body["total"]["indicators"]["early_registration"] == 50.0
    assert {d["key"] for d in body["definitions"]} >= {"ANC.IND.01", "ANC.IND.04", "ANC.IND.05"}
    r = client.get("/api/v1/mch/indicators?year=2012&district=320106", headers=auth("manager"))
    assert r.json()["total"]["counts"]["women"] == 1
    assert (
        client.get("/api/v1/mch/indicators?year=2012&district=999999", headers=auth("manager")).status_code
        == 422
    )
    assert client.get("/api/v1/mch/indicators?year=12", headers=auth("manager")).status_code == 422
    assert client.get("/api/v1/mch/indicators?year=2012", headers=auth("resident")).status_code == 403


def test_rollups_equal_a_recount_from_the_visit_tables(cohort: dict[str, int], session: Session) -> None:
    for year in (2011, 2012):
        with session.begin():
            fast = indicators.group_counts(session, year=year)
            slow = indicators.group_counts(session, year=year, recount=True)
        assert fast == slow
