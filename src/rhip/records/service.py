"""The shared health record (健康档案调阅): a person's timeline across institutions, lab and exam reports,
the resident's own measurements. Access is decided and logged by `consent.check` at the entry point;
these functions read what that decision allows. Other domains call this module."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import polars as pl
from sqlalchemy import ColumnElement, Integer, Select, String, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.db.base import UtcDateTime
from rhip.errors import Invalid, NotFound
from rhip.identity import service as identity
from rhip.lake.store import Lake
from rhip.records import consent, store
from rhip.records.consent import Access
from rhip.records.models import RecordEntry
from rhip.security.service import Principal

__all__ = [
    "Access",
    "absorb_batches",
    "add_measurement",
    "check_access",
    "entry",
    "entry_data",
    "person_of_entry",
    "recent",
    "report",
    "reports",
    "timeline",
]

MAX_ITEMS = 2000
RESIDENT = "resident"
REPORTS = ("lab", "exam")  # the kinds of 医检报告


@dataclass(frozen=True)
class Measure:
    """A self-measured value a resident may record: LOINC code, unit and the plausible range."""

    code: str
    label: str
    unit: str
    low: float
    high: float


# LOINC codes of the self-measured values (FHIR vital-signs profile codes where they exist)
MEASURES: dict[str, Measure] = {
    "systolic": Measure("8480-6", "收缩压", "mm[Hg]", 50, 300),
    "diastolic": Measure("8462-4", "舒张压", "mm[Hg]", 30, 200),
    "glucose": Measure("2339-0", "血糖", "mmol/L", 1.0, 40.0),
    "weight": Measure("29463-7", "体重", "kg", 1.0, 400.0),
    "steps": Measure("41950-7", "步数", "/d", 0, 100000),
    "heart_rate": Measure("8867-4", "心率", "/min", 20, 250),
}
LOINC = {m.code: name for name, m in MEASURES.items()}


def check_access(
    session: Session, *, principal: Principal, person_id: str | None, action: str, detail: str = ""
) -> Access:
    """Decide and log an access to a person's record (see consent.check)."""
    return consent.check(session, principal=principal, person_id=person_id, action=action, detail=detail)


def _patient_filter(access: Access) -> tuple[ColumnElement[bool], dict[str, Any]]:
    """SQL condition selecting the entries an access covers — the person's linked patient ids, their ID
    numbers (public-health records), and what the resident added — and its bound parameters (the condition
    is built once per shape: how many keys, ID numbers, whether one institution only)."""
    only = access.institution_only
    keys = [(i, k) for i, k in access.keys if only is None or i == only]
    params: dict[str, Any] = {"pf_person": access.person_id, "pf_only": only or ""}
    for n, (i, k) in enumerate(keys):
        params[f"pf_inst_{n}"], params[f"pf_key_{n}"] = i, k
    if access.id_numbers:
        params["pf_ids"] = list(access.id_numbers)
    return _filter_clause(len(keys), bool(access.id_numbers), only is not None), params


@lru_cache(maxsize=64)
def _filter_clause(keys: int, ids: bool, only: bool) -> ColumnElement[bool]:
    """The condition of `_patient_filter` for one shape, on bound parameters."""
    conds: list[ColumnElement[bool]] = [
        and_(
            RecordEntry.institution_code == bindparam(f"pf_inst_{n}", type_=String()),
            RecordEntry.patient_key == bindparam(f"pf_key_{n}", type_=String()),
        )
        for n in range(keys)
    ]
    if ids:
        c: ColumnElement[bool] = RecordEntry.id_number.in_(bindparam("pf_ids", expanding=True))
        conds.append(c if not only else and_(c, RecordEntry.institution_code == bindparam("pf_only")))
    if not only:
        # the resident's own entries have no institution: naming "" keeps this on the patient index (without
        # it PostgreSQL scans the whole index for the patient key, ~100 ms at 500k entries)
        conds.append(
            and_(
                RecordEntry.institution_code == "",
                RecordEntry.patient_key == bindparam("pf_person", type_=String()),
                RecordEntry.source == RESIDENT,
            )
        )
    return or_(*conds) if conds else RecordEntry.id < 0


def check_kinds(kinds: list[str] | None) -> None:
    """Invalid unless every kind is a timeline kind."""
    unknown = set(kinds or ()) - set(store.kind_labels())
    if unknown:
        raise Invalid(f"未知的记录类别：{'、'.join(sorted(unknown))}", code="records-bad-kind")


def timeline(
    session: Session,
    *,
    access: Access,
    kinds: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    institution: str | None = None,
    limit: int = 500,
) -> list[RecordEntry]:
    """The entries the access allows, newest first, filtered by kind, time and institution."""
    if start and end and start > end:
        raise Invalid("开始时间晚于结束时间", code="records-bad-range")
    if kinds:
        check_kinds(kinds)
    where, params = _patient_filter(access)
    q = _timeline_query(where, bool(kinds), start is not None, end is not None, bool(institution))
    params.update(tl_kinds=kinds, tl_start=start, tl_end=end, tl_inst=institution)
    params["tl_limit"] = min(max(limit, 1), MAX_ITEMS)
    return list(session.scalars(q, params).all())


@lru_cache(maxsize=256)
def _timeline_query(
    where: ColumnElement[bool], kinds: bool, start: bool, end: bool, institution: bool
) -> Select[RecordEntry]:
    """The timeline's statement for a filter shape, on bound parameters (built once: building a statement
    and its cache key cost more CPU than reading a person's entries)."""
    q = select(RecordEntry).where(where)
    if kinds:
        q = q.where(RecordEntry.kind.in_(bindparam("tl_kinds", expanding=True)))
    if start:
        q = q.where(RecordEntry.occurred_at >= bindparam("tl_start", type_=UtcDateTime()))
    if end:
        q = q.where(RecordEntry.occurred_at < bindparam("tl_end", type_=UtcDateTime()))
    if institution:
        q = q.where(RecordEntry.institution_code == bindparam("tl_inst", type_=String()))
    return q.order_by(RecordEntry.occurred_at.desc(), RecordEntry.id.desc()).limit(
        bindparam("tl_limit", type_=Integer())
    )


def recent(
    session: Session, *, access: Access, since: datetime, always: tuple[str, ...] = (), limit: int = MAX_ITEMS
) -> list[RecordEntry]:
    """The entries since a time, and those of the `always` kinds whenever they happened, newest first
    (what the reminders read: one indexed query)."""
    where, params = _patient_filter(access)
    params.update(rc_since=since, rc_always=list(always), rc_limit=limit)
    return list(session.scalars(_recent_query(where, bool(always)), params).all())


@lru_cache(maxsize=64)
def _recent_query(where: ColumnElement[bool], always: bool) -> Select[RecordEntry]:
    """`recent`'s statement for a filter shape, on bound parameters (built once, as `_timeline_query`)."""
    when: ColumnElement[bool] = RecordEntry.occurred_at >= bindparam("rc_since", type_=UtcDateTime())
    if always:
        when = or_(when, RecordEntry.kind.in_(bindparam("rc_always", expanding=True)))
    return (
        select(RecordEntry)
        .where(where, when)
        .order_by(RecordEntry.occurred_at.desc(), RecordEntry.id.desc())
        .limit(bindparam("rc_limit", type_=Integer()))
    )


def entry_data(e: RecordEntry) -> dict[str, Any]:
    """One entry as the API answers it (EntryRead's fields), ready for orjson."""
    return {
        "id": e.id,
        "kind": e.kind,
        "institution_code": e.institution_code,
        "source": e.source,
        "occurred_at": e.occurred_at,
        "title": e.title,
        "code": e.code,
        "abnormal": e.abnormal,
        "detail": e.detail,
    }


def reports(session: Session, *, access: Access, limit: int = 200) -> list[RecordEntry]:
    """The person's lab and exam reports from every institution (医检报告共享), newest first."""
    return timeline(session, access=access, kinds=["lab", "exam"], limit=limit)


def report(session: Session, *, access: Access, entry_id: int) -> RecordEntry:
    """One lab or exam report with its results, if the access allows it."""
    return entry(session, access=access, entry_id=entry_id, kinds=REPORTS, missing="没有这份报告")


def entry(
    session: Session,
    *,
    access: Access,
    entry_id: int,
    kinds: tuple[str, ...],
    missing: str = "没有这条记录",
) -> RecordEntry:
    """One entry of these kinds, if the access allows it (NotFound otherwise: no hint it exists)."""
    e = session.get(RecordEntry, entry_id)
    where, params = _patient_filter(access)
    allowed = (
        e is not None
        and e.kind in kinds
        and session.scalar(select(RecordEntry.id).where(RecordEntry.id == entry_id, where), params)
    )
    if e is None or not allowed:
        code = "records-report-not-found" if kinds == REPORTS else "records-entry-not-found"
        raise NotFound(missing, code=code)
    return e


def person_of_entry(session: Session, *, entry_id: int, kinds: tuple[str, ...]) -> str:
    """The EMPI person an entry belongs to (through its institution's patient id, else its ID number), so a
    read by the entry's id can be decided and logged like any view; NotFound if none."""
    e = session.get(RecordEntry, entry_id)
    pid = None
    if e is not None and e.kind in kinds:
        if e.source == RESIDENT:
            pid = e.patient_key
        else:
            pid = identity.person_of_record(
                session, institution_code=e.institution_code, local_id=e.patient_key
            )
            if pid is None and e.id_number:
                pid = next(iter(identity.find_persons(session, id_number=e.id_number)), None)
    if pid is None:
        raise NotFound("没有这条记录", code="records-entry-not-found")
    return pid


def add_measurement(
    session: Session, *, person_id: str, kind: str, value: float, measured_at: datetime | None = None
) -> RecordEntry:
    """A resident's own measurement (blood pressure, glucose, weight, steps …), checked for plausibility."""
    m = MEASURES.get(kind)
    if m is None:
        raise Invalid(f"不支持的自测项目：{kind}（可选：{'、'.join(MEASURES)}）", code="records-bad-measure")
    if not m.low <= value <= m.high:
        raise Invalid(f"{m.label} {value} {m.unit} 超出合理范围 {m.low}–{m.high}", code="records-bad-value")
    t = now()
    at = (measured_at or t).astimezone(UTC)
    if at > t + timedelta(minutes=5) or at < t - timedelta(days=3650):
        raise Invalid("测量时间不合理（不能晚于现在，也不能早于十年前）", code="records-bad-time")
    e = RecordEntry(
        institution_code="",
        patient_key=person_id,
        source=RESIDENT,
        business_key=uuid.uuid4().hex,
        kind="measurement",
        occurred_at=at,
        title=f"{m.label} {value:g} {m.unit}",
        code=m.code,
        abnormal=False,
        detail={"measure": kind, "value": value, "unit": m.unit, "loinc": m.code},
        updated_at=t,
    )
    session.add(e)
    session.flush()
    return e


def measurements(session: Session, *, person_id: str, days: int = 180) -> list[RecordEntry]:
    """A resident's own measurements of the last days, oldest first (charts)."""
    return list(
        session.scalars(
            select(RecordEntry)
            .where(
                RecordEntry.institution_code == "",  # on the patient index (see _patient_filter)
                RecordEntry.patient_key == person_id,
                RecordEntry.source == RESIDENT,
                RecordEntry.occurred_at >= now() - timedelta(days=days),
            )
            .order_by(RecordEntry.occurred_at)
        ).all()
    )


def absorb_batches(session: Session, lake: Lake, batch_ids: list[str]) -> int:
    """Absorb committed intake batches from the lake (a rebuild; batches already absorbed are skipped)."""
    return store.absorb(session, lake, batch_ids)


def build_stored(stored: Mapping[str, pl.DataFrame], *, dialect: str) -> store.Built | None:
    """The timeline entries of what a batch has just stored, built before its commit (no database)."""
    return store.build_stored(stored, dialect=dialect)


def absorb_stored(
    session: Session, *, batch_id: str, stored: Mapping[str, pl.DataFrame], built: store.Built | None = None
) -> int:
    """Absorb what a batch has just stored, in intake's commit transaction (from `build_stored`'s entries
    when given)."""
    return store.absorb_stored(session, batch_id=batch_id, stored=stored, built=built)
