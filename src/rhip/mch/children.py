"""The child's record: registration under the mother's ID number, the link to the child's own ID and
EMPI person, newborn visits, health examinations (with the report-year rollup) and death."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from rhip.errors import Conflict, Invalid
from rhip.identity import service as identity
from rhip.mch import rules
from rhip.mch.common import (
    IDENTITY_SOURCE,
    Actor,
    check_id,
    get_child,
    get_pregnancy,
    institution_district,
    today,
)
from rhip.mch.models import (
    EXAM,
    NEWBORN,
    Child,
    ChildVisit,
    ChildYear,
    Pregnancy,
)
from rhip.security import service as security


def get_all_children(
    session: Session,
    *,
    district_code: str | None = None,
    institution_code: str | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Child], int]:
    """Children's records, newest first, with the total count; `q` matches name, either ID or certificate."""
    stmt = select(Child)
    if district_code:
        stmt = stmt.where(Child.district_code == district_code)
    if institution_code:
        stmt = stmt.where(Child.institution_code == institution_code)
    if q:
        key = q.strip().upper()
        stmt = stmt.where(
            or_(
                Child.name == q.strip(),
                Child.id_number == key,
                Child.mother_id_number == key,
                Child.birth_certificate_no == key,
            )
        )
    total = int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    rows = session.scalars(
        stmt.order_by(Child.birth_date.desc(), Child.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), total


def register_child(
    session: Session,
    *,
    actor: Actor,
    institution_code: str,
    local_id: str,
    name: str,
    sex: str,
    birth_date: date,
    registered_on: date,
    pregnancy_id: int | None = None,
    mother_id_number: str | None = None,
    birth_order: int = 1,
    birth_weight_g: int | None = None,
    birth_week: int | None = None,
    birth_certificate_no: str | None = None,
) -> Child:
    """儿童登记: a child's record starts under the mother's ID number (the child's own is linked later)."""
    district = institution_district(institution_code)
    day = today()
    rules.check_not_future(birth_date, day, "出生日期")
    rules.check_not_future(registered_on, day, "登记日期")
    if registered_on < birth_date:
        raise Invalid("登记日期早于出生日期", code="registration-before-birth")
    if rules.months_between(birth_date, registered_on) >= 84:
        raise Invalid("儿童保健档案只为 7 岁以下儿童建立", code="too-old")
    if sex not in ("1", "2", "9"):
        raise Invalid(f"性别代码应为 1（男）、2（女）或 9（未说明）：{sex}", code="bad-sex")
    rules.check_range("birth_weight_g", birth_weight_g)
    if birth_week is not None and not 20 <= birth_week <= rules.MAX_WEEKS:
        raise Invalid(f"出生孕周 {birth_week} 不合理（20–{rules.MAX_WEEKS} 周）", code="bad-gestational-age")
    mother: Pregnancy | None = None
    if pregnancy_id is not None:
        mother = get_pregnancy(session, pregnancy_id=pregnancy_id)
        if mother.delivered_on is None:
            raise Conflict("母亲的保健册尚未登记分娩", code="not-delivered")
        if mother.delivered_on != birth_date:
            raise Invalid(
                f"出生日期 {birth_date.isoformat()} 与母亲的分娩日期 "
                f"{mother.delivered_on.isoformat()} 不一致",
                code="birth-date-mismatch",
            )
        born = session.scalar(select(func.count()).where(Child.pregnancy_id == mother.id)) or 0
        if born >= (mother.live_births or 0):
            raise Conflict(
                f"该次分娩登记的活产数为 {mother.live_births}，已全部建档", code="all-births-registered"
            )
        mother_id_number = mother.id_number
        birth_week = birth_week or mother.delivery_week
    if not mother_id_number:
        raise Invalid("请填写母亲的身份证号码或关联母亲的保健册", code="mother-required")
    check = check_id(mother_id_number, birth_date=None, sex="2")
    assert check.normalized
    if birth_certificate_no is not None:
        cert = birth_certificate_no.strip().upper()
        if not rules.CERT_RE.match(cert):
            raise Invalid(
                f"出生医学证明编号应为 1 位字母加 9 位数字：{birth_certificate_no}", code="bad-certificate"
            )
        if session.scalar(select(Child.id).where(Child.birth_certificate_no == cert)):
            raise Conflict(f"出生医学证明编号 {cert} 已被使用", code="duplicate-certificate")
        birth_certificate_no = cert
    if session.scalar(
        select(Child.id).where(Child.institution_code == institution_code, Child.local_id == local_id)
    ):
        raise Conflict(f"本机构已有编号为 {local_id} 的儿童保健档案", code="duplicate-local-id")
    c = Child(
        institution_code=institution_code,
        district_code=mother.district_code if mother else district,
        local_id=local_id,
        pregnancy_id=mother.id if mother else None,
        birth_order=birth_order,
        mother_id_number=check.normalized,
        name=name.strip(),
        sex=sex,
        birth_date=birth_date,
        birth_weight_g=birth_weight_g,
        birth_week=birth_week,
        birth_certificate_no=birth_certificate_no,
        registered_on=registered_on,
    )
    session.add(c)
    session.flush()
    return c


def link_child(
    session: Session, *, actor: Actor, child_id: int, id_number: str, person_id: str | None = None
) -> Child:
    """The child's own ID number (and EMPI person) replaces the mother's as the record's identity."""
    c = get_child(session, child_id=child_id)
    if id_number.strip().upper() == c.mother_id_number:
        raise Invalid("儿童本人的身份证号码不能与母亲相同", code="same-as-mother")
    check = check_id(id_number, birth_date=c.birth_date, sex=c.sex if c.sex in ("1", "2") else None)
    assert check.normalized
    if c.id_number and c.id_number != check.normalized:
        raise Conflict("该儿童已关联另一身份证号码", code="already-linked")
    other = session.scalar(select(Child.id).where(Child.id_number == check.normalized, Child.id != c.id))
    if other:
        raise Conflict(f"身份证号码已属于另一儿童档案（{other}）", code="id-in-use")
    c.id_number = check.normalized
    # the child becomes a person of its own in the EMPI (never linked under the mother's number)
    c.person_id = (
        person_id
        or identity.link_record(
            session,
            institution_code=c.institution_code,
            local_id=c.local_id,
            id_number=c.id_number,
            name=c.name,
            birth_date=c.birth_date,
            sex=c.sex,
            phone=None,
            district=c.district_code,
            source=IDENTITY_SOURCE,
        ).person_id
    )
    c.linked_on = today()
    security.audit(
        session,
        actor=actor.name,
        role=actor.role,
        action="mch.child.link",
        target=f"mch_child:{c.id}",
        institution_code=actor.institution_code,
        detail={"person_id": c.person_id},
    )
    session.flush()
    return c


def record_child_visit(
    session: Session,
    *,
    actor: Actor,
    child_id: int,
    visit_date: date,
    institution_code: str,
    kind: str = EXAM,
    weight_kg: float | None = None,
    length_cm: float | None = None,
    head_cm: float | None = None,
    note: str = "",
) -> ChildVisit:
    """新生儿访视 (within 28 days of birth) or a health examination with growth measurements (under 7)."""
    c = get_child(session, child_id=child_id)
    district = institution_district(institution_code)
    rules.check_not_future(visit_date, today(), "检查日期")
    age = (visit_date - c.birth_date).days
    if age < 0:
        raise Invalid("检查日期早于出生日期", code="visit-before-birth")
    if c.died_on and visit_date > c.died_on:
        raise Invalid("检查日期晚于死亡日期", code="visit-after-death")
    if kind == NEWBORN and age > rules.NEWBORN_VISIT_DAYS:
        raise Invalid(f"新生儿访视应在出生后 28 天内（本次为第 {age} 天）", code="newborn-visit-too-late")
    if kind not in (NEWBORN, EXAM):
        raise Invalid(f"类别应为 newborn（新生儿访视）或 exam（健康检查）：{kind}", code="bad-kind")
    if rules.months_between(c.birth_date, visit_date) >= 84:
        raise Invalid("儿童健康检查只登记 7 岁以下儿童", code="too-old")
    for field, value in (("weight_kg", weight_kg), ("length_cm", length_cm), ("head_cm", head_cm)):
        rules.check_range(field, value)
    v = ChildVisit(
        child_id=c.id,
        visit_date=visit_date,
        kind=kind,
        age_days=age,
        institution_code=institution_code,
        district_code=district,
        weight_kg=weight_kg,
        length_cm=length_cm,
        head_cm=head_cm,
        note=note,
        recorded_by=actor.name,
    )
    session.add(v)
    if kind == NEWBORN:
        c.newborn_visit_age = age if c.newborn_visit_age is None else min(age, c.newborn_visit_age)
    else:
        year = rules.year_of(visit_date)
        row = session.get(ChildYear, (year, c.id))
        if row is None:
            session.add(
                ChildYear(
                    year=year,
                    child_id=c.id,
                    exams=1,
                    expected=rules.expected_exams(c.birth_date, year),
                    district_code=c.district_code,
                    institution_code=c.institution_code,
                    birth_date=c.birth_date,
                    died_on=c.died_on,
                )
            )
        else:
            row.exams += 1
    session.flush()
    return v


def record_child_death(session: Session, *, actor: Actor, child_id: int, died_on: date) -> Child:
    """A child's death (for 婴儿死亡 and 5 岁以下儿童死亡 counts)."""
    c = get_child(session, child_id=child_id)
    rules.check_not_future(died_on, today(), "死亡日期")
    if died_on < c.birth_date:
        raise Invalid("死亡日期早于出生日期", code="death-before-birth")
    c.died_on = died_on
    c.death_age_months = rules.months_between(c.birth_date, died_on)
    session.execute(update(ChildYear).where(ChildYear.child_id == c.id).values(died_on=died_on))
    session.flush()
    return c


def child_visits(session: Session, *, child_id: int) -> list[ChildVisit]:
    """A child's visits in date order."""
    return list(
        session.scalars(
            select(ChildVisit)
            .where(ChildVisit.child_id == child_id)
            .order_by(ChildVisit.visit_date, ChildVisit.id)
        )
    )


def exams_due(session: Session, *, child_id: int, on: date | None = None) -> list[int]:
    """Scheduled examination ages (months) already due with no examination near them."""
    c = get_child(session, child_id=child_id)
    ages = [v.age_days for v in child_visits(session, child_id=child_id) if v.kind == EXAM]
    return rules.due_exams(c.birth_date, ages, on or today())
