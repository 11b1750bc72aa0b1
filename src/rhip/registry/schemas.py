"""Pydantic response models of the registry API."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from rhip.registry import data, directories
from rhip.registry.models import (
    Channel,
    Department,
    District,
    HotlineCategory,
    Institution,
    MetroCity,
    TelemedCentre,
)


class InstitutionRead(BaseModel):
    """One institution as the API shows it."""

    code: str = Field(description="机构代码")
    name: str = Field(description="机构名称（现名）")
    aliases: list[str] = Field(description="其他名称（曾用名、简称、简报中的写法）")
    level: str = Field(description="等级：三级/二级/一级/社区/未定级")
    ownership: str = Field(description="隶属：省属/市属/区属/部队/民营/其他")
    kind: str = Field(description="类别：hospital/mch/community_health_centre/district_platform/other")
    kind_label: str
    district_code: str | None
    district: str | None = Field(description="所在区（中文名）")
    city: str
    tertiary: bool
    parent_code: str | None
    upload_route: str = Field(description="数据采集接入方式：direct/district/parent/none")
    upload_route_label: str
    active: bool
    joined_on: date | None
    left_on: date | None
    note: str | None

    @classmethod
    def of(cls, inst: Institution) -> InstitutionRead:
        """Build from a database row."""
        return cls(
            code=inst.code,
            name=inst.name,
            aliases=[a.alias for a in inst.aliases],
            level=inst.level,
            ownership=inst.ownership,
            kind=inst.kind,
            kind_label=data.KIND_LABELS.get(inst.kind, inst.kind),
            district_code=inst.district_code,
            district=inst.district.name if inst.district else None,
            city=inst.city,
            tertiary=inst.tertiary,
            parent_code=inst.parent_code,
            upload_route=inst.upload_route,
            upload_route_label=data.UPLOAD_ROUTE_LABELS.get(inst.upload_route, inst.upload_route),
            active=inst.active,
            joined_on=inst.joined_on,
            left_on=inst.left_on,
            note=inst.note,
        )


class InstitutionPage(BaseModel):
    """A page of institutions."""

    items: list[InstitutionRead]
    total: int
    limit: int
    offset: int


class DistrictRead(BaseModel):
    """A district with the number of its institutions."""

    code: str
    name: str
    short_name: str
    platform_code: str
    synthetic_code: bool = Field(description="江北新区没有 GB/T 2260 代码，用合成代码")
    institution_count: int
    hospital_count: int
    mch_count: int
    community_centre_count: int

    @classmethod
    def of(cls, d: District, counts: dict[str, int]) -> DistrictRead:
        """Build from a database row and its counts (see service.district_counts)."""
        return cls(
            code=d.code,
            name=d.name,
            short_name=d.short_name,
            platform_code=d.platform_code,
            synthetic_code=d.synthetic_code,
            institution_count=counts.get("total", 0),
            hospital_count=counts.get("hospital", 0),
            mch_count=counts.get("mch", 0),
            community_centre_count=counts.get("community_health_centre", 0),
        )


class DepartmentRead(BaseModel):
    """A clinical department (诊疗科目)."""

    code: str
    name: str
    parent_code: str | None

    @classmethod
    def of(cls, d: Department) -> DepartmentRead:
        """Build from a database row."""
        return cls(code=d.code, name=d.name, parent_code=d.parent_code)


class ChannelRead(BaseModel):
    """A booking channel."""

    code: str
    name: str
    group: str
    group_label: str
    aliases: list[str]

    @classmethod
    def of(cls, c: Channel) -> ChannelRead:
        """Build from a database row."""
        return cls(
            code=c.code,
            name=c.name,
            group=c.group,
            group_label=directories.CHANNEL_GROUPS.get(c.group, c.group),
            aliases=[a.alias for a in c.aliases],
        )


class HotlineCategoryRead(BaseModel):
    """A 12320 hotline category or work-order source."""

    code: str
    name: str
    kind: str
    kind_label: str
    unit: str
    aliases: list[str]

    @classmethod
    def of(cls, h: HotlineCategory) -> HotlineCategoryRead:
        """Build from a database row."""
        return cls(
            code=h.code,
            name=h.name,
            kind=h.kind,
            kind_label=directories.HOTLINE_KINDS.get(h.kind, h.kind),
            unit=h.unit,
            aliases=[str(a) for a in h.aliases],
        )


class TelemedCentreRead(BaseModel):
    """A telemedicine centre and its hub hospital."""

    code: str
    name: str
    centre_name: str
    hub_code: str
    hub_name: str
    started_year: int
    aliases: list[str]

    @classmethod
    def of(cls, t: TelemedCentre) -> TelemedCentreRead:
        """Build from a database row."""
        return cls(
            code=t.code,
            name=t.name,
            centre_name=t.centre_name,
            hub_code=t.hub_code,
            hub_name=t.hub.name,
            started_year=t.started_year,
            aliases=[str(a) for a in t.aliases],
        )


class MetroCityRead(BaseModel):
    """A metropolitan-area city."""

    code: str
    name: str
    province: str
    scope: str | None
    aliases: list[str]
    institution_count: int

    @classmethod
    def of(cls, c: MetroCity, institution_count: int) -> MetroCityRead:
        """Build from a database row."""
        return cls(
            code=c.code,
            name=c.name,
            province=c.province,
            scope=c.scope,
            aliases=[str(a) for a in c.aliases],
            institution_count=institution_count,
        )
