"""MCH page forms (Chinese): 建册, 儿童登记 and the visit, grading, follow-up, delivery, postpartum and link
forms. Each posts to the same service as the JSON API after the caller's district is checked (403 outside
it); a refused form comes back to its page with the rule's message.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from rhip.errors import RhipError
from rhip.mch import service as svc
from rhip.mch.api import (
    WORKERS,
    actor_of,
    child_for,
    institution_for,
    pregnancy_for,
)
from rhip.mch.models import (
    COLOUR_LABELS,
    VISIT_LABELS,
)
from rhip.security.deps import SessionDep, require
from rhip.security.service import Principal

router = APIRouter(include_in_schema=False)
Worker = Annotated[Principal, Depends(require(*WORKERS))]
OptDate = Annotated[date | None, Form()]


def _back(url: str, msg: str) -> RedirectResponse:
    sep = "&" if "?" in url else "?"
    return RedirectResponse(f"{url}{sep}msg={quote(msg)}", status_code=303)


def _do(session: Session, back: str, done: str, work: Callable[[], str]) -> RedirectResponse:
    """Run a form's service call in one transaction: on to `done` with its message, or back refused."""
    try:
        with session.begin():
            msg = work()
    except RhipError as exc:
        return _back(back, exc.detail)
    return _back(done, msg)


def _on_episode(
    session: Session, principal: Principal, pregnancy_id: int, work: Callable[[], str]
) -> Response:
    """A form on an episode: refused (403) outside the caller's district, else `_do` back to its page."""
    with session.begin():
        pregnancy_for(session, principal, pregnancy_id)
    url = f"/mch/pregnancies/{pregnancy_id}"
    return _do(session, url, url, work)


def _on_child(session: Session, principal: Principal, child_id: int, work: Callable[[], str]) -> Response:
    """A form on a child's record: refused (403) outside the caller's district, else `_do`."""
    with session.begin():
        child_for(session, principal, child_id)
    url = f"/mch/children/{child_id}"
    return _do(session, url, url, work)


@router.post("/mch/pregnancies")
def register_form(
    session: SessionDep,
    principal: Worker,
    local_id: Annotated[str, Form(max_length=64)],
    id_number: Annotated[str, Form(max_length=18)],
    name: Annotated[str, Form(max_length=64)],
    registered_on: Annotated[date, Form()],
    gestational_week: Annotated[int, Form()],
    colour: Annotated[str, Form(max_length=8)] = "",
    purple: Annotated[bool, Form()] = False,
    case_owner: Annotated[str, Form(max_length=64)] = "",
    factors: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """建册 from the form."""
    made: dict[str, int] = {}

    def work() -> str:
        p = svc.register_pregnancy(
            session,
            actor=actor_of(principal),
            institution_code=institution_for(principal, None),
            local_id=local_id,
            id_number=id_number,
            name=name,
            registered_on=registered_on,
            gestational_week=gestational_week,
            colour=colour or None,
            purple=purple,
            case_owner=case_owner or None,
            factors=factors,
        )
        made["id"] = p.id
        return f"已建册：{p.local_id}，预产期 {p.edd.isoformat()}"

    back = _do(session, "/mch", "/mch", work)
    if "id" in made:
        return _back(f"/mch/pregnancies/{made['id']}", "已建册")
    return back


@router.post("/mch/pregnancies/{pregnancy_id}/visits")
def visit_form(
    pregnancy_id: int,
    session: SessionDep,
    principal: Worker,
    visit_date: Annotated[date, Form()],
    systolic: Annotated[int | None, Form()] = None,
    diastolic: Annotated[int | None, Form()] = None,
    weight_kg: Annotated[float | None, Form()] = None,
    haemoglobin: Annotated[int | None, Form()] = None,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """初诊/复诊 from the form."""

    def work() -> str:
        v = svc.record_antenatal_visit(
            session,
            actor=actor_of(principal),
            pregnancy_id=pregnancy_id,
            visit_date=visit_date,
            institution_code=institution_for(principal, None),
            systolic=systolic,
            diastolic=diastolic,
            weight_kg=weight_kg,
            haemoglobin=haemoglobin,
            note=note,
        )
        return f"已登记{VISIT_LABELS[v.kind]}（孕 {v.gestational_week} 周）"

    return _on_episode(session, principal, pregnancy_id, work)


@router.post("/mch/pregnancies/{pregnancy_id}/assessments")
def assessment_form(
    pregnancy_id: int,
    session: SessionDep,
    principal: Worker,
    assessed_on: Annotated[date, Form()],
    colour: Annotated[str, Form(max_length=8)],
    purple: Annotated[bool, Form()] = False,
    case_owner: Annotated[str, Form(max_length=64)] = "",
    factors: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """(Re-)grading from the form."""

    def work() -> str:
        a = svc.assess_risk(
            session,
            actor=actor_of(principal),
            pregnancy_id=pregnancy_id,
            assessed_on=assessed_on,
            colour=colour,
            purple=purple,
            factors=factors,
            case_owner=case_owner or None,
        )
        return f"风险评估：{COLOUR_LABELS[a.colour]}{'＋紫色' if a.purple else ''}"

    return _on_episode(session, principal, pregnancy_id, work)


@router.post("/mch/pregnancies/{pregnancy_id}/follow-ups")
def follow_up_form(
    pregnancy_id: int,
    session: SessionDep,
    principal: Worker,
    followed_on: Annotated[date, Form()],
    method: Annotated[str, Form(max_length=16)] = "clinic",
    note: Annotated[str, Form(max_length=2000)] = "",
    next_due_on: OptDate = None,
) -> Response:
    """专案随访 from the form."""

    def work() -> str:
        f = svc.record_follow_up(
            session,
            actor=actor_of(principal),
            pregnancy_id=pregnancy_id,
            followed_on=followed_on,
            method=method,
            note=note,
            next_due_on=next_due_on,
        )
        return f"已随访，下次随访 {f.next_due_on}"

    return _on_episode(session, principal, pregnancy_id, work)


@router.post("/mch/pregnancies/{pregnancy_id}/delivery")
def delivery_form(
    pregnancy_id: int,
    session: SessionDep,
    principal: Worker,
    delivered_on: Annotated[date, Form()],
    place: Annotated[str, Form(max_length=16)],
    method: Annotated[str, Form(max_length=16)],
    live_births: Annotated[int, Form()],
    stillbirths: Annotated[int, Form()] = 0,
    institution_code: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """分娩 from the form."""

    def work() -> str:
        p = svc.record_delivery(
            session,
            actor=actor_of(principal),
            pregnancy_id=pregnancy_id,
            delivered_on=delivered_on,
            place=place,
            method=method,
            live_births=live_births,
            stillbirths=stillbirths,
            institution_code=institution_code or None,
        )
        return f"已登记分娩（孕 {p.delivery_week} 周，活产 {p.live_births}）"

    return _on_episode(session, principal, pregnancy_id, work)


@router.post("/mch/pregnancies/{pregnancy_id}/postpartum-visits")
def postpartum_form(
    pregnancy_id: int,
    session: SessionDep,
    principal: Worker,
    visit_date: Annotated[date, Form()],
    kind: Annotated[str, Form(max_length=8)] = "visit",
) -> Response:
    """产后访视 / 42 天检查 from the form."""

    def work() -> str:
        v = svc.record_postpartum_visit(
            session,
            actor=actor_of(principal),
            pregnancy_id=pregnancy_id,
            visit_date=visit_date,
            institution_code=institution_for(principal, None),
            kind=kind,
        )
        return (
            "已登记产后 42 天检查"
            if v.kind == "check42"
            else f"已登记第 {v.seq} 次产后访视（产后第 {v.days_after} 天）"
        )

    return _on_episode(session, principal, pregnancy_id, work)


@router.post("/mch/children")
def child_form(
    session: SessionDep,
    principal: Worker,
    local_id: Annotated[str, Form(max_length=64)],
    name: Annotated[str, Form(max_length=64)],
    sex: Annotated[str, Form(max_length=1)],
    birth_date: Annotated[date, Form()],
    registered_on: Annotated[date, Form()],
    mother_id_number: Annotated[str, Form(max_length=18)] = "",
    pregnancy_id: Annotated[int | None, Form()] = None,
    birth_weight_g: Annotated[int | None, Form()] = None,
    birth_certificate_no: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """儿童登记 from the form."""
    made: dict[str, int] = {}

    def work() -> str:
        c = svc.register_child(
            session,
            actor=actor_of(principal),
            institution_code=institution_for(principal, None),
            local_id=local_id,
            name=name,
            sex=sex,
            birth_date=birth_date,
            registered_on=registered_on,
            pregnancy_id=pregnancy_id,
            mother_id_number=mother_id_number or None,
            birth_weight_g=birth_weight_g,
            birth_certificate_no=birth_certificate_no or None,
        )
        made["id"] = c.id
        return "已建立儿童保健档案"

    back = _do(session, "/mch", "/mch", work)
    return _back(f"/mch/children/{made['id']}", "已建立儿童保健档案") if "id" in made else back


@router.post("/mch/children/{child_id}/visits")
def child_visit_form(
    child_id: int,
    session: SessionDep,
    principal: Worker,
    visit_date: Annotated[date, Form()],
    kind: Annotated[str, Form(max_length=8)] = "exam",
    weight_kg: Annotated[float | None, Form()] = None,
    length_cm: Annotated[float | None, Form()] = None,
    head_cm: Annotated[float | None, Form()] = None,
) -> Response:
    """新生儿访视 / 健康检查 from the form."""

    def work() -> str:
        svc.record_child_visit(
            session,
            actor=actor_of(principal),
            child_id=child_id,
            visit_date=visit_date,
            institution_code=institution_for(principal, None),
            kind=kind,
            weight_kg=weight_kg,
            length_cm=length_cm,
            head_cm=head_cm,
        )
        return "已登记新生儿访视" if kind == "newborn" else "已登记健康检查"

    return _on_child(session, principal, child_id, work)


@router.post("/mch/children/{child_id}/link")
def child_link_form(
    child_id: int,
    session: SessionDep,
    principal: Worker,
    id_number: Annotated[str, Form(max_length=18)],
) -> Response:
    """The child's own ID number from the form."""

    def work() -> str:
        svc.link_child(session, actor=actor_of(principal), child_id=child_id, id_number=id_number)
        return "已关联儿童本人身份证号码"

    return _on_child(session, principal, child_id, work)
