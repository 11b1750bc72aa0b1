"""The monthly data-collection figures (数据采集情况) per institution and per reporting unit.

docs/metrics.md defines every figure. Sources: intake's rollups of the lake's records (`rollupread`) for
real-time days and forms, visits, discharges, revenue and health records — or, to check them, the records
themselves read through DuckDB (`recount`, `lakeread`, SQL from `figsql`); intake's stored daily upload
counts for volumes; the SQL database for declarations, the imported statistics report (卫统), CDA documents
and the reported record-browser and smart-reminder usage.

The layer contract keeps domains independent, so quality does not import intake: it reads what intake
stores, by its documented names: lake tables `ods_<table>` (system columns `_batch`, `_key`, `_op`, `_month`,
`_row`, `_ingested_at`) and SQL tables `intake_batches`, `intake_daily_counts`, `intake_cda_documents`,
`intake_activity`, `intake_realtime_days`, `intake_people_first`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, String, column, func, select, table as sql_table
from sqlalchemy.orm import Session

from rhip import months, months as month_math
from rhip.clock import SHANGHAI
from rhip.db.base import UtcDateTime
from rhip.lake.cluster import Job
from rhip.lake.duck import Duck
from rhip.lake.store import Lake
from rhip.quality import distrib, figsql, recount as recount_, rollupread, service
from rhip.quality.rollupread import Counts
from rhip.quality.units import active_days, realtime_tables, required_tables, units
from rhip.quality.usage import Usage, usage_of
from rhip.registry import catalogue

VISIT_TABLE, DISCHARGE_TABLE = "outpatient_visit", "discharge_summary"
# the tables whose current records, amount and real-time share the figures count (table → amount field)
ACTIVITY = {t: str(catalogue.get(t).amount) for t in (VISIT_TABLE, DISCHARGE_TABLE)}
RECORD_TABLES = {
    "basic": "health_record",
    "hypertension": "hypertension_followup",
    "diabetes": "diabetes_followup",
}
STORED = ("accepted", "updated", "revoked")  # what 校验入库 counts: records written to the lake

_DAILY = sql_table(
    "intake_daily_counts",
    column("institution_code", String),
    column("table_name", String),
    column("day", Date),
    column("received"),
    column("accepted"),
    column("updated"),
    column("revoked"),
    column("rejected"),
)
_CDA = sql_table(
    "intake_cda_documents", column("institution_code", String), column("received_at", UtcDateTime)
)


# --- per-institution figures ---


@dataclass
class OrgFigures:
    """The raw monthly figures of one institution code, before rolling up into units."""

    uploads: int = 0
    stored: int = 0
    rejected: int = 0
    days: set[date] = field(default_factory=set)
    forms: set[str] = field(default_factory=set)
    tables: set[str] = field(default_factory=set)
    visits: int = 0
    visit_revenue: float = 0.0
    visits_realtime: int = 0
    discharges: int = 0
    inpatient_revenue: float = 0.0
    discharges_realtime: int = 0
    records_basic: int = 0
    records_hypertension: int = 0
    records_diabetes: int = 0
    cda: int = 0


def months_with_data(session: Session) -> dict[str, int]:
    """Upload days per month with any upload, oldest first (the month pickers; rhip.months.latest)."""
    days = session.execute(select(_DAILY.c.day).distinct()).scalars()
    return months.count_days(d if isinstance(d, date) else str(d) for d in days)


def _cda_counts(session: Session, *, month: str) -> dict[str, int]:
    first, last = months.day_bounds(month)
    start = datetime(first.year, first.month, first.day, tzinfo=SHANGHAI)
    end = datetime(last.year, last.month, last.day, tzinfo=SHANGHAI) + timedelta(days=1)
    rows = session.execute(
        select(_CDA.c.institution_code, func.count())
        .where(_CDA.c.received_at >= start, _CDA.c.received_at < end)
        .group_by(_CDA.c.institution_code)
    ).all()
    return {str(code): int(n) for code, n in rows}


def _daily(session: Session, *, first: date, last: date) -> tuple[list[Any], int]:
    """The month's upload counts per institution, table and day, and the stored total up to its end."""
    d = _DAILY.c
    stored = d.accepted + d.updated + d.revoked
    cumulative = session.scalar(select(func.coalesce(func.sum(stored), 0)).where(d.day <= last))
    rows = session.execute(
        select(
            d.institution_code,
            d.table_name,
            func.sum(d.received),
            func.sum(stored),
            func.sum(d.rejected),
        )
        .where(d.day >= first, d.day <= last)
        .group_by(d.institution_code, d.table_name)
    ).all()
    return list(rows), int(cumulative or 0)


def _lake_counts(
    session: Session, *, lake: Lake, month: str, duck: Duck | None, recount: bool | Job
) -> Counts:
    """The figures' share of the lake's records: from intake's rollups, or (`recount`) from the records
    (a `Job`: on its workers, a task per range of institutions)."""
    forms = realtime_tables()
    records = {what: (table, what != "basic") for what, table in RECORD_TABLES.items()}
    if recount is False:
        return rollupread.counts(session, month=month, forms=forms, activity=ACTIVITY, records=records)
    first, last = months.day_bounds(month)
    what: dict[str, Any] = dict(month=month, first=first, last=last, forms=forms, activity=ACTIVITY)
    if isinstance(recount, Job):
        pending = recount_.pending_batches(session)
        return distrib.counts(recount, lake=lake, records=records, pending=pending, **what)
    return recount_.counts(session, lake=lake, records=records, duck=duck, **what)


def org_figures(
    session: Session, *, lake: Lake, month: str, duck: Duck | None = None, recount: bool | Job = False
) -> tuple[dict[str, OrgFigures], int]:
    """Every institution code's raw figures for the month, and the cumulative stored records up to its end
    (the lake's share from intake's rollups; with `recount`, recounted from the lake's records)."""
    first, last = months.day_bounds(month)
    figs: dict[str, OrgFigures] = defaultdict(OrgFigures)
    rows, cumulative = _daily(session, first=first, last=last)
    for code, table_name, received, stored, rejected in rows:
        f = figs[str(code)]
        f.uploads += int(received or 0)
        f.stored += int(stored or 0)
        f.rejected += int(rejected or 0)
        if stored:
            f.tables.add(str(table_name))
    for code, n in _cda_counts(session, month=month).items():
        figs[code].cda = n
    first, _ = months.day_bounds(month)
    got = _lake_counts(session, lake=lake, month=month, duck=duck, recount=recount)
    for table, org, mask in got.days:
        f = figs[org]
        f.days.update(figsql.mask_days(first, mask))
        f.forms.add(table)
    for org, n, amount, n_rt in got.activity.get(VISIT_TABLE, []):
        figs[org].visits, figs[org].visit_revenue, figs[org].visits_realtime = n, amount, n_rt
    for org, n, amount, n_rt in got.activity.get(DISCHARGE_TABLE, []):
        figs[org].discharges, figs[org].inpatient_revenue, figs[org].discharges_realtime = n, amount, n_rt
    for what, rows in got.records.items():
        for org, n in rows:
            setattr(figs[org], f"records_{what}", n)
    return dict(figs), cumulative


# --- unit figures ---


@dataclass
class UnitFigures:
    """One row of the data-collection tables: every figure of docs/metrics.md for a unit and month."""

    code: str
    name: str
    kind: str
    uploads: int = 0  # 定时数据上传量
    upload_days: int = 0  # 实时数据上传天数
    active_days: int = 0  # its denominator
    forms: int = 0  # 实时数据表单上传情况 x
    forms_of: int = catalogue.REALTIME_FORMS  # … /12
    visits: int = 0
    visit_revenue: float = 0.0  # yuan
    visits_realtime: int = 0
    discharges: int = 0
    inpatient_revenue: float = 0.0  # yuan
    discharges_realtime: int = 0
    declared: int | None = None  # 声明上传表 (None: 未反馈)
    required: int = 0  # 规定上传表
    tables_uploaded: int = 0  # 已上传表
    cda: int = 0  # CDA 文档（份）
    stat_visits: int | None = None  # 卫统门急诊人次
    stat_discharges: int | None = None
    records_basic: int = 0
    records_hypertension: int = 0
    records_diabetes: int = 0
    stored: int = 0
    rejected: int = 0
    days: list[date] = field(default_factory=list)  # the real-time upload days
    usage: Usage | None = None  # reported 健康档案浏览器 / 智能提示 deployments and calls (None: 未反馈)

    @property
    def days_rate(self) -> float | None:
        """Upload days over active days."""
        return self.upload_days / self.active_days if self.active_days else None

    @property
    def visit_compliance(self) -> float | None:
        """实时数据符合率 of visits."""
        return self.visits_realtime / self.visits if self.visits else None

    @property
    def discharge_compliance(self) -> float | None:
        """实时数据符合率 of discharges."""
        return self.discharges_realtime / self.discharges if self.discharges else None

    @property
    def visit_upload_rate(self) -> float | None:
        """上传率（与卫统对比） of visits."""
        return self.visits / self.stat_visits if self.stat_visits else None

    @property
    def discharge_upload_rate(self) -> float | None:
        """上传率（与卫统对比） of discharges."""
        return self.discharges / self.stat_discharges if self.stat_discharges else None


@dataclass
class MonthFigures:
    """All units' figures for a month and the cumulative stored records."""

    month: str
    units: list[UnitFigures]
    cumulative: int
    members: list[tuple[str, ...]] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[UnitFigures]:
        """Units of one kind, largest upload volume first (the bulletins' order)."""
        rows = [u for u in self.units if u.kind == kind]
        return sorted(rows, key=lambda u: -u.uploads)  # stable: ties keep the registry order

    def unit_of(self, institution_code: str) -> UnitFigures | None:
        """The unit an institution reports in (itself, its district platform or its parent hospital)."""
        for u, members in zip(self.units, self.members, strict=True):
            if institution_code in members:
                return u
        return None

    def get(self, code: str) -> UnitFigures:
        """One unit by code."""
        for u in self.units:
            if u.code == code:
                return u
        raise KeyError(code)


def month_figures(
    session: Session, *, lake: Lake, month: str, duck: Duck | None = None, recount: bool | Job = False
) -> MonthFigures:
    """Every figure of the data-collection tables for the month, per unit (`recount`: see `org_figures`)."""
    months.check(month)
    orgs, cumulative = org_figures(session, lake=lake, month=month, duck=duck, recount=recount)
    declared = service.declared_counts(session)
    stats = service.statistics_of(session, month=month)
    usage = usage_of(session, month=month)
    rt_forms = len(realtime_tables())
    out: list[UnitFigures] = []
    all_units = units(month)
    for u in all_units:
        days: set[date] = set()
        forms: set[str] = set()
        tables: set[str] = set()
        row = UnitFigures(code=u.code, name=u.name, kind=u.kind, forms_of=max(rt_forms, 1))
        row.active_days = active_days(month, u.joined_on, u.left_on)
        first, last = months.day_bounds(month)
        lo = max(first, u.joined_on) if u.joined_on else first
        hi = min(last, u.left_on) if u.left_on else last
        for code in u.members:
            f = orgs.get(code)
            if f is None:
                continue
            row.uploads += f.uploads
            row.stored += f.stored
            row.rejected += f.rejected
            days |= {d for d in f.days if lo <= d <= hi}
            forms |= f.forms
            tables |= f.tables
            row.visits += f.visits
            row.visit_revenue += f.visit_revenue
            row.visits_realtime += f.visits_realtime
            row.discharges += f.discharges
            row.inpatient_revenue += f.inpatient_revenue
            row.discharges_realtime += f.discharges_realtime
            row.records_basic += f.records_basic
            row.records_hypertension += f.records_hypertension
            row.records_diabetes += f.records_diabetes
            row.cda += f.cda
        row.upload_days, row.forms, row.tables_uploaded = len(days), len(forms), len(tables)
        row.days = sorted(days)
        row.required = len(required_tables(u.kind))
        row.declared = declared.get(u.code)
        row.usage = usage.get(u.code)
        st = stats.get(u.code)
        if st is not None:
            row.stat_visits, row.stat_discharges = st
        out.append(row)
    return MonthFigures(month=month, units=out, cumulative=cumulative, members=[u.members for u in all_units])


def visit_history(
    session: Session,
    *,
    lake: Lake,
    month: str,
    months: int = 12,
    duck: Duck | None = None,
    recount: bool | Job = False,
) -> dict[str, dict[str, int]]:
    """Outpatient visits per unit and month, for the `months` months ending with `month`."""
    since = month_math.shift(month, -(months - 1))
    if isinstance(recount, Job):
        got = distrib.history(
            recount,
            lake=lake,
            table=VISIT_TABLE,
            first_month=since,
            month=month,
            pending=recount_.pending_batches(session),
        )
    elif recount:
        got = recount_.history(
            session, lake=lake, table=VISIT_TABLE, first_month=since, month=month, duck=duck
        )
    else:
        got = rollupread.history(session, table=VISIT_TABLE, first_month=since, month=month)
    by_org: dict[str, dict[str, int]] = defaultdict(dict)
    for org, mon, n in got:
        by_org[str(org)][str(mon)] = int(n)
    out: dict[str, dict[str, int]] = {}
    for u in units(month):
        merged: dict[str, int] = defaultdict(int)
        for code in u.members:
            for mon, n in by_org.get(code, {}).items():
                merged[mon] += n
        if merged:
            out[u.code] = dict(sorted(merged.items()))
    return out
