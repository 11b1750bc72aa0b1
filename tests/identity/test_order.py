"""Linking is order-independent within the auto band: any arrival order of the same records gives the
same persons (randomised with hypothesis)."""

from __future__ import annotations

import uuid
from datetime import date

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy.orm import Session

from rhip.identity import service as svc
from rhip.registry.idnumber import make_id
from tests.factories import id_sequence

BANDS = svc.Bands(auto=0.995, review=0.5)


def _records() -> list[dict[str, object]]:
    """Three people, each registered four ways that the model links with certainty."""
    out: list[dict[str, object]] = []
    people = [
        ("李静", date(1979, 3, 8), "2", "13951110001", "320102", "李晶"),
        ("曾国强", date(1990, 12, 1), "1", "13951110002", "320105", "曾国墙"),
        ("欧阳娜", date(1966, 7, 21), "2", "13951110003", "320113", "欧阳拉"),
    ]
    for k, (name, born, sex, phone, district, variant) in enumerate(people):
        seq = id_sequence(sex)
        number = make_id(district, born, seq)
        base = {"name": name, "birth_date": born, "sex": sex, "phone": phone, "district": district}
        out += [
            {**base, "local": f"{k}a", "id_number": number},
            {**base, "local": f"{k}b", "id_number": number[:6] + number[8:17], "name": variant},
            {**base, "local": f"{k}c", "id_number": None},
            {**base, "local": f"{k}d", "id_number": number, "phone": None, "district": None},
        ]
    return out


RECORDS = _records()


def _partition(session: Session, order: list[int]) -> set[frozenset[str]]:
    inst = "O" + uuid.uuid4().hex[:8].upper()
    items = [
        svc.Incoming(
            institution_code=inst,
            local_id=str(RECORDS[i]["local"]),
            source="test",
            id_number=RECORDS[i]["id_number"],  # type: ignore[arg-type]
            name=RECORDS[i]["name"],  # type: ignore[arg-type]
            birth_date=RECORDS[i]["birth_date"],  # type: ignore[arg-type]
            sex=RECORDS[i]["sex"],  # type: ignore[arg-type]
            phone=RECORDS[i]["phone"],  # type: ignore[arg-type]
            district=RECORDS[i]["district"],  # type: ignore[arg-type]
        )
        for i in order
    ]
    with session.begin():
        out = svc.link_records(session, items, bands=BANDS)
    groups: dict[str, set[str]] = {}
    for it, r in zip(items, out, strict=True):
        groups.setdefault(r.person_id, set()).add(it.local_id)
    return {frozenset(g) for g in groups.values()}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(list(range(len(RECORDS)))))
def test_any_order_gives_the_same_persons(ids: Session, order: list[int]) -> None:
    expected = {frozenset(f"{k}{s}" for s in "abcd") for k in range(3)}
    assert _partition(ids, list(order)) == expected
