"""MCH JSON API (/api/v1/mch): pregnancy episodes and their services, children, the high-risk work list,
the district usage table and the report year's indicators.

MCH workers (doctor, family_doctor) record for their own institution and read their district, in full and
audited; managers read every district with names and ID numbers masked (security.masking's "mch" view);
admins do everything.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from rhip.errors import Forbidden
from rhip.mch import indicators, service as svc, stats
from rhip.mch.models import Child, Pregnancy
from rhip.mch.schemas import (
    AntenatalVisitCreate,
    AntenatalVisitRead,
    AssessmentCreate,
    AssessmentRead,
    CaseRead,
    ChildCreate,
    ChildDetail,
    ChildLink,
    ChildPage,
    ChildRead,
    ChildVisitCreate,
    ChildVisitRead,
    DeathCreate,
    DeliveryCreate,
    EndCreate,
    FollowUpCreate,
    FollowUpRead,
    PostpartumCreate,
    PostpartumRead,
    PregnancyCreate,
    PregnancyDetail,
    PregnancyPage,
    PregnancyRead,
    TransferCreate,
)
from rhip.security import service as security
from rhip.security.deps import SessionDep, require
from rhip.security.masking import Kind, Masker
from rhip.security.roles import Role
from rhip.security.service import Principal

T = TypeVar("T")
router = APIRouter()
WORKERS = (Role.doctor, Role.family_doctor, Role.admin)
READERS = (Role.doctor, Role.family_doctor, Role.manager, Role.admin)
FIGURES = (Role.doctor, Role.family_doctor, Role.manager, Role.admin, Role.auditor)
Worker = Annotated[Principal, Depends(require(*WORKERS))]
Reader = Annotated[Principal, Depends(require(*READERS))]


def actor_of(p: Principal) -> svc.Actor:
    """The service's actor for a principal."""
    return svc.Actor(name=p.subject, role=p.role.value, institution_code=p.institution_code)


def institution_for(p: Principal, given: str | None) -> str:
    """The institution a worker records for: their own (an admin names any)."""
    if p.role == Role.admin:
        if not given and not p.institution_code:
            raise Forbidden("系统管理员登记时须填写机构代码", code="institution-required")
        return given or str(p.institution_code)
    if not p.institution_code:
        raise Forbidden("账号未绑定机构，不能登记妇幼保健服务", code="no-institution")
    if given and given != p.institution_code:
        raise Forbidden("只能为本机构登记", code="other-institution")
    return p.institution_code


def scope_district(p: Principal) -> str | None:
    """The district a worker sees (their institution's); None for managers and admins (all)."""
    if p.role in (Role.manager, Role.admin, Role.auditor):
        return None
    if not p.institution_code:
        raise Forbidden("账号未绑定机构", code="no-institution")
    return svc.institution_district(p.institution_code)


def masker(p: Principal) -> Masker:
    """How this caller sees identities (security.masking's "mch" view: managers see them masked)."""
    return Masker(p, "mch")


def pregnancy_read(preg: Pregnancy, p: Principal) -> PregnancyRead:
    """The API form, masked by role."""
    m = masker(p)
    out = PregnancyRead.model_validate(preg)
    return out.model_copy(
        update={"id_number": m.id(preg.id_number), "name": m.value(Kind.name, preg.name, preg.id_number)}
    )


def child_read(child: Child, p: Principal) -> ChildRead:
    """The API form, masked by role."""
    m = masker(p)
    out = ChildRead.model_validate(child)
    return out.model_copy(
        update={
            "id_number": m.id(child.id_number),
            "mother_id_number": m.id(child.mother_id_number),
            "name": m.value(Kind.name, child.name, child.id_number),
        }
    )


def pregnancy_for(session: Session, p: Principal, pregnancy_id: int) -> Pregnancy:
    preg = svc.get_pregnancy(session, pregnancy_id=pregnancy_id)
    district = scope_district(p)
    if district and preg.district_code != district and preg.registered_district_code != district:
        raise Forbidden("该孕产妇不在本区管理", code="other-district")
    return preg


def child_for(session: Session, p: Principal, child_id: int) -> Child:
    child = svc.get_child(session, child_id=child_id)
    district = scope_district(p)
    if district and child.district_code != district:
        raise Forbidden("该儿童不在本区管理", code="other-district")
    return child


def on_episode(
    session: Session, p: Principal, pregnancy_id: int, record: Callable[..., T], **fields: Any
) -> T:
    """A write on an episode: refused outside the caller's district, else the service call as this caller."""
    pregnancy_for(session, p, pregnancy_id)
    return record(session, actor=actor_of(p), pregnancy_id=pregnancy_id, **fields)


def on_child(session: Session, p: Principal, child_id: int, record: Callable[..., T], **fields: Any) -> T:
    """A write on a child's record: refused outside the caller's district, else the service call."""
    child_for(session, p, child_id)
    return record(session, actor=actor_of(p), child_id=child_id, **fields)


def _at(p: Principal, body: Any) -> dict[str, Any]:
    """A request body's fields with the institution the caller records for."""
    return {
        **body.model_dump(exclude={"institution_code"}),
        "institution_code": institution_for(p, body.institution_code),
    }


def audit_read(session: Session, p: Principal, target: str) -> None:
    """Audit a read of personal MCH data (`mch.read`, the reader and the record or list read)."""
    security.audit(
        session,
        actor=p.subject,
        role=p.role.value,
        action="mch.read",
        target=target,
        institution_code=p.institution_code,
    )


def _detail(session: Session, preg: Pregnancy, p: Principal) -> PregnancyDetail:
    parts: dict[str, Any] = svc.visits_of(session, pregnancy_id=preg.id)
    return PregnancyDetail(
        pregnancy=pregnancy_read(preg, p),
        antenatal=[AntenatalVisitRead.model_validate(v) for v in parts["antenatal"]],
        assessments=[AssessmentRead.model_validate(v) for v in parts["assessments"]],
        follow_ups=[FollowUpRead.model_validate(v) for v in parts["follow_ups"]],
        postpartum=[PostpartumRead.model_validate(v) for v in parts["postpartum"]],
    )


@router.post("/pregnancies", status_code=201, response_model=PregnancyRead)
def create_pregnancy(body: PregnancyCreate, session: SessionDep, principal: Worker) -> PregnancyRead:
    """建册: open a pregnancy episode."""
    with session.begin():
        data = body.model_dump(exclude={"institution_code"})
        preg = svc.register_pregnancy(
            session,
            actor=actor_of(principal),
            institution_code=institution_for(principal, body.institution_code),
            **data,
        )
        return pregnancy_read(preg, principal)


@router.get("/pregnancies", response_model=PregnancyPage)
def list_pregnancies(
    session: SessionDep,
    principal: Reader,
    status: str | None = None,
    colour: str | None = None,
    q: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> PregnancyPage:
    """Pregnancy episodes of the caller's district (every district for managers)."""
    with session.begin():
        rows, total = svc.get_all_pregnancies(
            session,
            district_code=scope_district(principal),
            status=status,
            colour=colour,
            q=q,
            limit=limit,
            offset=offset,
        )
        audit_read(session, principal, f"mch_pregnancies:list:{len(rows)}")
        return PregnancyPage(items=[pregnancy_read(r, principal) for r in rows], total=total)


@router.get("/pregnancies/{pregnancy_id}", response_model=PregnancyDetail)
def read_pregnancy(pregnancy_id: int, session: SessionDep, principal: Reader) -> PregnancyDetail:
    """One episode with its visits, gradings, follow-ups and postpartum visits (the read is audited)."""
    with session.begin():
        preg = pregnancy_for(session, principal, pregnancy_id)
        audit_read(session, principal, f"mch_pregnancy:{preg.id}")
        return _detail(session, preg, principal)


@router.post("/pregnancies/{pregnancy_id}/visits", status_code=201, response_model=AntenatalVisitRead)
def create_visit(
    pregnancy_id: int, body: AntenatalVisitCreate, session: SessionDep, principal: Worker
) -> AntenatalVisitRead:
    """初诊/复诊."""
    with session.begin():
        v = on_episode(session, principal, pregnancy_id, svc.record_antenatal_visit, **_at(principal, body))
        return AntenatalVisitRead.model_validate(v)


@router.post("/pregnancies/{pregnancy_id}/assessments", status_code=201, response_model=AssessmentRead)
def create_assessment(
    pregnancy_id: int, body: AssessmentCreate, session: SessionDep, principal: Worker
) -> AssessmentRead:
    """Grade or re-grade the pregnancy's risk colour (a change is audited)."""
    with session.begin():
        a = on_episode(session, principal, pregnancy_id, svc.assess_risk, **body.model_dump())
        return AssessmentRead.model_validate(a)


@router.post("/pregnancies/{pregnancy_id}/follow-ups", status_code=201, response_model=FollowUpRead)
def create_follow_up(
    pregnancy_id: int, body: FollowUpCreate, session: SessionDep, principal: Worker
) -> FollowUpRead:
    """A follow-up of a case under 专案管理."""
    with session.begin():
        f = on_episode(session, principal, pregnancy_id, svc.record_follow_up, **body.model_dump())
        return FollowUpRead.model_validate(f)


@router.post("/pregnancies/{pregnancy_id}/transfer", response_model=PregnancyRead)
def create_transfer(
    pregnancy_id: int, body: TransferCreate, session: SessionDep, principal: Worker
) -> PregnancyRead:
    """转出: the episode moves to another institution (and district)."""
    with session.begin():
        on_episode(session, principal, pregnancy_id, svc.transfer_pregnancy, **body.model_dump())
        return pregnancy_read(svc.get_pregnancy(session, pregnancy_id=pregnancy_id), principal)


@router.post("/pregnancies/{pregnancy_id}/delivery", response_model=PregnancyRead)
def create_delivery(
    pregnancy_id: int, body: DeliveryCreate, session: SessionDep, principal: Worker
) -> PregnancyRead:
    """分娩."""
    with session.begin():
        preg = on_episode(session, principal, pregnancy_id, svc.record_delivery, **body.model_dump())
        return pregnancy_read(preg, principal)


@router.post("/pregnancies/{pregnancy_id}/termination", response_model=PregnancyRead)
def create_termination(
    pregnancy_id: int, body: EndCreate, session: SessionDep, principal: Worker
) -> PregnancyRead:
    """妊娠终止 before 20 weeks (the episode ends without a delivery)."""
    with session.begin():
        preg = on_episode(session, principal, pregnancy_id, svc.end_pregnancy, ended_on=body.ended_on)
        return pregnancy_read(preg, principal)


@router.post("/pregnancies/{pregnancy_id}/death", response_model=PregnancyRead)
def create_maternal_death(
    pregnancy_id: int, body: DeathCreate, session: SessionDep, principal: Worker
) -> PregnancyRead:
    """孕产妇死亡 (in pregnancy or within 42 days of its end)."""
    with session.begin():
        preg = on_episode(session, principal, pregnancy_id, svc.record_maternal_death, died_on=body.died_on)
        return pregnancy_read(preg, principal)


@router.post("/pregnancies/{pregnancy_id}/postpartum-visits", status_code=201, response_model=PostpartumRead)
def create_postpartum(
    pregnancy_id: int, body: PostpartumCreate, session: SessionDep, principal: Worker
) -> PostpartumRead:
    """产后访视 or the 42-day check."""
    with session.begin():
        v = on_episode(session, principal, pregnancy_id, svc.record_postpartum_visit, **_at(principal, body))
        return PostpartumRead.model_validate(v)


@router.post("/children", status_code=201, response_model=ChildRead)
def create_child(body: ChildCreate, session: SessionDep, principal: Worker) -> ChildRead:
    """儿童登记."""
    with session.begin():
        c = svc.register_child(session, actor=actor_of(principal), **_at(principal, body))
        return child_read(c, principal)


@router.get("/children", response_model=ChildPage)
def list_children(
    session: SessionDep,
    principal: Reader,
    q: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ChildPage:
    """Children of the caller's district (every district for managers)."""
    with session.begin():
        rows, total = svc.get_all_children(
            session, district_code=scope_district(principal), q=q, limit=limit, offset=offset
        )
        audit_read(session, principal, f"mch_children:list:{len(rows)}")
        return ChildPage(items=[child_read(r, principal) for r in rows], total=total)


@router.get("/children/{child_id}", response_model=ChildDetail)
def read_child(child_id: int, session: SessionDep, principal: Reader) -> ChildDetail:
    """A child with visits and the examinations overdue (the read is audited)."""
    with session.begin():
        c = child_for(session, principal, child_id)
        audit_read(session, principal, f"mch_child:{c.id}")
        return ChildDetail(
            child=child_read(c, principal),
            visits=[ChildVisitRead.model_validate(v) for v in svc.child_visits(session, child_id=c.id)],
            exams_due_months=svc.exams_due(session, child_id=c.id),
        )


@router.post("/children/{child_id}/link", response_model=ChildRead)
def link_child(child_id: int, body: ChildLink, session: SessionDep, principal: Worker) -> ChildRead:
    """The child's own ID number replaces the mother's as the record's identity."""
    with session.begin():
        c = on_child(session, principal, child_id, svc.link_child, **body.model_dump())
        return child_read(c, principal)


@router.post("/children/{child_id}/visits", status_code=201, response_model=ChildVisitRead)
def create_child_visit(
    child_id: int, body: ChildVisitCreate, session: SessionDep, principal: Worker
) -> ChildVisitRead:
    """新生儿访视 or a health examination."""
    with session.begin():
        v = on_child(session, principal, child_id, svc.record_child_visit, **_at(principal, body))
        return ChildVisitRead.model_validate(v)


@router.post("/children/{child_id}/death", response_model=ChildRead)
def create_child_death(child_id: int, body: DeathCreate, session: SessionDep, principal: Worker) -> ChildRead:
    """A child's death (for the infant and under-5 mortality counts)."""
    with session.begin():
        c = on_child(session, principal, child_id, svc.record_child_death, died_on=body.died_on)
        return child_read(c, principal)


@router.get("/high-risk", response_model=list[CaseRead])
def high_risk(
    session: SessionDep,
    principal: Reader,
    on: date | None = None,
    only_due: bool = False,
    within_days: Annotated[int, Query(ge=0, le=90)] = 7,
) -> list[CaseRead]:
    """Orange, red and purple cases with their next follow-up and overdue days."""
    with session.begin():
        rows = svc.high_risk_cases(
            session,
            on=on,
            district_code=scope_district(principal),
            within_days=within_days,
            only_due=only_due,
        )
        audit_read(session, principal, f"mch_high_risk:{len(rows)}")
        m = masker(principal)
        return [
            CaseRead(
                pregnancy_id=r.pregnancy.id,
                name=m.value(Kind.name, r.pregnancy.name, r.pregnancy.id_number) or "",
                institution_code=r.pregnancy.institution_code,
                district_code=r.pregnancy.district_code,
                colour=r.pregnancy.colour,
                purple=r.pregnancy.purple,
                case_owner=r.pregnancy.case_owner,
                due_on=r.due_on,
                overdue_days=r.overdue_days,
            )
            for r in rows
        ]


@router.get("/indicators")
def get_indicators(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*FIGURES))],
    year: Annotated[int, Query(ge=2000, le=2100, description="report year, named by its end (Oct–Sep)")],
    district: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
) -> dict[str, Any]:
    """The report year's national MCH indicators (and SMART ANC ones) for the city or a district."""
    with session.begin():
        return indicators.report(session, year=year, district=district).as_dict()


@router.get("/usage")
def get_usage(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(*FIGURES))],
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")],
) -> dict[str, Any]:
    """妇幼保健信息系统各区使用情况 for a month (the 2018-03 bulletin's layout)."""
    with session.begin():
        return stats.usage_table(session, month=month)
