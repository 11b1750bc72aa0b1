"""Quality API models."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class DeclarationUpdate(BaseModel):
    tables: list[str] = Field(description="Catalogue tables the institution's systems produce")


class DeclarationRead(BaseModel):
    institution_code: str
    tables: list[str]
    declared: int | None
    required: int


class UnitFiguresRead(BaseModel):
    code: str
    name: str
    kind: str
    uploads: int
    upload_days: int
    active_days: int
    forms: int
    forms_of: int
    visits: int
    visit_revenue_thousand: float
    visit_compliance: float | None
    visit_upload_rate: float | None
    discharges: int
    inpatient_revenue_thousand: float
    discharge_compliance: float | None
    discharge_upload_rate: float | None
    declared: int | None
    required: int
    tables_uploaded: int
    cda: int
    records_basic: int
    records_hypertension: int
    records_diabetes: int
    score: float | None = None


class MonthFiguresRead(BaseModel):
    month: str
    cumulative: int
    units: list[UnitFiguresRead]


class CommentRead(BaseModel):
    id: int
    author: str
    body: str
    status_from: str | None
    status_to: str | None
    created_at: datetime


class ItemCreate(BaseModel):
    institution_code: str
    title: str
    dimension: str = "other"
    detail: str = ""
    month: str | None = None
    owner: str | None = None
    due_on: date | None = None


class ItemUpdate(BaseModel):
    owner: str | None = None
    due_on: date | None = None


class ItemMove(BaseModel):
    to: str = Field(description="rectifying, verified, closed")
    comment: str = ""


class CommentCreate(BaseModel):
    body: str


class ItemRead(BaseModel):
    id: int
    institution_code: str
    month: str | None
    dimension: str
    title: str
    detail: str
    status: str
    status_label: str
    owner: str | None
    due_on: date | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    comments: list[CommentRead] = []


class ItemPage(BaseModel):
    total: int
    items: list[ItemRead]


class InspectionCreate(BaseModel):
    institution_code: str
    scheduled_on: date
    note: str = ""


class InspectionRead(BaseModel):
    id: int
    institution_code: str
    scheduled_on: date
    note: str
    done: bool


class ImportResult(BaseModel):
    institutions: int
