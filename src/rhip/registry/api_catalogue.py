"""JSON API for the dataset catalogue, the code systems and the citizen-ID check (all public, read-only)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from rhip.registry import catalogue, codes, icd10, idnumber
from rhip.security.deps import public

router = APIRouter()

# ---------------------------------------------------------------------------------------------
# Response models
# ---------------------------------------------------------------------------------------------


class FieldRead(BaseModel):
    """One column of an upload table."""

    name: str
    label: str
    type: str
    type_label: str
    required: bool
    code_system: str | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""


class LinkRead(BaseModel):
    """A referential link from this table's fields to another table's business key."""

    fields: list[str]
    dataset: str
    target_fields: list[str]


class DatasetSummary(BaseModel):
    """A dataset without its fields."""

    name: str
    label: str
    category: str
    category_label: str
    realtime: bool
    business_key: list[str]
    event_time: str | None
    cda_document: str | None
    description: str
    field_count: int


class DatasetRead(DatasetSummary):
    """A dataset with its fields and links."""

    fields: list[FieldRead]
    links: list[LinkRead]


class CodeSystemSummary(BaseModel):
    """A code system without its codes."""

    id: str
    name: str
    standard: str
    description: str
    external: bool
    size: int


class CodeRead(BaseModel):
    """One code of a code system (ICD-10 codes also carry the English name and chapter)."""

    code: str
    display: str
    name_en: str | None = None
    chapter: str | None = None


class CodeSystemRead(CodeSystemSummary):
    """A code system with one page of its codes (filtered by q when given)."""

    q: str | None = None
    total: int
    offset: int
    limit: int
    codes: list[CodeRead]


class IdIssue(BaseModel):
    """One rule an ID number broke (error) or raised (warning)."""

    rule: str
    message: str


class IdCheckRead(BaseModel):
    """The outcome of validating a citizen ID number (GB 11643)."""

    number: str
    ok: bool
    normalized: str | None
    errors: list[IdIssue]
    warnings: list[IdIssue]
    birth_date: date | None
    sex: str | None
    sex_display: str | None
    area_code: str | None
    area_name: str | None


# ---------------------------------------------------------------------------------------------
# Mapping
# ---------------------------------------------------------------------------------------------


def field_read(f: catalogue.Field) -> FieldRead:
    """The API view of a field."""
    return FieldRead(
        name=f.name,
        label=f.label,
        type=f.type,
        type_label=catalogue.TYPE_LABELS[f.type],
        required=f.required,
        code_system=f.code_system,
        max_length=f.max_length,
        minimum=f.minimum,
        maximum=f.maximum,
        description=f.description,
    )


def dataset_summary(d: catalogue.Dataset) -> DatasetSummary:
    """The API view of a dataset, without fields."""
    return DatasetSummary(
        name=d.name,
        label=d.label,
        category=d.category,
        category_label=catalogue.CATEGORY_LABELS[d.category],
        realtime=d.realtime,
        business_key=list(d.business_key),
        event_time=d.event_time,
        cda_document=d.cda_document,
        description=d.description,
        field_count=len(d.fields),
    )


def dataset_read(d: catalogue.Dataset) -> DatasetRead:
    """The API view of a dataset, with fields and links."""
    return DatasetRead(
        **dataset_summary(d).model_dump(),
        fields=[field_read(f) for f in d.fields],
        links=[
            LinkRead(fields=list(x.fields), dataset=x.dataset, target_fields=list(x.target_fields))
            for x in d.links
        ],
    )


def code_system_summary(cs: codes.CodeSystem) -> CodeSystemSummary:
    """The API view of a code system, without codes."""
    size = len(codes.codes_of(cs.id)) if cs.external else len(cs.codes)
    return CodeSystemSummary(
        id=cs.id,
        name=cs.name,
        standard=cs.standard,
        description=cs.description,
        external=cs.external,
        size=size,
    )


def code_page(system_id: str, q: str | None, offset: int, limit: int) -> CodeSystemRead:
    """One page of a code system's codes, filtered by q (code prefix or a substring of the display)."""
    cs = codes.get_code_system(system_id)
    needle = (q or "").strip()
    items: list[CodeRead]
    if system_id == "icd10":
        total, found = icd10.search_icd10(needle, offset=offset, limit=limit)
        items = [CodeRead(code=c.code, display=c.name, name_en=c.name_en, chapter=c.chapter) for c in found]
    else:
        pairs = list(codes.codes_of(system_id).items())
        if needle:
            up = needle.upper()
            pairs = [(k, v) for k, v in pairs if k.upper().startswith(up) or needle in v]
        total = len(pairs)
        items = [CodeRead(code=k, display=v) for k, v in pairs[offset : offset + limit]]
    return CodeSystemRead(
        **code_system_summary(cs).model_dump(),
        q=needle or None,
        total=total,
        offset=offset,
        limit=limit,
        codes=items,
    )


def id_check_read(result: idnumber.IdCheck) -> IdCheckRead:
    """The API view of an IdCheck."""
    return IdCheckRead(
        number=result.number,
        ok=result.ok,
        normalized=result.normalized,
        errors=[IdIssue(rule=r, message=m) for r, m in result.errors],
        warnings=[IdIssue(rule=r, message=m) for r, m in result.warnings],
        birth_date=result.birth_date,
        sex=result.sex,
        sex_display=idnumber.SEX.get(result.sex) if result.sex else None,
        area_code=result.area_code,
        area_name=result.area_name,
    )


# ---------------------------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------------------------


@router.get(
    "/datasets",
    response_model=list[DatasetSummary],
    dependencies=[Depends(public())],
    summary="数据集目录",
)
def list_datasets(
    realtime: Annotated[bool | None, Query(description="true 只列实时数据表单，false 只列定时上传表")] = None,
    category: Annotated[str | None, Query(description="medical 或 public_health")] = None,
) -> list[DatasetSummary]:
    """The catalogue's datasets, optionally only the real-time forms or one category."""
    items = catalogue.datasets()
    if realtime is not None:
        items = [d for d in items if d.realtime == realtime]
    if category:
        items = [d for d in items if d.category == category]
    return [dataset_summary(d) for d in items]


@router.get(
    "/datasets/{name}",
    response_model=DatasetRead,
    dependencies=[Depends(public())],
    summary="数据集字段定义",
)
def get_dataset(name: str) -> DatasetRead:
    """One dataset with its fields, business key, links and code bindings."""
    return dataset_read(catalogue.get(name))


@router.get(
    "/codesystems",
    response_model=list[CodeSystemSummary],
    dependencies=[Depends(public())],
    summary="代码系统列表",
)
def list_code_systems() -> list[CodeSystemSummary]:
    """Every code system the catalogue binds."""
    return [code_system_summary(cs) for cs in codes.code_systems().values()]


@router.get(
    "/codesystems/{system_id}",
    response_model=CodeSystemRead,
    dependencies=[Depends(public())],
    summary="代码系统的代码（可检索、分页）",
)
def get_code_system(
    system_id: str,
    q: Annotated[
        str | None, Query(max_length=50, description="代码前缀或中文名称（ICD-10 也可英文名）")
    ] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CodeSystemRead:
    """The codes of one system, searched by q and paginated (ICD-10 has several hundred)."""
    return code_page(system_id, q, offset, limit)


@router.get(
    "/id-check",
    response_model=IdCheckRead,
    dependencies=[Depends(public())],
    summary="居民身份证号码校验",
)
def id_check(
    number: Annotated[str, Query(min_length=1, max_length=40, description="18 位或 15 位身份证号码")],
    birth_date: Annotated[date | None, Query(description="登记的出生日期，用于一致性校验")] = None,
    sex: Annotated[str | None, Query(max_length=1, description="登记的性别代码（GB/T 2261.1）")] = None,
) -> IdCheckRead:
    """Validate a citizen ID number: check character, birth date, sex, area code (soft)."""
    return id_check_read(idnumber.validate_id(number, birth_date=birth_date, sex=sex))
