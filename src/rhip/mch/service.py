"""MCH services: the pregnancy episode (建册, antenatal visits, risk grading, 专案管理, transfer, delivery,
postpartum visits and the 42-day check) and the child (registration under the mother's ID, the link to the
child's own ID, newborn visits, examinations, growth). Callers own the transaction; every refusal is an
`Invalid`/`Conflict`/`NotFound` with the rule in Chinese.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from rhip.clock import local_now
from rhip.errors import Conflict, Invalid, NotFound
from rhip.identity import service as identity
from rhip.mch import rules
from rhip.mch.models import (
    ACTIVE,
    COLOURS,
    DELIVERED,
    EXAM,
    FIRST,
    METHODS,
    NEWBORN,
    ORANGE,
    PLACES,
    PP_CHECK42,
    PP_VISIT,
    RED,
    RETURN,
    TERMINATED,
    AntenatalVisit,
    CaseFollowUp,
    Child,
    ChildVisit,
    ChildYear,
    PostpartumVisit,
    Pregnancy,
    RiskAssessment,
    Transfer,
)
from rhip.registry import data as reg_data, idnumber
from rhip.security import service as security

WRITE_KINDS = ("hospital", "mch", "community_health_centre", "district_platform")
IDENTITY_SOURCE = "mch"


@dataclass(frozen=True)
class Actor:
    """Who records: user name, role and institution (for the audit log and default institution)."""

    name: str
    role: str | None = None
    institution_code: str | None = None


def today() -> date:
    """Today in Asia/Shanghai."""
    return local_now().date()


def institution_district(code: str) -> str:
    """The district code of a Nanjing institution that may record MCH services, or Invalid."""
    inst = reg_data.get(code)
    if inst is None or inst.kind not in WRITE_KINDS or not inst.district_code:
        raise Invalid(f"机构代码 {code} 不是本市可登记妇幼保健服务的机构", code="unknown-institution")
    return inst.district_code


def _check_id(id_number: str, *, birth_date: date | None, sex: str | None) -> idnumber.IdCheck:
    check = idnumber.validate_id(id_number, birth_date=birth_date, sex=sex)
    if not check.ok:
        raise Invalid("身份证号码无效：" + "；".join(m for _r, m in check.errors), code="bad-id-number")
    return check


# ---------------------------------------------------------------- pregnancy


def get_pregnancy(session: Session, *, pregnancy_id: int) -> Pregnancy:
    """One pregnancy episode, or NotFound."""
    p = session.get(Pregnancy, pregnancy_id)
    if p is None:
        raise NotFound(f"孕产期保健册 {pregnancy_id} 不存在", code="pregnancy-not-found")
    return p


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
    check = _check_id(id_number, birth_date=birth_date, sex="2")
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
) -> AntenatalVisit:
    """初诊/复诊: the first visit is 初诊, later ones 复诊; dates follow 建册 and precede delivery."""
    p = get_pregnancy(session, pregnancy_id=pregnancy_id)
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


def is_case(colour: str | None, purple: bool) -> bool:
    """Whether a grading puts the woman under 专案管理 (orange, red or purple)."""
    return purple or colour in (ORANGE, RED)


def follow_up_days(colour: str | None, purple: bool) -> int | None:
    """Days until the next follow-up of a case (the shortest rule that applies)."""
    days = [
        rules.FOLLOW_UP_DAYS[c] for c in (colour, "purple" if purple else None) if c in rules.FOLLOW_UP_DAYS
    ]
    return min(days) if days else None


def assess_risk(
    session: Session,
    *,
    actor: Actor,
    pregnancy_id: int,
    assessed_on: date,
    colour: str,
    purple: bool = False,
    factors: str = "",
    case_owner: str | None = None,
) -> RiskAssessment:
    """(Re-)grade a pregnancy's risk: keeps the previous colour, audits a change, opens or closes the case."""
    p = get_pregnancy(session, pregnancy_id=pregnancy_id)
    if p.status not in (ACTIVE, DELIVERED):
        raise Conflict("妊娠已终止或结案，不能再评估风险", code="pregnancy-not-active")
    if colour not in COLOURS:
        raise Invalid(
            f"风险颜色应为 green/yellow/orange/red 之一（紫色另用 purple 标记）：{colour}", code="bad-colour"
        )
    rules.check_not_future(assessed_on, today(), "评估日期")
    if assessed_on < p.registered_on:
        raise Invalid("评估日期早于建册日期", code="assessment-before-registration")
    owner = (case_owner or "").strip() or p.case_owner
    if is_case(colour, purple) and not owner:
        raise Invalid(
            "橙色、红色、紫色孕产妇须纳入专案管理：请指定专案管理责任人", code="case-owner-required"
        )
    previous = (p.colour, p.purple)
    a = RiskAssessment(
        pregnancy_id=p.id,
        assessed_on=assessed_on,
        colour=colour,
        purple=purple,
        previous_colour=p.colour,
        previous_purple=p.purple if p.colour else None,
        factors=factors,
        assessed_by=actor.name,
        institution_code=actor.institution_code or p.institution_code,
        reported=colour in (ORANGE, RED),
    )
    session.add(a)
    p.colour, p.purple = colour, purple
    if is_case(colour, purple):
        if not p.case_opened_on:
            p.case_opened_on = assessed_on
        p.case_owner = owner
        days = follow_up_days(colour, purple)
        p.next_follow_up_on = assessed_on + timedelta(days=days or 14)
    else:
        p.next_follow_up_on = None
    session.flush()
    if previous != (colour, purple):
        security.audit(
            session,
            actor=actor.name,
            role=actor.role,
            action="mch.risk.grade" if previous[0] is None else "mch.risk.regrade",
            target=f"mch_pregnancy:{p.id}",
            institution_code=actor.institution_code,
            detail={
                "from": previous[0],
                "from_purple": previous[1],
                "to": colour,
                "to_purple": purple,
                "assessment": a.id,
            },
        )
    return a


def record_follow_up(
    session: Session,
    *,
    actor: Actor,
    pregnancy_id: int,
    followed_on: date,
    method: str = "clinic",
    note: str = "",
    next_due_on: date | None = None,
) -> CaseFollowUp:
    """A follow-up of a case under 专案管理; sets the next due date (by colour unless given)."""
    p = get_pregnancy(session, pregnancy_id=pregnancy_id)
    if not is_case(p.colour, p.purple):
        raise Conflict("该孕产妇不在专案管理中（仅橙色、红色、紫色）", code="not-a-case")
    if method not in ("clinic", "phone", "home"):
        raise Invalid(
            f"随访方式应为 clinic（门诊）、phone（电话）或 home（入户）：{method}", code="bad-method"
        )
    rules.check_not_future(followed_on, today(), "随访日期")
    if followed_on < p.registered_on:
        raise Invalid("随访日期早于建册日期", code="follow-up-before-registration")
    due = next_due_on or followed_on + timedelta(days=follow_up_days(p.colour, p.purple) or 14)
    if due <= followed_on:
        raise Invalid("下次随访日期应晚于本次随访日期", code="bad-next-due")
    f = CaseFollowUp(
        pregnancy_id=p.id,
        followed_on=followed_on,
        method=method,
        note=note,
        next_due_on=due,
        recorded_by=actor.name,
    )
    session.add(f)
    p.next_follow_up_on = None if p.status != ACTIVE else due
    session.flush()
    return f


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


# ---------------------------------------------------------------- high-risk work


@dataclass(frozen=True)
class CaseRow:
    """One case of the high-risk work list."""

    pregnancy: Pregnancy
    due_on: date | None
    overdue_days: int

    @property
    def overdue(self) -> bool:
        """Whether the follow-up is past its due date."""
        return self.overdue_days > 0


def high_risk_cases(
    session: Session,
    *,
    on: date | None = None,
    district_code: str | None = None,
    institution_code: str | None = None,
    within_days: int = 7,
    only_due: bool = False,
) -> list[CaseRow]:
    """Orange, red and purple women under management: most overdue first, then by due date."""
    day = on or today()
    stmt = select(Pregnancy).where(
        Pregnancy.status.in_((ACTIVE, DELIVERED)),
        Pregnancy.next_follow_up_on.is_not(None),
        Pregnancy.maternal_death_on.is_(None),
        or_(Pregnancy.colour.in_((ORANGE, RED)), Pregnancy.purple.is_(True)),
    )
    if district_code:
        stmt = stmt.where(Pregnancy.district_code == district_code)
    if institution_code:
        stmt = stmt.where(Pregnancy.institution_code == institution_code)
    if only_due:
        stmt = stmt.where(Pregnancy.next_follow_up_on <= day + timedelta(days=within_days))
    rows = []
    for p in session.scalars(stmt.order_by(Pregnancy.next_follow_up_on, Pregnancy.id)):
        due = p.next_follow_up_on
        rows.append(CaseRow(pregnancy=p, due_on=due, overdue_days=max(0, (day - due).days) if due else 0))
    return rows


# ---------------------------------------------------------------- children


def get_child(session: Session, *, child_id: int) -> Child:
    """One child's record, or NotFound."""
    c = session.get(Child, child_id)
    if c is None:
        raise NotFound(f"儿童保健档案 {child_id} 不存在", code="child-not-found")
    return c


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
    check = _check_id(mother_id_number, birth_date=None, sex="2")
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
    check = _check_id(id_number, birth_date=c.birth_date, sex=c.sex if c.sex in ("1", "2") else None)
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


def mask_id(number: str | None) -> str | None:
    """An ID number with the middle hidden (for roles that need no identity)."""
    if not number:
        return number
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def mask_name(name: str) -> str:
    """A name with all but the family name hidden."""
    return name[:1] + "*" * max(1, len(name) - 1) if name else name
