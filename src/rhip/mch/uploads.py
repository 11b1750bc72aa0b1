"""The MCH catalogue tables (a WS 377.4-style subset: 建册, 产前检查, 分娩, 产后访视, 儿童保健档案,
儿童健康检查) applied to the registry in intake's commit transaction (`absorb_stored`, which intake calls
as it calls the records' serving store).

Each stored record goes through the same service function a worker's form calls, so the registry's rules
hold for uploads too; a record the registry refuses (a visit before 建册, a delivery before 20 weeks)
becomes a line of the batch's problem list with the rule's message, and the rest of the batch is applied.
Which registry row each record became is kept in `mch_upload_keys`: a newer version (修改标志 2, or a newer
re-send) replaces that row, a revocation (修改标志 3) removes it; the rollups the indicators read are kept
right both ways. An identical re-send never reaches here (intake counts it a duplicate and stores nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

import polars as pl
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from rhip.clock import SHANGHAI
from rhip.errors import Conflict, Invalid, NotFound, RhipError
from rhip.mch import children, pregnancy, risk, rules
from rhip.mch.common import Actor, check_id, get_child, get_pregnancy, today
from rhip.mch.models import (
    ACTIVE,
    DELIVERED,
    EXAM,
    FIRST,
    GREEN,
    NEWBORN,
    ORANGE,
    PP_CHECK42,
    PP_VISIT,
    RED,
    RETURN,
    YELLOW,
    AntenatalVisit,
    CaseFollowUp,
    Child,
    ChildVisit,
    ChildYear,
    PostpartumVisit,
    Pregnancy,
    Reminder,
    RiskAssessment,
    Transfer,
    UploadKey,
)

OP_REVOKE = 3  # intake's 修改标志 3 (a tombstone)
REGISTRATION, ANTENATAL, DELIVERY = "mch_pregnancy_registration", "mch_antenatal_visit", "mch_delivery"
POSTPARTUM, CHILD, CHILD_EXAM = "mch_postpartum_visit", "mch_child_record", "mch_child_exam"
# catalogue codes → the registry's (the catalogue's code systems are in rhip.registry.codes)
COLOURS = {"1": GREEN, "2": YELLOW, "3": ORANGE, "4": RED}
PLACES = {"1": "institution", "2": "home", "3": "en_route", "9": "other"}
METHODS = {"1": "vaginal", "2": "assisted", "3": "caesarean"}
ANC_KINDS = {"1": FIRST, "2": RETURN}
PP_KINDS = {"1": PP_VISIT, "2": PP_CHECK42}
CHILD_KINDS = {"1": NEWBORN, "2": EXAM}
PROBLEM_SCHEMA = {
    "table_name": pl.String,
    "file": pl.String,
    "row": pl.Int64,
    "business_key": pl.String,
    "rule": pl.String,
    "field": pl.String,
    "value": pl.String,
    "message": pl.String,
}


# ---------------------------------------------------------------- keys


def _target(session: Session, org: str, table: str, key: str) -> int | None:
    return session.scalar(
        select(UploadKey.target_id).where(
            UploadKey.institution_code == org, UploadKey.table_name == table, UploadKey.business_key == key
        )
    )


def _remember(session: Session, org: str, table: str, key: str, target: int, batch_id: str) -> None:
    hit = session.get(UploadKey, (org, table, key))
    if hit is None:
        session.add(
            UploadKey(
                institution_code=org, table_name=table, business_key=key, target_id=target, batch_id=batch_id
            )
        )
    else:
        hit.target_id, hit.batch_id = target, batch_id


def _forget(session: Session, table: str, targets: list[int]) -> None:
    if targets:
        session.execute(
            delete(UploadKey).where(UploadKey.table_name == table, UploadKey.target_id.in_(targets))
        )


def _episode(session: Session, org: str, handbook_no: str) -> Pregnancy:
    """The episode an uploaded record names by its 保健手册编号 (uploaded, or entered on the pages)."""
    pid = _target(session, org, REGISTRATION, handbook_no) or session.scalar(
        select(Pregnancy.id).where(
            Pregnancy.registered_institution_code == org, Pregnancy.local_id == handbook_no
        )
    )
    if pid is None:
        raise NotFound(
            f"保健手册 {handbook_no} 未在妇幼保健登记库中（请先上传建册）", code="pregnancy-not-found"
        )
    return get_pregnancy(session, pregnancy_id=pid)


def _record(session: Session, org: str, child_record_no: str) -> Child:
    cid = _target(session, org, CHILD, child_record_no) or session.scalar(
        select(Child.id).where(Child.institution_code == org, Child.local_id == child_record_no)
    )
    if cid is None:
        raise NotFound(
            f"儿童保健档案 {child_record_no} 未在妇幼保健登记库中（请先上传建档）", code="child-not-found"
        )
    return get_child(session, child_id=cid)


# ---------------------------------------------------------------- rollups after a removal


def refresh_episode(session: Session, p: Pregnancy) -> None:
    """The episode's rollups recounted from its visits (after a visit was removed or the dates moved)."""
    for v in session.scalars(select(AntenatalVisit).where(AntenatalVisit.pregnancy_id == p.id)):
        v.gestational_week = rules.gestational_week(p.lmp, v.visit_date)
    session.flush()
    n, first = session.execute(
        select(func.count(), func.min(AntenatalVisit.gestational_week)).where(
            AntenatalVisit.pregnancy_id == p.id
        )
    ).one()
    p.anc_visits, p.first_visit_week = int(n), first
    p.pp_visits_28 = int(
        session.scalar(
            select(func.count()).where(
                PostpartumVisit.pregnancy_id == p.id,
                PostpartumVisit.kind == PP_VISIT,
                PostpartumVisit.days_after <= rules.POSTPARTUM_VISIT_DAYS,
            )
        )
        or 0
    )
    session.flush()


def _drop_child_visit(session: Session, v: ChildVisit) -> None:
    c = get_child(session, child_id=v.child_id)
    session.delete(v)
    session.flush()
    if v.kind == NEWBORN:
        c.newborn_visit_age = session.scalar(
            select(func.min(ChildVisit.age_days)).where(
                ChildVisit.child_id == c.id, ChildVisit.kind == NEWBORN
            )
        )
    else:
        year = session.get(ChildYear, (rules.year_of(v.visit_date), c.id))
        if year is not None:
            year.exams -= 1
            if year.exams <= 0:
                session.delete(year)
    session.flush()


def _undo_delivery(p: Pregnancy) -> None:
    p.delivered_on = p.delivery_week = p.delivery_place = p.delivery_method = None
    p.delivery_institution_code = p.delivery_district_code = None
    p.live_births = p.stillbirths = p.outcome = None
    p.status = ACTIVE


# ---------------------------------------------------------------- one record of each table


def _colour(session: Session, actor: Actor, p: Pregnancy, row: Mapping[str, Any], on: date) -> None:
    """A grading sent with the record: re-grades (audited) only when the colour or the purple flag changed."""
    code = row.get("risk_colour")
    if not code:
        return
    colour, purple = COLOURS[str(code)], str(row.get("infectious_flag") or "0") == "1"
    if (colour, purple) != (p.colour, p.purple):
        risk.assess_risk(
            session,
            actor=actor,
            pregnancy_id=p.id,
            assessed_on=on,
            colour=colour,
            purple=purple,
            factors=str(row.get("risk_factors") or ""),
            case_owner=row.get("case_owner"),
        )


def _changed_on(row: Mapping[str, Any], earliest: date) -> date:
    """The day a correction was made (数据更新时间 in Shanghai), not before `earliest` nor after today."""
    at = row.get("updated_at")
    day = at.astimezone(SHANGHAI).date() if isinstance(at, datetime) else today()
    return max(earliest, min(day, today()))


def _registration(session: Session, actor: Actor, row: Mapping[str, Any], key: str) -> int:
    org = row["org_code"]
    pid = _target(session, org, REGISTRATION, key) or session.scalar(
        select(Pregnancy.id).where(Pregnancy.registered_institution_code == org, Pregnancy.local_id == key)
    )
    if pid is None:
        p = pregnancy.register_pregnancy(
            session,
            actor=actor,
            institution_code=org,
            local_id=key,
            id_number=row["id_number"],
            name=row["name"],
            registered_on=row["registered_on"],
            gestational_week=row["gestational_week"],
            gestational_days=row.get("gestational_days") or 0,
            phone=row.get("phone"),
            gravidity=row.get("gravidity") or 1,
            parity=row.get("parity") or 0,
        )
        _colour(session, actor, p, row, p.registered_on)
        return p.id
    p = get_pregnancy(session, pregnancy_id=pid)
    if check_id(row["id_number"], birth_date=None, sex="2").normalized != p.id_number:
        raise Invalid("修改不能更换孕妇身份证号码：请撤销该保健册后重新建册", code="id-number-changed")
    gravidity, parity = row.get("gravidity") or p.gravidity, row.get("parity")
    parity = p.parity if parity is None else parity
    if not 0 <= parity < gravidity:
        raise Invalid(f"孕次 {gravidity}、产次 {parity} 不合理（产次应小于孕次）", code="bad-gravidity")
    p.name, p.phone, p.gravidity, p.parity = str(row["name"]).strip(), row.get("phone"), gravidity, parity
    registered_on, week = row["registered_on"], row["gestational_week"]
    if (registered_on, week) != (p.registered_on, p.registration_week):
        rules.check_not_future(registered_on, today(), "建册日期")
        first_visit = session.scalar(
            select(func.min(AntenatalVisit.visit_date)).where(AntenatalVisit.pregnancy_id == p.id)
        )
        if first_visit is not None and first_visit < registered_on:
            raise Invalid("修改后的建册日期晚于已有的产前检查", code="visit-before-registration")
        p.registered_on, p.registration_week = registered_on, week
        p.lmp = rules.lmp_from(registered_on, week, row.get("gestational_days") or 0)
        p.edd = rules.edd_from(p.lmp)
        if p.delivered_on is not None:
            p.delivery_week = rules.gestational_week(p.lmp, p.delivered_on)
        refresh_episode(session, p)
    _colour(session, actor, p, row, _changed_on(row, p.registered_on))
    return p.id


def _revoke_registration(session: Session, org: str, key: str) -> None:
    pid = _target(session, org, REGISTRATION, key)
    if pid is None or session.get(Pregnancy, pid) is None:
        return
    anc = list(session.scalars(select(AntenatalVisit.id).where(AntenatalVisit.pregnancy_id == pid)))
    pp = list(session.scalars(select(PostpartumVisit.id).where(PostpartumVisit.pregnancy_id == pid)))
    for model in (AntenatalVisit, PostpartumVisit, RiskAssessment, CaseFollowUp, Transfer, Reminder):
        session.execute(delete(model).where(model.pregnancy_id == pid))
    session.execute(update(Child).where(Child.pregnancy_id == pid).values(pregnancy_id=None))
    session.execute(delete(Pregnancy).where(Pregnancy.id == pid))
    _forget(session, ANTENATAL, anc)
    _forget(session, POSTPARTUM, pp)
    _forget(session, DELIVERY, [pid])
    _forget(session, REGISTRATION, [pid])


def _antenatal(session: Session, actor: Actor, row: Mapping[str, Any], key: str) -> int:
    org = row["org_code"]
    p = _episode(session, org, row["handbook_no"])
    replaced = _revoke_antenatal(session, org, key)
    v = pregnancy.record_antenatal_visit(
        session,
        actor=actor,
        correction=replaced,
        pregnancy_id=p.id,
        visit_date=row["visit_date"],
        institution_code=org,
        kind=ANC_KINDS.get(str(row.get("visit_kind") or "")),
        systolic=row.get("systolic"),
        diastolic=row.get("diastolic"),
        weight_kg=_num(row.get("weight_kg")),
        haemoglobin=row.get("haemoglobin"),
    )
    _colour(session, actor, p, row, v.visit_date)
    return v.id


def _revoke_antenatal(session: Session, org: str, key: str) -> bool:
    vid = _target(session, org, ANTENATAL, key)
    v = session.get(AntenatalVisit, vid) if vid is not None else None
    if v is None:
        return False
    p = get_pregnancy(session, pregnancy_id=v.pregnancy_id)
    session.delete(v)
    session.flush()
    refresh_episode(session, p)
    return True


def _delivery(session: Session, actor: Actor, row: Mapping[str, Any], key: str) -> int:
    org = row["org_code"]
    p = _episode(session, org, key)
    if p.status == DELIVERED and _target(session, org, DELIVERY, key) == p.id:
        _undo_delivery(p)  # a correction: the delivery is recorded again with the new values
    place = PLACES[str(row["delivery_place"])]
    at = row.get("delivery_org_code") or (org if place == "institution" else None)
    pregnancy.record_delivery(
        session,
        actor=actor,
        pregnancy_id=p.id,
        delivered_on=row["delivered_on"],
        place=place,
        method=METHODS[str(row["delivery_method"])],
        live_births=row["live_births"],
        stillbirths=row.get("stillbirths") or 0,
        institution_code=at,
    )
    return p.id


def _revoke_delivery(session: Session, org: str, key: str) -> None:
    pid = _target(session, org, DELIVERY, key)
    p = session.get(Pregnancy, pid) if pid is not None else None
    if p is None or p.status != DELIVERED:
        return
    if session.scalar(select(func.count()).where(PostpartumVisit.pregnancy_id == p.id)):
        raise Conflict("已有产后访视记录，不能撤销分娩：请先撤销产后访视", code="delivery-has-visits")
    _undo_delivery(p)
    session.flush()


def _postpartum(session: Session, actor: Actor, row: Mapping[str, Any], key: str) -> int:
    org = row["org_code"]
    p = _episode(session, org, row["handbook_no"])
    _revoke_postpartum(session, org, key)
    v = pregnancy.record_postpartum_visit(
        session,
        actor=actor,
        pregnancy_id=p.id,
        visit_date=row["visit_date"],
        institution_code=org,
        kind=PP_KINDS[str(row["visit_kind"])],
    )
    return v.id


def _revoke_postpartum(session: Session, org: str, key: str) -> None:
    vid = _target(session, org, POSTPARTUM, key)
    v = session.get(PostpartumVisit, vid) if vid is not None else None
    if v is None:
        return
    p = get_pregnancy(session, pregnancy_id=v.pregnancy_id)
    session.delete(v)
    session.flush()
    refresh_episode(session, p)


def _child(session: Session, actor: Actor, row: Mapping[str, Any], key: str) -> int:
    org = row["org_code"]
    cid = _target(session, org, CHILD, key) or session.scalar(
        select(Child.id).where(Child.institution_code == org, Child.local_id == key)
    )
    if cid is None:
        mother_episode = None
        if row.get("handbook_no"):
            mother_episode = _episode(session, org, row["handbook_no"]).id
        c = children.register_child(
            session,
            actor=actor,
            institution_code=org,
            local_id=key,
            name=row["name"],
            sex=str(row["sex"]),
            birth_date=row["birth_date"],
            registered_on=row["registered_on"],
            pregnancy_id=mother_episode,
            mother_id_number=None if mother_episode else row["mother_id_number"],
            birth_order=row.get("birth_order") or 1,
            birth_weight_g=row.get("birth_weight_g"),
            birth_week=row.get("birth_week"),
            birth_certificate_no=row.get("birth_certificate_no"),
        )
    else:
        c = get_child(session, child_id=cid)
        if row["birth_date"] != c.birth_date or str(row["sex"]) != c.sex:
            raise Invalid("修改不能更改出生日期或性别：请撤销该档案后重新建档", code="birth-changed")
        rules.check_range("birth_weight_g", row.get("birth_weight_g"))
        c.name = str(row["name"]).strip()
        c.birth_weight_g = row.get("birth_weight_g") or c.birth_weight_g
        c.birth_week = row.get("birth_week") or c.birth_week
    own = row.get("child_id_number")
    if own and c.id_number is None:
        children.link_child(session, actor=actor, child_id=c.id, id_number=own)
    session.flush()
    return c.id


def _revoke_child(session: Session, org: str, key: str) -> None:
    cid = _target(session, org, CHILD, key)
    if cid is None or session.get(Child, cid) is None:
        return
    visits = list(session.scalars(select(ChildVisit.id).where(ChildVisit.child_id == cid)))
    session.execute(delete(ChildVisit).where(ChildVisit.child_id == cid))
    session.execute(delete(ChildYear).where(ChildYear.child_id == cid))
    session.execute(delete(Child).where(Child.id == cid))
    _forget(session, CHILD_EXAM, visits)
    _forget(session, CHILD, [cid])


def _child_exam(session: Session, actor: Actor, row: Mapping[str, Any], key: str) -> int:
    org = row["org_code"]
    c = _record(session, org, row["child_record_no"])
    _revoke_child_exam(session, org, key)
    v = children.record_child_visit(
        session,
        actor=actor,
        child_id=c.id,
        visit_date=row["visit_date"],
        institution_code=org,
        kind=CHILD_KINDS[str(row["exam_kind"])],
        weight_kg=_num(row.get("weight_kg")),
        length_cm=_num(row.get("length_cm")),
        head_cm=_num(row.get("head_cm")),
    )
    return v.id


def _revoke_child_exam(session: Session, org: str, key: str) -> None:
    vid = _target(session, org, CHILD_EXAM, key)
    v = session.get(ChildVisit, vid) if vid is not None else None
    if v is not None:
        _drop_child_visit(session, v)


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


Apply = Callable[[Session, Actor, Mapping[str, Any], str], int]
Revoke = Callable[[Session, str, str], object]
# parents first: an episode before its visits and delivery, a delivery before the children linked to it
TABLES: dict[str, tuple[Apply, Revoke]] = {
    REGISTRATION: (_registration, _revoke_registration),
    ANTENATAL: (_antenatal, _revoke_antenatal),
    DELIVERY: (_delivery, _revoke_delivery),
    POSTPARTUM: (_postpartum, _revoke_postpartum),
    CHILD: (_child, _revoke_child),
    CHILD_EXAM: (_child_exam, _revoke_child_exam),
}


def _latest(df: pl.DataFrame) -> pl.DataFrame:
    """The newest version of each key a batch stored (by 数据更新时间, then row)."""
    order = [c for c in ("updated_at", "_row") if c in df.columns]
    return df.sort(order).unique(subset=["org_code", "_key"], keep="last", maintain_order=True)


def absorb_stored(session: Session, *, batch_id: str, stored: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Apply what a batch stored in the MCH tables to the registry (intake calls this in its commit
    transaction); returns the records the registry refused as problem lines (batch id, table, row, key,
    the rule's code and its Chinese message)."""
    problems: list[dict[str, Any]] = []
    for table, (apply, revoke) in TABLES.items():
        df = stored.get(table)
        if df is None or df.height == 0:
            continue
        for row in _latest(df).iter_rows(named=True):
            org, key = row["org_code"], str(row["_key"])
            actor = Actor(name=f"intake:{batch_id}", role="uploader", institution_code=org)
            try:
                with session.begin_nested():
                    if row["_op"] == OP_REVOKE:
                        revoke(session, org, key)
                    else:
                        _remember(session, org, table, key, apply(session, actor, row, key), batch_id)
            except RhipError as exc:
                problems.append(
                    {
                        "table_name": table,
                        "file": None,
                        "row": row.get("_row"),
                        "business_key": key,
                        "rule": f"mch:{exc.code}",
                        "field": None,
                        "value": None,
                        "message": f"已入库，妇幼保健登记未受理：{exc.detail}",
                    }
                )
    out = pl.DataFrame(problems, schema=PROBLEM_SCHEMA)
    return out.with_columns(pl.lit(batch_id).alias("batch_id"))
