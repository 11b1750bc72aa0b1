"""MCH records entering through intake as catalogue tables: a batch file reaches the registry and the
indicators; corrections (修改标志 2), revocations (3) and identical re-sends do the right thing; bad codes and
the registry's rules become per-line problems."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.mch import indicators
from rhip.mch.models import Child, Pregnancy
from rhip.registry import catalogue
from rhip.security.models import AuditEvent
from tests.mch.conftest import XUANWU, unique, woman_id

YEAR = 2008  # report year 2007-10-01 .. 2008-09-30: no other MCH test writes it
UNIT = ("320102", XUANWU)
SENT = "2008-10-02 09:00:00"


def _csv(
    table: str, rows: list[dict[str, Any]], *, updated: str = SENT, flag: str = "1"
) -> tuple[str, bytes]:
    """A catalogue table's CSV file with the common fields filled in."""
    names = list(catalogue.get(table).field_names)
    lines = [",".join(names)]
    for r in rows:
        full = {"org_code": XUANWU, "collected_at": updated, "updated_at": updated, "change_flag": flag, **r}
        lines.append(",".join("" if full.get(n) is None else str(full[n]) for n in names))
    return f"{table}.csv", ("\n".join(lines) + "\n").encode()


def _post(client, headers, *files: tuple[str, bytes]):  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/intake/batches",
        headers=headers,
        files=[("file", (name, data, "text/csv")) for name, data in files],
    )
    assert r.status_code == 201, r.text
    return r.json()


def _counts(session: Session) -> dict[str, int]:
    with session.begin():
        return indicators.group_counts(session, year=YEAR).get(UNIT, dict.fromkeys(indicators.COUNTS, 0))


def _episode(session: Session, handbook: str) -> Pregnancy:
    with session.begin():
        p = session.scalars(select(Pregnancy).where(Pregnancy.local_id == handbook)).one()
        session.expunge(p)
        return p


def _cohort(handbook: str, record: str, mother: str) -> dict[str, list[dict[str, Any]]]:
    """One woman registered at 8 weeks (orange), five visits, a delivery, a postpartum visit, her child and
    its newborn visit."""
    reg = date(2007, 11, 1)
    delivered = date(2008, 6, 5)
    return {
        "mch_pregnancy_registration": [
            {
                "handbook_no": handbook,
                "id_number": mother,
                "name": "上传孕妇",
                "registered_on": reg,
                "gestational_week": 8,
                "gravidity": 2,
                "parity": 1,
                "risk_colour": "3",
                "risk_factors": "瘢痕子宫",
                "case_owner": "王医生",
            }
        ],
        "mch_antenatal_visit": [
            {
                "visit_no": f"{handbook}-V{i}",
                "handbook_no": handbook,
                "visit_date": reg + timedelta(days=28 * i),
            }
            for i in range(5)
        ],
        "mch_delivery": [
            {
                "handbook_no": handbook,
                "delivered_on": delivered,
                "delivery_place": "1",
                "delivery_method": "3",
                "delivery_org_code": "H025",
                "live_births": 1,
            }
        ],
        "mch_postpartum_visit": [
            {
                "visit_no": f"{handbook}-PP1",
                "handbook_no": handbook,
                "visit_date": delivered + timedelta(days=7),
                "visit_kind": "1",
            }
        ],
        "mch_child_record": [
            {
                "child_record_no": record,
                "name": "上传宝宝",
                "sex": "2",
                "birth_date": delivered,
                "mother_id_number": mother,
                "handbook_no": handbook,
                "birth_weight_g": 3200,
                "registered_on": delivered + timedelta(days=3),
            }
        ],
        "mch_child_exam": [
            {
                "exam_no": f"{record}-E1",
                "child_record_no": record,
                "visit_date": delivered + timedelta(days=5),
                "exam_kind": "1",
                "weight_kg": "3.3",
            }
        ],
    }


def test_a_batch_reaches_the_registry_and_the_indicators(client, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    h = auth("uploader", institution=XUANWU)
    handbook, record, mother = unique("HB"), unique("CR"), woman_id(date(1985, 5, 6))
    tables = _cohort(handbook, record, mother)
    before = _counts(session)
    files = [_csv(t, rows) for t, rows in tables.items()]
    body = _post(client, h, *files)
    assert body["status"] == "committed" and body["problems"] == []
    assert body["totals"]["accepted"] == 10

    p = _episode(session, handbook)
    assert (p.anc_visits, p.first_visit_week, p.pp_visits_28) == (5, 8, 1)
    assert (p.colour, p.case_owner, p.status, p.delivery_method) == (
        "orange",
        "王医生",
        "delivered",
        "caesarean",
    )
    assert p.person_id  # the EMPI linked the woman at 建册
    with session.begin():
        c = session.scalars(select(Child).where(Child.local_id == record)).one()
        assert (c.pregnancy_id, c.mother_id_number, c.newborn_visit_age) == (p.id, mother, 5)
        graded = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "mch.risk.grade", AuditEvent.target == f"mch_pregnancy:{p.id}"
            )
        ).all()
        assert len(graded) == 1
    after = _counts(session)
    delta = {k: after[k] - before[k] for k in indicators.COUNTS}
    for k in ("women", "live_births", "hospital_births", "early", "anc1", "anc4", "system", "postpartum"):
        assert delta[k] == 1, k
    assert (delta["newborns"], delta["newborn_visited"], delta["anc8"]) == (1, 1, 0)

    # the same files again: duplicates at intake, the registry unchanged
    again = _post(client, h, *files)
    assert again["totals"]["duplicate"] == 10 and again["problems"] == []
    assert _episode(session, handbook).anc_visits == 5
    assert _counts(session) == after

    # a correction moves the first visit (修改标志 2), a revocation removes the postpartum visit (3), a
    # re-grading to red is audited as a regrade
    later = "2008-10-03 09:00:00"
    moved = dict(tables["mch_antenatal_visit"][0], visit_date=date(2007, 11, 20))
    regraded = dict(tables["mch_pregnancy_registration"][0], risk_colour="4")
    body3 = _post(
        client,
        h,
        _csv("mch_pregnancy_registration", [regraded], updated=later, flag="2"),
        _csv("mch_antenatal_visit", [moved], updated=later, flag="2"),
        _csv("mch_postpartum_visit", tables["mch_postpartum_visit"], updated=later, flag="3"),
    )
    assert (body3["totals"]["updated"], body3["totals"]["revoked"], body3["problems"]) == (2, 1, [])
    p = _episode(session, handbook)
    assert (p.anc_visits, p.first_visit_week, p.pp_visits_28, p.colour) == (5, 10, 0, "red")
    with session.begin():
        detail = session.scalar(
            select(AuditEvent.detail).where(
                AuditEvent.action == "mch.risk.regrade", AuditEvent.target == f"mch_pregnancy:{p.id}"
            )
        )
        assert detail is not None and (detail["from"], detail["to"]) == ("orange", "red")
    final = _counts(session)
    assert final["postpartum"] - before["postpartum"] == 0 and final["system"] - before["system"] == 0
    assert final["early"] - before["early"] == 1  # registered at 8 weeks, first visit now at 10 weeks

    # revoking the child's record removes it and its newborn visit from the figures
    _post(client, h, _csv("mch_child_record", tables["mch_child_record"], updated=later, flag="3"))
    with session.begin():
        assert session.scalar(select(Child.id).where(Child.local_id == record)) is None
    gone = _counts(session)
    assert (gone["newborns"], gone["newborn_visited"]) == (before["newborns"], before["newborn_visited"])


def test_bad_codes_and_registry_rules_are_problem_lines(client, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    h = auth("uploader", institution=XUANWU)
    ok, bad_code, early = unique("HB"), unique("HB"), unique("HB")
    reg = date(2007, 12, 1)
    women = [
        {
            "handbook_no": hb,
            "id_number": woman_id(date(1986, 1, 2)),
            "name": "孕妇",
            "registered_on": reg,
            "gestational_week": 6,
        }
        for hb in (ok, early)
    ]
    women.append(dict(women[0], handbook_no=bad_code, id_number=woman_id(date(1986, 1, 3)), risk_colour="7"))
    body = _post(
        client,
        h,
        _csv("mch_pregnancy_registration", women),
        _csv(
            "mch_antenatal_visit",
            [
                {"visit_no": unique("V"), "handbook_no": ok, "visit_date": reg - timedelta(days=3)},
                {"visit_no": unique("V"), "handbook_no": ok, "visit_date": reg, "systolic": 400},
            ],
        ),
        _csv(
            "mch_delivery",
            [
                {
                    "handbook_no": early,
                    "delivered_on": reg + timedelta(days=70),
                    "delivery_place": "1",
                    "delivery_method": "1",
                    "live_births": 1,
                }
            ],
        ),
    )
    by_rule = {(p["table"], p["rule"]): p for p in body["problems"]}
    assert set(by_rule) == {
        ("mch_pregnancy_registration", "code"),
        ("mch_antenatal_visit", "range"),
        ("mch_antenatal_visit", "mch:visit-before-registration"),
        ("mch_delivery", "mch:delivery-before-20-weeks"),
    }
    assert by_rule[("mch_pregnancy_registration", "code")]["field"] == "risk_colour"
    assert "早于建册日期" in by_rule[("mch_antenatal_visit", "mch:visit-before-registration")]["message"]
    assert "不足 20 周" in by_rule[("mch_delivery", "mch:delivery-before-20-weeks")]["message"]
    with session.begin():
        assert session.scalar(select(Pregnancy.id).where(Pregnancy.local_id == bad_code)) is None
        p = session.scalars(select(Pregnancy).where(Pregnancy.local_id == early)).one()
        assert (p.status, p.delivered_on) == ("active", None)
        assert session.scalars(select(Pregnancy).where(Pregnancy.local_id == ok)).one().anc_visits == 0
