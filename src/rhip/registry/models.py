"""Registry tables: districts, institutions and their aliases, departments, channels, hotline
categories, telemedicine centres, metropolitan-area cities, and the loaded data's hash."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rhip.db.base import Base

BigId = BigInteger().with_variant(Integer(), "sqlite")


class District(Base):
    """One of Nanjing's 12 districts (江北新区 has a synthetic code)."""

    __tablename__ = "districts"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    short_name: Mapped[str] = mapped_column(String(16))
    platform_code: Mapped[str] = mapped_column(String(16))
    synthetic_code: Mapped[bool] = mapped_column(Boolean, default=False)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class MetroCity(Base):
    """A city of the Nanjing metropolitan area other than Nanjing."""

    __tablename__ = "metro_cities"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    province: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str | None] = mapped_column(String(64))
    aliases: Mapped[list[Any]] = mapped_column(JSON, default=list)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class Institution(Base):
    """A hospital, MCH institution, community health centre, district platform or other institution."""

    __tablename__ = "institutions"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    name_key: Mapped[str] = mapped_column(String(128), unique=True)
    level: Mapped[str] = mapped_column(String(8), index=True)
    ownership: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    district_code: Mapped[str | None] = mapped_column(ForeignKey("districts.code"), index=True)
    city: Mapped[str] = mapped_column(String(32))
    tertiary: Mapped[bool] = mapped_column(Boolean, default=False)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("institutions.code"))
    upload_route: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    joined_on: Mapped[date | None] = mapped_column(Date)
    left_on: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(String(255))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    district: Mapped[District | None] = relationship(lazy="joined")
    aliases: Mapped[list[InstitutionAlias]] = relationship(
        lazy="selectin", order_by="InstitutionAlias.id", viewonly=True
    )


class InstitutionAlias(Base):
    """Another spelling of an institution's name; `key` is the normalised form that lookups use."""

    __tablename__ = "institution_aliases"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    institution_code: Mapped[str] = mapped_column(
        ForeignKey("institutions.code", ondelete="CASCADE"), index=True
    )
    alias: Mapped[str] = mapped_column(String(128), unique=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)

    institution: Mapped[Institution] = relationship(viewonly=True)


class Department(Base):
    """A clinical department (诊疗科目) with its official code, e.g. 03.04 心血管内科专业."""

    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class Channel(Base):
    """A booking channel and the statistics column (group) it counts under."""

    __tablename__ = "channels"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    group: Mapped[str] = mapped_column(String(32), index=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    aliases: Mapped[list[ChannelAlias]] = relationship(
        lazy="selectin", order_by="ChannelAlias.id", viewonly=True
    )


class ChannelAlias(Base):
    """Another spelling of a booking channel's name."""

    __tablename__ = "channel_aliases"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel_code: Mapped[str] = mapped_column(ForeignKey("channels.code", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(String(64), unique=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)


class HotlineCategory(Base):
    """A 12320 hotline call category or work-order source."""

    __tablename__ = "hotline_categories"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str] = mapped_column(String(8))
    aliases: Mapped[list[Any]] = mapped_column(JSON, default=list)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class TelemedCentre(Base):
    """One of the five telemedicine centres, run by a business-centre hospital (hub)."""

    __tablename__ = "telemed_centres"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    centre_name: Mapped[str] = mapped_column(String(64))
    hub_code: Mapped[str] = mapped_column(ForeignKey("institutions.code"))
    started_year: Mapped[int] = mapped_column(Integer)
    aliases: Mapped[list[Any]] = mapped_column(JSON, default=list)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    hub: Mapped[Institution] = relationship(lazy="joined", viewonly=True)


class RegistryMeta(Base):
    """Small key/value facts about the loaded registry (the data files' hash)."""

    __tablename__ = "registry_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
