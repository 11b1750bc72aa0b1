"""The pregnancy episode: 建册, antenatal visits, risk grading and 专案管理, transfer, delivery,
termination, postpartum visits and the 42-day check, maternal death; the high-risk work list."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from rhip.errors import Conflict, Invalid
from rhip.identity import service as identity
from rhip.mch import rules
from rhip.mch.common import IDENTITY_SOURCE, Actor, check_id, get_pregnancy, institution_district, today
from rhip.mch.models import (
    ACTIVE,
    DELIVERED,
    FIRST,
    METHODS,
    PLACES,
    PP_CHECK42,
    PP_VISIT,
    RETURN,
    TERMINATED,
    AntenatalVisit,
    CaseFollowUp,
    PostpartumVisit,
    Pregnancy,
    RiskAssessment,
    Transfer,
)
from rhip.mch.risk import assess_risk


def get_all_pregnancies(
    session: Session,
    *,
    district_code: str | None = None,
    institution_code: str | None = None,
    status: str | None = None,
    colour: str | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Pregnancy], int]:
    """Pregnancy episodes, newest registration first, with the total count."""
    stmt = select(Pregnancy)
    if district_code:
        stmt = stmt.where(Pregnancy.district_code == district_code)
    if institution_code:
        stmt = stmt.where(Pregnancy.institution_code == institution_code)
    if status:
        stmt = stmt.where(Pregnancy.status == status)
    if colour == "purple":
        stmt = stmt.where(Pregnancy.purple.is_(True))
    elif colour:
        stmt = stmt.where(Pregnancy.colour == colour)
    if q:
        stmt = stmt.where(or_(Pregnancy.name == q, Pregnancy.id_number == q.upper(), Pregnancy.local_id == q))
    total = int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    rows = session.scalars(
        stmt.order_by(Pregnancy.registered_on.desc(), Pregnancy.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), total


def register_pregnancy(
    session: Session,
    *,
    actor: Actor,
    institution_code: str,
    local_id: str,
    id_number: str,
    name: str,
    registered_on: date,
    gestational_week: int,
    gestational_days: int = 0,
    birth_date: date | None = None,
    phone: str | None = None,
    gravidity: int = 1,
    parity: int = 0,
    colour: str | None = None,
    purple: bool = False,
    factors: str = "",
    case_owner: str | None = None,
) -> Pregnancy:
    """建册: open a pregnancy episode with the gestational age on the day; an initial grading if given."""
    district = institution_district(institution_code)
    rules.check_not_future(registered_on, today(), "建册日期")
    if not 1 <= gestational_week <= 42 or not 0 <= gestational_days <= 6:
        raise Invalid(
            f"建册孕周应在 1–42 周（天数 0–6）之间，实际 {gestational_week} 周 {gestational_days} 天",
            code="bad-gestational-age",
        )
    if not 1 <= gravidity <= 20 or not 0 <= parity < gravidity:
        raise Invalid(f"孕次 {gravidity}、产次 {parity} 不合理（产次应小于孕次）", code="bad-gravidity")
    check = check_id(id_number, birth_date=birth_date, sex="2")
    assert check.normalized and check.birth_date
    age = rules.months_between(check.birth_date, registered_on) // 12
    if not 12 <= age <= 60:
        raise Invalid(f"建册时孕妇年龄 {age} 岁不合理（12–60 岁）", code="bad-age")
    open_one = session.scalar(
        select(Pregnancy.id).where(Pregnancy.id_number == check.normalized, Pregnancy.status == ACTIVE)
    )
    if open_one is not None:
        raise Conflict(
            f"该孕妇已有在管的孕产期保健册（{open_one}），请先登记分娩或结案", code="pregnancy-open"
        )
    if session.scalar(
        select(Pregnancy.id).where(
            Pregnancy.institution_code == institution_code, Pregnancy.local_id == local_id
        )
    ):
        raise Conflict(f"本机构已有编号为 {local_id} 的保健册", code="duplicate-local-id")
    lmp = rules.lmp_from(registered_on, gestational_week, gestational_days)
    p = Pregnancy(
        institution_code=institution_code,
        district_code=district,
        registered_institution_code=institution_code,
        registered_district_code=district,
        local_id=local_id,
        id_number=check.normalized,
        name=name.strip(),
        birth_date=check.birth_date,
        phone=phone,
        registered_on=registered_on,
        registration_week=gestational_week,
        lmp=lmp,
        edd=rules.edd_from(lmp),
        gravidity=gravidity,
        parity=parity,
        status=ACTIVE,
        purple=False,
    )
    session.add(p)
    session.flush()
    p.person_id = identity.link_record(
        session,
        institution_code=institution_code,
        local_id=local_id,
        id_number=p.id_number,
        name=p.name,
        birth_date=p.birth_date,
        sex="2",
        phone=phone,
        district=district,
        source=IDENTITY_SOURCE,
    ).person_id
    if colour:
        assess_risk(
            session,
            actor=actor,
            pregnancy_id=p.id,
            assessed_on=registered_on,
            colour=colour,
            purple=purple,
            factors=factors,
            case_owner=case_owner,
        )
    return p


def _need_active(p: Pregnancy, what: str) -> None:
    if p.status != ACTIVE:
        raise Conflict(f"保健册状态为“{p.status}”，不能再登记{what}", code="pregnancy-not-active")


def record_antenatal_visit(
    session: Session,
    *,
    actor: Actor,
    pregnancy_id: int,
    visit_date: date,
    institution_code: str,
    kind: str | None = None,
    systolic: int | None = None,
    diastolic: int | None = None,
    weight_kg: float | None = None,
    haemoglobin: int | None = None,
    note: str = "",
    correction: bool = False,
) -> AntenatalVisit:
    """初诊/复诊: the first visit is 初诊, later ones 复诊; dates follow 建册 and precede delivery
    (`correction`: a visit re-recorded with corrected values, allowed after the delivery it precedes)."""
    p = get_pregnancy(session, pregnancy_id=pregnancy_id)
    if not (correction and p.status == DELIVERED and p.delivered_on and visit_date <= p.delivered_on):
        _need_active(p, "产前检查")
    district = institution_district(institution_code)
    rules.check_not_future(visit_date, today(), "产前检查日期")
    if visit_date < p.registered_on:
        raise Invalid(
            f"产前检查日期 {visit_date.isoformat()} 早于建册日期 {p.registered_on.isoformat()}：请先建册",
            code="visit-before-registration",
        )
    week = rules.gestational_week(p.lmp, visit_date)
    if week > rules.MAX_WEEKS:
        raise Invalid(
            f"检查日孕周 {week} 周超过 {rules.MAX_WEEKS} 周，请核对末次月经", code="bad-gestational-age"
        )
    for field, value in (
        ("systolic", systolic),
        ("diastolic", diastolic),
        ("mother_weight_kg", weight_kg),
        ("haemoglobin", haemoglobin),
    ):
        rules.check_range(field, value)
    if systolic is not None and diastolic is not None and diastolic >= systolic:
        raise Invalid("舒张压应低于收缩压", code="value-out-of-range")
    has_first = session.scalar(
        select(func.count()).where(AntenatalVisit.pregnancy_id == p.id, AntenatalVisit.kind == FIRST)
    )
    kind = kind or (RETURN if has_first else FIRST)
    if kind not in (FIRST, RETURN):
        raise Invalid(f"检查类别应为 first（初诊）或 return（复诊）：{kind}", code="bad-kind")
    if kind == FIRST and has_first:
        raise Conflict("本孕期已有初诊记录，后续检查应登记为复诊", code="first-visit-exists")
    if kind == RETURN and not has_first:
        raise Invalid("尚无初诊记录：第一次产前检查应登记为初诊", code="no-first-visit")
    v = AntenatalVisit(
        pregnancy_id=p.id,
        visit_date=visit_date,
        kind=kind,
        gestational_week=week,
        institution_code=institution_code,
        district_code=district,
        systolic=systolic,
        diastolic=diastolic,
        weight_kg=weight_kg,
        haemoglobin=haemoglobin,
        note=note,
        recorded_by=actor.name,
    )
    session.add(v)
    p.anc_visits = (p.anc_visits or 0) + 1
    if kind == FIRST or p.first_visit_week is None:
        p.first_visit_week = week if p.first_visit_week is None else min(week, p.first_visit_week)
    session.flush()
    return v


def transfer_pregnancy(
    session: Session, *, actor: Actor, pregnancy_id: int, moved_on: date, to_institution_code: str
) -> Transfer:
    """转出/转入: the episode moves to another institution (and maybe district); the history is kept."""
    p = get_pregnancy(session, pregnancy_id=pregnancy_id)
    _need_active(p, "转诊")
    district = institution_district(to_institution_code)
    if to_institution_code == p.institution_code:
        raise Invalid("转入机构与当前管理机构相同", code="same-institution")
    if moved_on < p.registered_on:
        raise Invalid("转出日期早于建册日期", code="transfer-before-registration")
    rules.check_not_future(moved_on, today(), "转出日期")
    t = Transfer(
        pregnancy_id=p.id,
        moved_on=moved_on,
        from_institution_code=p.institution_code,
        from_district_code=p.district_code,
        to_institution_code=to_institution_code,
        to_district_code=district,
        recorded_by=actor.name,
    )
    session.add(t)
    p.institution_code, p.district_code = to_institution_code, district
    session.flush()
    return t


def record_delivery(
    session: Session,
    *,
    actor: Actor,
    pregnancy_id: int,
    delivered_on: date,
    place: str,
    method: str,
    live_births: int,
    stillbirths: int = 0,
    institution_code: str | None = None,
) -> Pregnancy:
    """分娩: date, place, method, live births and stillbirths; refused before 20 weeks of gestation."""
    p = get_pregnancy(session, pregnancy_id=pregnancy_id)
    _need_active(p, "分娩")
    rules.check_not_future(delivered_on, today(), "分娩日期")
    if delivered_on < p.registered_on:
        raise Invalid("分娩日期早于建册日期", code="delivery-before-registration")
    week = rules.gestational_week(p.lmp, delivered_on)
    if week < rules.MIN_DELIVERY_WEEKS:
        raise Invalid(
            f"分娩时孕周 {week} 周不足 {rules.MIN_DELIVERY_WEEKS} 周："
            "孕 20 周前的妊娠终止应登记为流产，不登记分娩",
            code="delivery-before-20-weeks",
        )
    if week > rules.MAX_WEEKS:
        raise Invalid(
            f"分娩时孕周 {week} 周超过 {rules.MAX_WEEKS} 周，请核对日期", code="bad-gestational-age"
        )
    last_visit = session.scalar(
        select(func.max(AntenatalVisit.visit_date)).where(AntenatalVisit.pregnancy_id == p.id)
    )
    if last_visit and last_visit > delivered_on:
        raise Invalid(
            f"分娩日期早于最近一次产前检查（{last_visit.isoformat()}）", code="delivery-before-visit"
        )
    if place not in PLACES:
        raise Invalid(f"分娩地点应为 {'/'.join(PLACES)} 之一：{place}", code="bad-place")
    if method not in METHODS:
        raise Invalid(f"分娩方式应为 {'/'.join(METHODS)} 之一：{method}", code="bad-method")
    if not 0 <= live_births <= 6 or not 0 <= stillbirths <= 6 or live_births + stillbirths == 0:
        raise Invalid(f"活产数 {live_births}、死胎死产数 {stillbirths} 不合理（合计 1–6）", code="bad-births")
    district = None
    if place == "institution":
        if not institution_code:
            raise Invalid("在医疗机构分娩须填写分娩机构代码", code="institution-required")
        district = institution_district(institution_code)
    elif institution_code:
        raise Invalid("非医疗机构分娩不应填写分娩机构", code="institution-not-allowed")
    p.delivered_on, p.delivery_week = delivered_on, week
    p.delivery_place, p.delivery_method = place, method
    p.delivery_institution_code = institution_code
    p.delivery_district_code = district or p.district_code
    p.live_births, p.stillbirths = live_births, stillbirths
    p.outcome = "live" if not stillbirths else ("stillbirth" if not live_births else "mixed")
    p.status = DELIVERED
    session.flush()
    return p


def end_pregnancy(session: Session, *, actor: Actor, pregnancy_id: int, ended_on: date) -> Pregnancy:
    """妊娠终止 before 20 weeks (miscarriage or induced abortion): the episode ends without a delivery."""
    p = get_pregnancy(session, pregnancy_id=pregnancy_id)
    _need_active(p, "妊娠终止")
    if ended_on < p.registered_on:
        raise Invalid("终止日期早于建册日期", code="end-before-registration")
    rules.check_not_future(ended_on, today(), "终止日期")
    week = rules.gestational_week(p.lmp, ended_on)
    if week >= rules.MIN_DELIVERY_WEEKS:
        raise Invalid(f"孕 {week} 周的妊娠结局应登记为分娩（满 20 周）", code="end-after-20-weeks")
    p.ended_on, p.status, p.next_follow_up_on = ended_on, TERMINATED, None
    session.flush()
    return p


def record_postpartum_visit(
    session: Session,
    *,
    actor: Actor,
    pregnancy_id: int,
    visit_date: date,
    institution_code: str,
    kind: str = PP_VISIT,
    note: str = "",
) -> PostpartumVisit:
    """产后访视 (numbered 1, 2, …) or the 42-day check; only after a delivery, within their windows."""
    p = get_pregnancy(session, pregnancy_id=pregnancy_id)
    if p.status != DELIVERED or p.delivered_on is None:
        raise Conflict("尚未登记分娩，不能登记产后访视", code="not-delivered")
    district = institution_district(institution_code)
    rules.check_not_future(visit_date, today(), "访视日期")
    days = (visit_date - p.delivered_on).days
    if days < 0:
        raise Invalid("产后访视日期早于分娩日期", code="visit-before-delivery")
    if kind == PP_VISIT and days > 42:
        raise Invalid(f"产后访视应在产后 42 天内（本次为产后第 {days} 天）", code="visit-too-late")
    lo, hi = rules.CHECK42_WINDOW
    if kind == PP_CHECK42 and not lo <= days <= hi:
        raise Invalid(f"产后 42 天健康检查应在产后 {lo}–{hi} 天（本次为第 {days} 天）", code="check42-window")
    if kind not in (PP_VISIT, PP_CHECK42):
        raise Invalid(f"访视类别应为 visit（产后访视）或 check42（42 天检查）：{kind}", code="bad-kind")
    seq = 1 + int(
        session.scalar(
            select(func.count()).where(PostpartumVisit.pregnancy_id == p.id, PostpartumVisit.kind == kind)
        )
        or 0
    )
    if kind == PP_CHECK42 and seq > 1:
        raise Conflict("已登记产后 42 天健康检查", code="check42-exists")
    v = PostpartumVisit(
        pregnancy_id=p.id,
        visit_date=visit_date,
        kind=kind,
        seq=seq,
        days_after=days,
        institution_code=institution_code,
        district_code=district,
        note=note,
        recorded_by=actor.name,
    )
    session.add(v)
    if kind == PP_VISIT and days <= rules.POSTPARTUM_VISIT_DAYS:
        p.pp_visits_28 = (p.pp_visits_28 or 0) + 1
    session.flush()
    return v


def record_maternal_death(session: Session, *, actor: Actor, pregnancy_id: int, died_on: date) -> Pregnancy:
    """孕产妇死亡: a death in pregnancy or within 42 days of its end."""
    p = get_pregnancy(session, pregnancy_id=pregnancy_id)
    rules.check_not_future(died_on, today(), "死亡日期")
    end = p.delivered_on or p.ended_on
    if died_on < p.registered_on or (end and (died_on - end).days > 42):
        raise Invalid("孕产妇死亡指妊娠期至妊娠结束后 42 天内的死亡", code="not-maternal-death")
    p.maternal_death_on = died_on
    p.next_follow_up_on = None
    session.flush()
    return p


def visits_of(session: Session, *, pregnancy_id: int) -> dict[str, list[object]]:
    """An episode's antenatal visits, gradings, follow-ups, postpartum visits and transfers, in date order."""
    return {
        "antenatal": list(
            session.scalars(
                select(AntenatalVisit)
                .where(AntenatalVisit.pregnancy_id == pregnancy_id)
                .order_by(AntenatalVisit.visit_date, AntenatalVisit.id)
            )
        ),
        "assessments": list(
            session.scalars(
                select(RiskAssessment)
                .where(RiskAssessment.pregnancy_id == pregnancy_id)
                .order_by(RiskAssessment.assessed_on, RiskAssessment.id)
            )
        ),
        "follow_ups": list(
            session.scalars(
                select(CaseFollowUp)
                .where(CaseFollowUp.pregnancy_id == pregnancy_id)
                .order_by(CaseFollowUp.followed_on, CaseFollowUp.id)
            )
        ),
        "postpartum": list(
            session.scalars(
                select(PostpartumVisit)
                .where(PostpartumVisit.pregnancy_id == pregnancy_id)
                .order_by(PostpartumVisit.visit_date, PostpartumVisit.id)
            )
        ),
        "transfers": list(
            session.scalars(
                select(Transfer).where(Transfer.pregnancy_id == pregnancy_id).order_by(Transfer.id)
            )
        ),
    }
