"""The public API: link_record's three bands, get_person, find_persons; bad input is linked, not refused."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.errors import Invalid, NotFound
from rhip.identity import service as svc
from rhip.identity.models import Review
from rhip.registry.idnumber import make_id
from tests.identity.conftest import fields

BANDS = svc.Bands(auto=0.99, review=0.5)


def link(s: Session, inst: str, local: str, **kw: object) -> svc.LinkResult:
    base = fields(**kw)
    with s.begin():
        return svc.link_record(
            s,
            institution_code=inst,
            local_id=local,
            source="test",
            bands=BANDS,
            **base,  # type: ignore[arg-type]
        )


def test_same_id_number_links_to_one_person(ids: Session, inst: str) -> None:
    pid = make_id("320106", date(1975, 8, 9), 201)
    a = link(ids, inst, "A1", id_number=pid, name="赵建国", birth_date=date(1975, 8, 9), sex="1")
    assert a.band == "new"
    b = link(ids, inst + "B", "X9", id_number=pid, name="赵建国", sex="1", phone="13800001111")
    assert b.band == "auto" and b.person_id == a.person_id and b.probability > 0.99
    with ids.begin():
        person = svc.get_person(ids, person_id=a.person_id)
        assert [r.local_id for r in person.records] == ["A1", "X9"]
        assert person.name == "赵建国" and person.id_number == pid and person.birth_date == date(1975, 8, 9)
        assert svc.find_persons(ids, id_number=pid) == [a.person_id]
        assert svc.find_persons(ids, id_number=pid[:6] + pid[8:17]) == [a.person_id]  # 15-digit form
        assert svc.find_persons(ids, phone="+86 138-0000-1111") == [a.person_id]
        assert svc.find_persons(ids, id_number=pid, phone="13900000000") == []


def test_homophone_without_id_links_by_pinyin_and_birth(ids: Session, inst: str) -> None:
    pid = make_id("320104", date(1988, 2, 14), 302)
    a = link(
        ids, inst, "1", id_number=pid, name="李静", birth_date=date(1988, 2, 14), sex="2", phone="13912340000"
    )
    b = link(ids, inst + "Z", "2", name="李晶", birth_date=date(1988, 2, 14), sex="2", phone="13912340000")
    assert b.person_id == a.person_id and b.band == "auto"


def test_different_people_stay_apart(ids: Session, inst: str) -> None:
    born = date(1990, 1, 1)
    a = link(ids, inst, "1", id_number=make_id("320102", born, 11), name="王伟", birth_date=born, sex="1")
    b = link(ids, inst, "2", id_number=make_id("320111", born, 13), name="王伟", birth_date=born, sex="1")
    assert a.person_id != b.person_id and b.band == "new"


def test_uncertain_pair_goes_to_review_with_a_new_person(ids: Session, inst: str) -> None:
    born = date(1966, 6, 6)
    a = link(ids, inst, "1", name="孙立新", birth_date=born, sex="1", district="320113")
    b = link(ids, inst + "Q", "7", name="孙立新", birth_date=born, sex="1")
    assert b.band in ("review", "auto")
    if b.band == "review":
        assert b.person_id != a.person_id and b.candidate_person_id == a.person_id
        with ids.begin():
            rows = ids.scalars(select(Review).where(Review.record_id == b.record_id)).all()
            assert [r.candidate_person_id for r in rows] == [a.person_id]


def test_relinking_the_same_record_updates_it(ids: Session, inst: str) -> None:
    pid = make_id("320105", date(1950, 12, 1), 77)
    a = link(ids, inst, "P1", id_number=pid, name="钱七", sex="1")
    again = link(ids, inst, "P1", id_number=pid, name="钱七", sex="1", phone="13311112222")
    assert again.person_id == a.person_id and again.record_id == a.record_id
    with ids.begin():
        assert len(svc.get_person(ids, person_id=a.person_id).records) == 1


def test_newborn_under_mothers_id_is_never_merged_into_her(ids: Session, inst: str) -> None:
    mother = make_id("320102", date(1993, 4, 5), 126)
    m = link(
        ids,
        inst,
        "M",
        id_number=mother,
        name="周丽",
        birth_date=date(1993, 4, 5),
        sex="2",
        phone="13700000001",
    )
    baby = link(
        ids,
        inst,
        "B",
        id_number=mother,
        name="周丽之子",
        birth_date=date(2025, 1, 20),
        sex="1",
        phone="13700000001",
    )
    assert baby.person_id != m.person_id and baby.band != "auto"
    with ids.begin():
        rec = svc.get_person(ids, person_id=baby.person_id).records[0]
        assert rec.guardian_id == mother


@pytest.mark.parametrize(
    "kw",
    [
        {"id_number": "1234567890"},
        {"id_number": "32010219801301123X", "name": ""},
        {"name": "   ", "birth_date": date(1, 1, 1)},
        {"name": "某" * 200, "phone": "电话", "sex": "unknown", "district": "x" * 300},
        {"id_number": "ＡＢＣ", "birth_date": date(9999, 12, 31)},
    ],
)
def test_bad_input_is_linked_never_refused(ids: Session, inst: str, kw: dict[str, object]) -> None:
    r = link(ids, inst, "bad", **kw)
    assert r.band in ("new", "review", "auto") and r.person_id.startswith("P")


def test_empty_keys_and_queries_are_precise_errors(ids: Session, inst: str) -> None:
    with pytest.raises(Invalid):
        link(ids, inst, "", name="张三")
    with ids.begin():
        with pytest.raises(Invalid):
            svc.find_persons(ids)
        with pytest.raises(Invalid):
            svc.find_persons(ids, id_number="abc")
        with pytest.raises(NotFound):
            svc.get_person(ids, person_id="P0000")


def test_batch_links_records_of_the_same_batch(ids: Session, inst: str) -> None:
    pid = make_id("320115", date(2001, 3, 3), 55)
    items = [
        svc.Incoming(
            institution_code=inst, local_id=str(i), source="batch", id_number=pid, name="吴敏", sex="1"
        )
        for i in range(3)
    ]
    with ids.begin():
        out = svc.link_records(ids, items, bands=BANDS)
    assert len({r.person_id for r in out}) == 1
    assert [r.band for r in out] == ["new", "auto", "auto"]


def test_a_batch_resending_known_records_updates_each_one(ids: Session, inst: str) -> None:
    from rhip.identity.models import PatientRecord

    people = [(f"U{i}", make_id("320106", date(1960 + i, 1, 2), 10 + i)) for i in range(3)]

    def batch(phone: str) -> list[svc.LinkResult]:
        items = [
            svc.Incoming(
                institution_code=inst, local_id=local, source="batch", id_number=pid, name="郑和", phone=phone
            )
            for local, pid in people
        ]
        with ids.begin():
            return svc.link_records(ids, items, bands=BANDS)

    first = batch("13300000001")
    again = batch("13300000002")  # every record known: the updates go in one statement
    assert [r.record_id for r in again] == [r.record_id for r in first]
    with ids.begin():
        stored = ids.execute(
            select(PatientRecord.local_id, PatientRecord.phone)
            .where(PatientRecord.institution_code == inst, PatientRecord.local_id.in_([p for p, _ in people]))
            .order_by(PatientRecord.local_id)
        ).all()
    assert [tuple(r) for r in stored] == [(local, "13300000002") for local, _ in people]
