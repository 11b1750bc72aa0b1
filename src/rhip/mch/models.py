"""MCH tables: pregnancy episodes with their antenatal visits, risk assessments, case follow-ups and
postpartum visits; children with their newborn visits and health examinations.

Derived values a figure needs (gestational week of a visit, days after delivery, a child's age in days) are
stored when the row is written, so the indicators are plain counts over indexed columns.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from rhip.clock import now
from rhip.db.base import Base, UtcDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")
PREGNANCY_FK = "mch_pregnancies.id"

# the five colours of 孕产妇妊娠风险评估与管理工作规范 (2017); purple is a flag that combines with a colour
GREEN, YELLOW, ORANGE, RED = "green", "yellow", "orange", "red"
COLOURS = (GREEN, YELLOW, ORANGE, RED)
COLOUR_LABELS = {GREEN: "绿色", YELLOW: "黄色", ORANGE: "橙色", RED: "红色", "purple": "紫色"}
COLOUR_MEANING = {
    GREEN: "低风险",
    YELLOW: "一般风险",
    ORANGE: "较高风险",
    RED: "高风险",
    "purple": "传染性疾病",
}
# pregnancy states
ACTIVE, DELIVERED, TERMINATED, CLOSED = "active", "delivered", "terminated", "closed"
STATUS_LABELS = {ACTIVE: "孕期管理中", DELIVERED: "已分娩", TERMINATED: "妊娠终止", CLOSED: "已结案"}
FIRST, RETURN = "first", "return"
VISIT_LABELS = {FIRST: "初诊", RETURN: "复诊"}
METHODS = {"vaginal": "自然分娩", "assisted": "阴道助产", "caesarean": "剖宫产"}
PLACES = {"institution": "医疗机构", "home": "家中", "en_route": "途中", "other": "其他"}
OUTCOMES = {"live": "活产", "stillbirth": "死胎死产", "mixed": "活产及死胎死产"}
PP_VISIT, PP_CHECK42 = "visit", "check42"
NEWBORN, EXAM = "newborn", "exam"


class Pregnancy(Base):
    """One pregnancy episode (孕产妇保健册), from 建册 to the 42-day check."""

    __tablename__ = "mch_pregnancies"
    __table_args__ = (
        UniqueConstraint("institution_code", "local_id"),
        Index("ix_mch_pregnancies_delivered", "delivered_on", "district_code", "institution_code"),
        # covers the indicators' maternal query: read in group order, no table lookups, no sort
        Index(
            "ix_mch_pregnancies_units",
            "district_code",
            "institution_code",
            "delivered_on",
            "live_births",
            "delivery_place",
            "registration_week",
            "first_visit_week",
            "anc_visits",
            "pp_visits_28",
        ),
        Index("ix_mch_pregnancies_death", "maternal_death_on"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    institution_code: Mapped[str] = mapped_column(String(32))  # managing institution (moves on transfer)
    district_code: Mapped[str] = mapped_column(String(6), index=True)  # the managing district
    registered_institution_code: Mapped[str] = mapped_column(String(32))
    registered_district_code: Mapped[str] = mapped_column(String(6))
    local_id: Mapped[str] = mapped_column(String(64))  # 保健册编号
    id_number: Mapped[str] = mapped_column(String(18), index=True)
    person_id: Mapped[str | None] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    birth_date: Mapped[date] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(32))
    registered_on: Mapped[date] = mapped_column(Date, index=True)
    registration_week: Mapped[int] = mapped_column(SmallInteger)
    lmp: Mapped[date] = mapped_column(Date)  # 末次月经
    edd: Mapped[date] = mapped_column(Date)  # 预产期
    gravidity: Mapped[int] = mapped_column(SmallInteger, default=1)
    parity: Mapped[int] = mapped_column(SmallInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    colour: Mapped[str | None] = mapped_column(String(8))
    purple: Mapped[bool] = mapped_column(Boolean, default=False)
    case_owner: Mapped[str | None] = mapped_column(String(64))  # 专案管理责任人
    case_opened_on: Mapped[date | None] = mapped_column(Date)
    next_follow_up_on: Mapped[date | None] = mapped_column(Date, index=True)
    delivered_on: Mapped[date | None] = mapped_column(Date)
    delivery_week: Mapped[int | None] = mapped_column(SmallInteger)
    delivery_place: Mapped[str | None] = mapped_column(String(16))
    delivery_institution_code: Mapped[str | None] = mapped_column(String(32))
    delivery_district_code: Mapped[str | None] = mapped_column(String(6))
    delivery_method: Mapped[str | None] = mapped_column(String(16))
    live_births: Mapped[int | None] = mapped_column(SmallInteger)
    stillbirths: Mapped[int | None] = mapped_column(SmallInteger)
    outcome: Mapped[str | None] = mapped_column(String(16))
    ended_on: Mapped[date | None] = mapped_column(Date)  # termination before 20 weeks
    maternal_death_on: Mapped[date | None] = mapped_column(Date)
    # rollups kept by the services at each write, so the indicators read one table (indicators.recount checks)
    anc_visits: Mapped[int] = mapped_column(SmallInteger, default=0)
    first_visit_week: Mapped[int | None] = mapped_column(SmallInteger)
    pp_visits_28: Mapped[int] = mapped_column(SmallInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, onupdate=now)


class AntenatalVisit(Base):
    """One antenatal examination (初诊 or 复诊)."""

    __tablename__ = "mch_antenatal_visits"
    __table_args__ = (Index("ix_mch_antenatal_visits_pregnancy", "pregnancy_id", "kind", "gestational_week"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pregnancy_id: Mapped[int] = mapped_column(ForeignKey("mch_pregnancies.id", ondelete="CASCADE"))
    visit_date: Mapped[date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(8))
    gestational_week: Mapped[int] = mapped_column(SmallInteger)
    institution_code: Mapped[str] = mapped_column(String(32))
    district_code: Mapped[str] = mapped_column(String(6))
    systolic: Mapped[int | None] = mapped_column(SmallInteger)
    diastolic: Mapped[int | None] = mapped_column(SmallInteger)
    weight_kg: Mapped[float | None] = mapped_column(Numeric(5, 1))
    haemoglobin: Mapped[int | None] = mapped_column(SmallInteger)  # g/L
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(128))


class RiskAssessment(Base):
    """One (re-)grading of a pregnancy's risk colour; the previous colour is kept (the grading's audit)."""

    __tablename__ = "mch_risk_assessments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pregnancy_id: Mapped[int] = mapped_column(ForeignKey(PREGNANCY_FK, ondelete="CASCADE"), index=True)
    assessed_on: Mapped[date] = mapped_column(Date)
    colour: Mapped[str] = mapped_column(String(8))
    purple: Mapped[bool] = mapped_column(Boolean, default=False)
    previous_colour: Mapped[str | None] = mapped_column(String(8))
    previous_purple: Mapped[bool | None] = mapped_column(Boolean)
    factors: Mapped[str] = mapped_column(Text, default="")
    assessed_by: Mapped[str] = mapped_column(String(128))
    institution_code: Mapped[str] = mapped_column(String(32))
    reported: Mapped[bool] = mapped_column(Boolean, default=False)  # orange/red are reported (上报)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class CaseFollowUp(Base):
    """A follow-up of a case under 专案管理 (orange, red or purple)."""

    __tablename__ = "mch_case_follow_ups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pregnancy_id: Mapped[int] = mapped_column(ForeignKey(PREGNANCY_FK, ondelete="CASCADE"), index=True)
    followed_on: Mapped[date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(16))  # phone / clinic / home
    note: Mapped[str] = mapped_column(Text, default="")
    next_due_on: Mapped[date | None] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(128))


class PostpartumVisit(Base):
    """产后访视 (first, second, ...) or the 42-day check (产后 42 天健康检查)."""

    __tablename__ = "mch_postpartum_visits"
    __table_args__ = (Index("ix_mch_postpartum_visits_pregnancy", "pregnancy_id", "kind", "days_after"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pregnancy_id: Mapped[int] = mapped_column(ForeignKey("mch_pregnancies.id", ondelete="CASCADE"))
    visit_date: Mapped[date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(8))
    seq: Mapped[int] = mapped_column(SmallInteger)
    days_after: Mapped[int] = mapped_column(SmallInteger)
    institution_code: Mapped[str] = mapped_column(String(32))
    district_code: Mapped[str] = mapped_column(String(6))
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(128))


class Child(Base):
    """A child's health record (儿童保健档案), from birth to 7 years."""

    __tablename__ = "mch_children"
    __table_args__ = (
        UniqueConstraint("institution_code", "local_id"),
        Index("ix_mch_children_birth", "birth_date", "district_code", "institution_code"),
        # covers the indicators' children query: read in group order, no table lookups, no sort
        Index(
            "ix_mch_children_units",
            "institution_code",
            "district_code",
            "birth_date",
            "died_on",
            "death_age_months",
            "newborn_visit_age",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    institution_code: Mapped[str] = mapped_column(String(32))
    district_code: Mapped[str] = mapped_column(String(6), index=True)
    local_id: Mapped[str] = mapped_column(String(64))
    pregnancy_id: Mapped[int | None] = mapped_column(ForeignKey("mch_pregnancies.id"), index=True)
    birth_order: Mapped[int] = mapped_column(SmallInteger, default=1)
    mother_id_number: Mapped[str] = mapped_column(String(18), index=True)
    id_number: Mapped[str | None] = mapped_column(String(18), index=True)  # the child's own, once issued
    person_id: Mapped[str | None] = mapped_column(String(64), index=True)
    linked_on: Mapped[date | None] = mapped_column(Date)
    birth_certificate_no: Mapped[str | None] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    sex: Mapped[str] = mapped_column(String(1))
    birth_date: Mapped[date] = mapped_column(Date)
    birth_weight_g: Mapped[int | None] = mapped_column(SmallInteger)
    birth_week: Mapped[int | None] = mapped_column(SmallInteger)
    registered_on: Mapped[date] = mapped_column(Date, index=True)
    died_on: Mapped[date | None] = mapped_column(Date)
    death_age_months: Mapped[int | None] = mapped_column(SmallInteger)
    newborn_visit_age: Mapped[int | None] = mapped_column(SmallInteger)  # rollup: first 新生儿访视, days
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class ChildVisit(Base):
    """A 新生儿访视 or a health examination (体格检查) with its growth measurements."""

    __tablename__ = "mch_child_visits"
    __table_args__ = (Index("ix_mch_child_visits_child", "child_id", "visit_date", "kind", "age_days"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("mch_children.id", ondelete="CASCADE"))
    visit_date: Mapped[date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(8))
    age_days: Mapped[int] = mapped_column(Integer)
    institution_code: Mapped[str] = mapped_column(String(32))
    district_code: Mapped[str] = mapped_column(String(6))
    weight_kg: Mapped[float | None] = mapped_column(Numeric(5, 2))
    length_cm: Mapped[float | None] = mapped_column(Numeric(5, 1))
    head_cm: Mapped[float | None] = mapped_column(Numeric(4, 1))
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(128))


class ChildYear(Base):
    """Rollup: a child's health examinations in one report year, with what the indicators group and filter by
    (copied from the child when the row is made; the death date kept by `record_child_death`), so the
    examination counts are read without a join."""

    __tablename__ = "mch_child_years"
    __table_args__ = (
        # covers the examination query: one year's rows in group order, no table lookups, no sort
        Index(
            "ix_mch_child_years_units",
            "year",
            "institution_code",
            "district_code",
            "birth_date",
            "died_on",
            "exams",
            "expected",
        ),
    )

    year: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("mch_children.id", ondelete="CASCADE"), primary_key=True)
    exams: Mapped[int] = mapped_column(Integer, default=0)
    # examinations due in the year by the under-3 schedule (`rules.expected_exams`), fixed by the birth date
    expected: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    district_code: Mapped[str] = mapped_column(String(6))
    institution_code: Mapped[str] = mapped_column(String(32))
    birth_date: Mapped[date] = mapped_column(Date)
    died_on: Mapped[date | None] = mapped_column(Date)


class Transfer(Base):
    """A pregnancy moved to another district or institution (转出/转入)."""

    __tablename__ = "mch_transfers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pregnancy_id: Mapped[int] = mapped_column(ForeignKey(PREGNANCY_FK, ondelete="CASCADE"), index=True)
    moved_on: Mapped[date] = mapped_column(Date)
    from_institution_code: Mapped[str] = mapped_column(String(32))
    from_district_code: Mapped[str] = mapped_column(String(6))
    to_institution_code: Mapped[str] = mapped_column(String(32))
    to_district_code: Mapped[str] = mapped_column(String(6))
    recorded_by: Mapped[str] = mapped_column(String(128))


class Reminder(Base):
    """A follow-up reminder for a case's responsible doctor (written once per case, kind and due date)."""

    __tablename__ = "mch_reminders"
    __table_args__ = (UniqueConstraint("pregnancy_id", "kind", "due_on"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pregnancy_id: Mapped[int] = mapped_column(ForeignKey(PREGNANCY_FK, ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # due / overdue
    due_on: Mapped[date] = mapped_column(Date)
    owner: Mapped[str | None] = mapped_column(String(64))
    institution_code: Mapped[str] = mapped_column(String(32), index=True)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class UploadKey(Base):
    """Which registry row an intake record (institution + catalogue table + business key) became, so a
    correction (修改标志 2) replaces it and a revocation (3) removes it (`uploads.py`)."""

    __tablename__ = "mch_upload_keys"
    __table_args__ = (Index("ix_mch_upload_keys_target", "table_name", "target_id"),)

    institution_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    table_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    business_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    target_id: Mapped[int] = mapped_column(BigId)
    batch_id: Mapped[str] = mapped_column(String(40))
