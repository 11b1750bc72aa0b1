"""MCH request and response models (API field names in English; dates ISO 8601)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Colour = Literal["green", "yellow", "orange", "red"]


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PregnancyCreate(BaseModel):
    """建册."""

    institution_code: str | None = Field(None, description="default: the caller's institution")
    local_id: str = Field(min_length=1, max_length=64, description="保健册编号")
    id_number: str = Field(min_length=15, max_length=18)
    name: str = Field(min_length=1, max_length=64)
    registered_on: date
    gestational_week: int
    gestational_days: int = 0
    phone: str | None = Field(None, max_length=32)
    gravidity: int = 1
    parity: int = 0
    colour: Colour | None = None
    purple: bool = False
    factors: str = Field("", max_length=2000)
    case_owner: str | None = Field(None, max_length=64)


class PregnancyRead(_Read):
    """A pregnancy episode (identity masked for roles that need none)."""

    id: int
    institution_code: str
    district_code: str
    registered_institution_code: str
    registered_district_code: str
    local_id: str
    id_number: str | None
    person_id: str | None
    name: str
    registered_on: date
    registration_week: int
    lmp: date
    edd: date
    gravidity: int
    parity: int
    status: str
    colour: str | None
    purple: bool
    case_owner: str | None
    next_follow_up_on: date | None
    delivered_on: date | None
    delivery_week: int | None
    delivery_place: str | None
    delivery_institution_code: str | None
    delivery_method: str | None
    live_births: int | None
    stillbirths: int | None
    outcome: str | None


class PregnancyPage(BaseModel):
    """One page of pregnancy episodes."""

    items: list[PregnancyRead]
    total: int


class AntenatalVisitCreate(BaseModel):
    """初诊/复诊 (kind chosen automatically when absent)."""

    visit_date: date
    institution_code: str | None = None
    kind: Literal["first", "return"] | None = None
    systolic: int | None = None
    diastolic: int | None = None
    weight_kg: float | None = None
    haemoglobin: int | None = None
    note: str = Field("", max_length=2000)


class AntenatalVisitRead(_Read):
    """An antenatal visit."""

    id: int
    visit_date: date
    kind: str
    gestational_week: int
    institution_code: str
    systolic: int | None
    diastolic: int | None
    haemoglobin: int | None


class AssessmentCreate(BaseModel):
    """A (re-)grading."""

    assessed_on: date
    colour: Colour
    purple: bool = False
    factors: str = Field("", max_length=2000)
    case_owner: str | None = Field(None, max_length=64)


class AssessmentRead(_Read):
    """A grading with the colour it replaced."""

    id: int
    assessed_on: date
    colour: str
    purple: bool
    previous_colour: str | None
    previous_purple: bool | None
    factors: str
    assessed_by: str
    reported: bool


class FollowUpCreate(BaseModel):
    """A case follow-up."""

    followed_on: date
    method: Literal["clinic", "phone", "home"] = "clinic"
    note: str = Field("", max_length=2000)
    next_due_on: date | None = None


class FollowUpRead(_Read):
    """A case follow-up."""

    id: int
    followed_on: date
    method: str
    note: str
    next_due_on: date | None
    recorded_by: str


class TransferCreate(BaseModel):
    """转出 to another institution."""

    moved_on: date
    to_institution_code: str


class DeliveryCreate(BaseModel):
    """分娩."""

    delivered_on: date
    place: Literal["institution", "home", "en_route", "other"]
    institution_code: str | None = None
    method: Literal["vaginal", "assisted", "caesarean"]
    live_births: int
    stillbirths: int = 0


class PostpartumCreate(BaseModel):
    """产后访视 or the 42-day check."""

    visit_date: date
    institution_code: str | None = None
    kind: Literal["visit", "check42"] = "visit"
    note: str = Field("", max_length=2000)


class PostpartumRead(_Read):
    """A postpartum visit."""

    id: int
    visit_date: date
    kind: str
    seq: int
    days_after: int
    institution_code: str


class PregnancyDetail(BaseModel):
    """An episode with everything recorded on it."""

    pregnancy: PregnancyRead
    antenatal: list[AntenatalVisitRead]
    assessments: list[AssessmentRead]
    follow_ups: list[FollowUpRead]
    postpartum: list[PostpartumRead]


class ChildCreate(BaseModel):
    """儿童登记 (under the mother's ID number, or from her delivery)."""

    institution_code: str | None = None
    local_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=64)
    sex: Literal["1", "2", "9"]
    birth_date: date
    registered_on: date
    pregnancy_id: int | None = None
    mother_id_number: str | None = Field(None, max_length=18)
    birth_order: int = 1
    birth_weight_g: int | None = None
    birth_week: int | None = None
    birth_certificate_no: str | None = Field(None, max_length=16)


class ChildRead(_Read):
    """A child's record (identities masked for roles that need none)."""

    id: int
    institution_code: str
    district_code: str
    local_id: str
    pregnancy_id: int | None
    mother_id_number: str | None
    id_number: str | None
    person_id: str | None
    linked_on: date | None
    birth_certificate_no: str | None
    name: str
    sex: str
    birth_date: date
    birth_weight_g: int | None
    birth_week: int | None
    registered_on: date
    died_on: date | None


class ChildPage(BaseModel):
    """One page of children."""

    items: list[ChildRead]
    total: int


class ChildLink(BaseModel):
    """The child's own ID number (and EMPI person id when known)."""

    id_number: str = Field(min_length=15, max_length=18)
    person_id: str | None = Field(None, max_length=64)


class ChildVisitCreate(BaseModel):
    """新生儿访视 or a health examination."""

    visit_date: date
    institution_code: str | None = None
    kind: Literal["newborn", "exam"] = "exam"
    weight_kg: float | None = None
    length_cm: float | None = None
    head_cm: float | None = None
    note: str = Field("", max_length=2000)


class ChildVisitRead(_Read):
    """A child's visit with growth measurements."""

    id: int
    visit_date: date
    kind: str
    age_days: int
    institution_code: str
    weight_kg: float | None
    length_cm: float | None
    head_cm: float | None


class ChildDetail(BaseModel):
    """A child with visits and the examinations overdue."""

    child: ChildRead
    visits: list[ChildVisitRead]
    exams_due_months: list[int]


class CaseRead(BaseModel):
    """One line of the high-risk work list."""

    pregnancy_id: int
    name: str
    institution_code: str
    district_code: str
    colour: str | None
    purple: bool
    case_owner: str | None
    due_on: date | None
    overdue_days: int


class EndCreate(BaseModel):
    """妊娠终止 before 20 weeks."""

    ended_on: date


class DeathCreate(BaseModel):
    """A death (孕产妇死亡 or a child's)."""

    died_on: date
