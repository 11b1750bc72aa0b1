"""MCH page forms (Chinese): 建册, 儿童登记 and the visit, grading, follow-up, delivery, postpartum and link
forms. Each posts to the same service as the JSON API after the caller's district is checked (403 outside
it); a refused form comes back to its page with the rule's message.

The forms are a table (`FORMS`): where each posts, its fields, the service call, whose record it writes
and what it says when done; one route factory makes every route from it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from rhip.errors import RhipError
from rhip.mch import service as svc
from rhip.mch.api import WORKERS, actor_of, child_for, institution_for, pregnancy_for
from rhip.mch.models import COLOUR_LABELS, VISIT_LABELS
from rhip.security.deps import SessionDep, require
from rhip.security.service import Principal

router = APIRouter(include_in_schema=False)
Worker = Annotated[Principal, Depends(require(*WORKERS))]


def _text() -> Any:
    """A free-text note or the risk factors."""
    return Field("", max_length=2000)


# ------------------------------------------------------------------ the fields of each form
# An empty field is its default (FastAPI reads "" in a form as absent), so optional text is `str | None`.


class PregnancyForm(BaseModel):
    """建册."""

    local_id: str = Field(max_length=64)
    id_number: str = Field(max_length=18)
    name: str = Field(max_length=64)
    registered_on: date
    gestational_week: int
    colour: str | None = Field(None, max_length=8)
    purple: bool = False
    case_owner: str | None = Field(None, max_length=64)
    factors: str = _text()


class VisitForm(BaseModel):
    """初诊/复诊."""

    visit_date: date
    systolic: int | None = None
    diastolic: int | None = None
    weight_kg: float | None = None
    haemoglobin: int | None = None
    note: str = _text()


class AssessmentForm(BaseModel):
    """(Re-)grading."""

    assessed_on: date
    colour: str = Field(max_length=8)
    purple: bool = False
    case_owner: str | None = Field(None, max_length=64)
    factors: str = _text()


class FollowUpForm(BaseModel):
    """专案随访."""

    followed_on: date
    method: str = Field("clinic", max_length=16)
    note: str = _text()
    next_due_on: date | None = None


class DeliveryForm(BaseModel):
    """分娩 (the institution delivered at may be another than the caller's)."""

    delivered_on: date
    place: str = Field(max_length=16)
    method: str = Field(max_length=16)
    live_births: int
    stillbirths: int = 0
    institution_code: str | None = Field(None, max_length=32)


class PostpartumForm(BaseModel):
    """产后访视 / 42 天检查."""

    visit_date: date
    kind: str = Field("visit", max_length=8)


class ChildForm(BaseModel):
    """儿童登记."""

    local_id: str = Field(max_length=64)
    name: str = Field(max_length=64)
    sex: str = Field(max_length=1)
    birth_date: date
    registered_on: date
    mother_id_number: str | None = Field(None, max_length=18)
    pregnancy_id: int | None = None
    birth_weight_g: int | None = None
    birth_certificate_no: str | None = Field(None, max_length=16)


class ChildVisitForm(BaseModel):
    """新生儿访视 / 健康检查."""

    visit_date: date
    kind: str = Field("exam", max_length=8)
    weight_kg: float | None = None
    length_cm: float | None = None
    head_cm: float | None = None


class ChildLinkForm(BaseModel):
    """The child's own ID number."""

    id_number: str = Field(max_length=18)


# ------------------------------------------------------------------ the table


@dataclass(frozen=True)
class PageForm:
    """One page form: where it posts, its fields, the service call and what it says when done."""

    path: str
    fields: type[BaseModel]
    record: Callable[..., Any]  # the service function (the JSON API's)
    said: Callable[[Any, Any], str]  # (what the service returned, the form) → the message
    on: str | None = None  # "pregnancy" | "child": the path names that record, checked for the district
    own_institution: bool = True  # the caller records for their own institution (an admin: their code)
    opens: str | None = None  # a new record's page, "{id}" filled in; its message is `said`'s


def _postpartum_said(v: Any, _f: Any) -> str:
    if v.kind == "check42":
        return "已登记产后 42 天检查"
    return f"已登记第 {v.seq} 次产后访视（产后第 {v.days_after} 天）"


FORMS: tuple[PageForm, ...] = (
    PageForm(
        "/mch/pregnancies",
        PregnancyForm,
        svc.register_pregnancy,
        lambda _p, _f: "已建册",
        opens="/mch/pregnancies/{id}",
    ),
    PageForm(
        "/mch/pregnancies/{pregnancy_id}/visits",
        VisitForm,
        svc.record_antenatal_visit,
        lambda v, _f: f"已登记{VISIT_LABELS[v.kind]}（孕 {v.gestational_week} 周）",
        on="pregnancy",
    ),
    PageForm(
        "/mch/pregnancies/{pregnancy_id}/assessments",
        AssessmentForm,
        svc.assess_risk,
        lambda a, _f: f"风险评估：{COLOUR_LABELS[a.colour]}{'＋紫色' if a.purple else ''}",
        on="pregnancy",
        own_institution=False,
    ),
    PageForm(
        "/mch/pregnancies/{pregnancy_id}/follow-ups",
        FollowUpForm,
        svc.record_follow_up,
        lambda f, _f: f"已随访，下次随访 {f.next_due_on}",
        on="pregnancy",
        own_institution=False,
    ),
    PageForm(
        "/mch/pregnancies/{pregnancy_id}/delivery",
        DeliveryForm,
        svc.record_delivery,
        lambda p, _f: f"已登记分娩（孕 {p.delivery_week} 周，活产 {p.live_births}）",
        on="pregnancy",
        own_institution=False,
    ),
    PageForm(
        "/mch/pregnancies/{pregnancy_id}/postpartum-visits",
        PostpartumForm,
        svc.record_postpartum_visit,
        _postpartum_said,
        on="pregnancy",
    ),
    PageForm(
        "/mch/children",
        ChildForm,
        svc.register_child,
        lambda _c, _f: "已建立儿童保健档案",
        opens="/mch/children/{id}",
    ),
    PageForm(
        "/mch/children/{child_id}/visits",
        ChildVisitForm,
        svc.record_child_visit,
        lambda _v, f: "已登记新生儿访视" if f.kind == "newborn" else "已登记健康检查",
        on="child",
    ),
    PageForm(
        "/mch/children/{child_id}/link",
        ChildLinkForm,
        svc.link_child,
        lambda _c, _f: "已关联儿童本人身份证号码",
        on="child",
        own_institution=False,
    ),
)

# the record a path names: its path parameter, the check that answers 403 outside the district, its page
RECORDS: dict[str, tuple[str, Callable[[Session, Principal, int], Any], str]] = {
    "pregnancy": ("pregnancy_id", pregnancy_for, "/mch/pregnancies/{id}"),
    "child": ("child_id", child_for, "/mch/children/{id}"),
}


# ------------------------------------------------------------------ one handler for every form


def _back(url: str, msg: str) -> RedirectResponse:
    sep = "&" if "?" in url else "?"
    return RedirectResponse(f"{url}{sep}msg={quote(msg)}", status_code=303)


def submit(
    form: PageForm, session: Session, principal: Principal, body: BaseModel, ids: dict[str, int]
) -> Response:
    """Post one form: the district check (403 outside it), then the service call in one transaction, on to
    the record's page with the form's message, or back refused with the rule's."""
    page = "/mch"
    if form.on is not None:
        key, check, page_of = RECORDS[form.on]
        with session.begin():
            check(session, principal, ids[key])
        page = page_of.format(id=ids[key])
    try:
        with session.begin():
            extra = {"institution_code": institution_for(principal, None)} if form.own_institution else {}
            made = form.record(session, actor=actor_of(principal), **ids, **body.model_dump(), **extra)
            msg = form.said(made, body)
    except RhipError as exc:
        return _back(page, exc.detail)
    return _back(form.opens.format(id=made.id) if form.opens else page, msg)


def _route(form: PageForm) -> None:
    """Add the form's POST route: the path's record id, the session, a worker and the form's fields."""
    key = RECORDS[form.on][0] if form.on else None

    def endpoint(session: Session, principal: Principal, body: BaseModel, **ids: int) -> Response:
        return submit(form, session, principal, body, ids)

    kw = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter(key, kw, annotation=int)] if key else []
    params += [
        inspect.Parameter("session", kw, annotation=SessionDep),
        inspect.Parameter("principal", kw, annotation=Worker),
        inspect.Parameter("body", kw, annotation=Annotated[form.fields, Form()]),
    ]
    # FastAPI reads the parameters from the signature: each form's own fields and path parameter
    endpoint.__signature__ = inspect.Signature(params, return_annotation=Response)  # type: ignore[attr-defined]
    endpoint.__doc__ = f"{form.fields.__doc__} from the form."
    name = form.fields.__name__.removesuffix("Form").lower()
    router.add_api_route(form.path, endpoint, methods=["POST"], name=f"mch_form_{name}")


for _form in FORMS:
    _route(_form)
