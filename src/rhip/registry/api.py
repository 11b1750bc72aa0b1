"""Registry JSON API (read-only, public), mounted at /api/v1/registry."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from rhip.registry import service
from rhip.registry.schemas import (
    ChannelRead,
    DepartmentRead,
    DistrictRead,
    HotlineCategoryRead,
    InstitutionPage,
    InstitutionRead,
    MetroCityRead,
    TelemedCentreRead,
)
from rhip.security.deps import SessionDep, public

router = APIRouter()

SessionDep = SessionDep
Level = Literal["三级", "二级", "一级", "社区", "未定级"]
Kind = Literal["hospital", "mch", "community_health_centre", "district_platform", "other"]


@router.get("/institutions", response_model=InstitutionPage, dependencies=[Depends(public())])
def list_institutions(
    session: SessionDep,
    q: Annotated[
        str | None, Query(max_length=100, description="机构代码、名称或别名（子串匹配，精确匹配优先）")
    ] = None,
    district: Annotated[str | None, Query(max_length=32, description="行政区代码或名称")] = None,
    level: Annotated[Level | None, Query(description="等级")] = None,
    kind: Annotated[Kind | None, Query(description="类别")] = None,
    city: Annotated[str | None, Query(max_length=32, description="城市（南京市或都市圈城市）")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> InstitutionPage:
    """Institutions, filtered and paginated; `q` finds any spelling used in the bulletins."""
    items, total = service.get_all_institutions(
        session, q=q, district=district, level=level, kind=kind, city=city, limit=limit, offset=offset
    )
    return InstitutionPage(
        items=[InstitutionRead.of(i) for i in items], total=total, limit=limit, offset=offset
    )


@router.get("/institutions/{code}", response_model=InstitutionRead, dependencies=[Depends(public())])
def get_institution(code: str, session: SessionDep) -> InstitutionRead:
    """One institution by its code (404 problem+json when unknown)."""
    return InstitutionRead.of(service.get_institution(session, code=code))


@router.get("/districts", response_model=list[DistrictRead], dependencies=[Depends(public())])
def list_districts(session: SessionDep) -> list[DistrictRead]:
    """The 12 districts with their institution counts."""
    counts = service.district_counts(session)
    return [DistrictRead.of(d, counts.get(d.code, {})) for d in service.get_all_districts(session)]


@router.get("/districts/{code}", response_model=DistrictRead, dependencies=[Depends(public())])
def get_district(code: str, session: SessionDep) -> DistrictRead:
    """One district (by code or Chinese name) with its institution counts."""
    district = service.get_district(session, code)
    return DistrictRead.of(district, service.district_counts(session).get(district.code, {}))


@router.get("/departments", response_model=list[DepartmentRead], dependencies=[Depends(public())])
def list_departments(session: SessionDep) -> list[DepartmentRead]:
    """Clinical departments (诊疗科目) with their codes."""
    return [DepartmentRead.of(d) for d in service.get_all_departments(session)]


@router.get("/channels", response_model=list[ChannelRead], dependencies=[Depends(public())])
def list_channels(session: SessionDep) -> list[ChannelRead]:
    """Booking channels and their statistics groups."""
    return [ChannelRead.of(c) for c in service.get_all_channels(session)]


@router.get("/hotline-categories", response_model=list[HotlineCategoryRead], dependencies=[Depends(public())])
def list_hotline_categories(session: SessionDep) -> list[HotlineCategoryRead]:
    """12320 hotline call categories and work-order sources."""
    return [HotlineCategoryRead.of(h) for h in service.get_all_hotline_categories(session)]


@router.get("/telemed-centres", response_model=list[TelemedCentreRead], dependencies=[Depends(public())])
def list_telemed_centres(session: SessionDep) -> list[TelemedCentreRead]:
    """The five telemedicine centres and their hub hospitals."""
    return [TelemedCentreRead.of(t) for t in service.get_all_telemed_centres(session)]


@router.get("/metro-cities", response_model=list[MetroCityRead], dependencies=[Depends(public())])
def list_metro_cities(session: SessionDep) -> list[MetroCityRead]:
    """The metropolitan-area cities with their registered hospitals' count."""
    counts = service.metro_city_counts(session)
    return [MetroCityRead.of(c, counts.get(c.name, 0)) for c in service.get_all_metro_cities(session)]
