"""MCH test helpers: unique women and children built through the real services."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from sqlalchemy.orm import Session

from rhip.mch import service as svc
from rhip.mch.models import Child, Pregnancy
from rhip.registry import idnumber

_seq = itertools.count(1)
ACTOR = svc.Actor(name="tester", role="doctor", institution_code="F320102")
XUANWU, GULOU = "F320102", "F320106"  # district MCH institutes of 玄武 and 鼓楼
HOSPITAL = "H025"  # 南京市妇幼保健院 (秦淮区)


def woman_id(born: date = date(1992, 3, 4)) -> str:
    """A unique, valid ID number of a woman (even sequence digit)."""
    n = next(_seq)
    return idnumber.make_id("320102", born + timedelta(days=n // 400), (n % 400) * 2 + 2)


def child_id(born: date, sex: str = "1") -> str:
    """A valid ID number of a child born on a day (odd sequence = boy)."""
    n = next(_seq) % 400
    return idnumber.make_id("320106", born, n * 2 + (1 if sex == "1" else 2))


def unique(prefix: str) -> str:
    """A local id no other test uses."""
    return f"{prefix}{next(_seq):07d}"


def register(
    session: Session,
    *,
    on: date,
    week: int = 10,
    institution: str = XUANWU,
    colour: str | None = None,
    owner: str | None = None,
    purple: bool = False,
) -> Pregnancy:
    """A registered pregnancy."""
    return svc.register_pregnancy(
        session,
        actor=ACTOR,
        institution_code=institution,
        local_id=unique("P"),
        id_number=woman_id(),
        name="测试孕妇",
        registered_on=on,
        gestational_week=week,
        colour=colour,
        purple=purple,
        case_owner=owner,
    )


def visits(
    session: Session, p: Pregnancy, n: int, *, first: date, every: int = 28, inst: str = XUANWU
) -> None:
    """n antenatal visits from a first day, every `every` days."""
    for i in range(n):
        svc.record_antenatal_visit(
            session,
            actor=ACTOR,
            pregnancy_id=p.id,
            visit_date=first + timedelta(days=i * every),
            institution_code=inst,
        )


def deliver(
    session: Session, p: Pregnancy, on: date, *, place: str = "institution", live: int = 1
) -> Pregnancy:
    """A delivery (at the city MCH hospital unless at home)."""
    return svc.record_delivery(
        session,
        actor=ACTOR,
        pregnancy_id=p.id,
        delivered_on=on,
        place=place,
        method="vaginal",
        live_births=live,
        institution_code=HOSPITAL if place == "institution" else None,
    )


def child_of(session: Session, p: Pregnancy, *, institution: str = XUANWU) -> Child:
    """The newborn of a delivery, registered on its birthday under the mother's ID."""
    assert p.delivered_on
    return svc.register_child(
        session,
        actor=ACTOR,
        institution_code=institution,
        local_id=unique("C"),
        name="测试宝宝",
        sex="1",
        birth_date=p.delivered_on,
        registered_on=p.delivered_on,
        pregnancy_id=p.id,
        birth_weight_g=3300,
    )
