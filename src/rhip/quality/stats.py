"""The monthly data-collection figures (数据采集情况) per institution and per district, and their bulletin
sections. docs/metrics.md defines every figure; the SQL here is built as text plus bound parameters.

Sources: the lake's current records (read through DuckDB) for visits, discharges, revenue, real-time days
and forms and health records; intake's stored daily upload counts for volumes; the SQL database for
declarations, the imported statistics report (卫统) and CDA documents.

The layer contract keeps domains independent, so quality does not import intake: it reads what intake
stores, by its documented names: lake tables `ods_<table>` (system columns `_batch`, `_key`, `_op`, `_month`,
`_row`, `_ingested_at`) and SQL tables `intake_batches`, `intake_daily_counts`, `intake_cda_documents`.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, String, column, func, select, table as sql_table
from sqlalchemy.orm import Session

from rhip.clock import SHANGHAI
from rhip.db.base import UtcDateTime
from rhip.errors import Invalid
from rhip.lake.duck import Duck
from rhip.lake.sql import Sql, ident
from rhip.lake.store import Lake
from rhip.registry import catalogue, data as registry_data

VISIT_TABLE, VISIT_FEE = "outpatient_visit", "fee_total"
DISCHARGE_TABLE, DISCHARGE_FEE = "discharge_summary", "total_fee"
RECORD_TABLES = {
    "basic": "health_record",
    "hypertension": "hypertension_followup",
    "diabetes": "diabetes_followup",
}
STORED = ("accepted", "updated", "revoked")  # what 校验入库 counts: records written to the lake
HOSPITAL_KINDS = ("hospital", "mch")
REALTIME_LAG = timedelta(hours=1)  # a record is real-time when 数据采集时间 is at most this after its event
SHANGHAI_OFFSET_US = 8 * 3600 * 1_000_000  # Asia/Shanghai has had no daylight saving since 1991


OP_REVOKED = 3  # 修改标志 3: a tombstone
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
_BATCHES = sql_table("intake_batches", column("id", String), column("status", String))
_CDA = sql_table(
    "intake_cda_documents", column("institution_code", String), column("received_at", UtcDateTime)
)


def data_table(catalogue_table: str) -> str:
    """The lake table intake stores a catalogue table's records in."""
    return f"ods_{catalogue_table}"


def pending_batches(session: Session) -> list[str]:
    """Ids of upload batches not yet committed: their lake rows must not be read."""
    return [str(i) for i in session.scalars(select(_BATCHES.c.id).where(_BATCHES.c.status == "pending"))]


def current_sql(catalogue_table: str, columns: list[str], *, pending: list[str]) -> Sql:
    """Current version of each record: latest 数据更新时间 wins, tombstones and uncommitted batches out.

    Intake stores a key's later versions with 修改标志 2 or 3 (a newer re-send is an update, an identical
    one is not stored), so a key seen only with flag 1 has one version: those rows pass an anti-join
    against the few changed keys, and only changed keys are ranked (intake's order: updated_at,
    ingestion, row).
    """
    cols = ", ".join(ident(c) for c in dict.fromkeys(["org_code", "_month", "_op", *columns]))
    t = ident(data_table(catalogue_table))
    keep, params = "TRUE", {}
    if pending:
        keep, params = "NOT list_contains($pending, _batch)", {"pending": list(pending)}
    changed = f"(SELECT DISTINCT org_code, _key FROM {t} WHERE _op <> 1 AND {keep})"
    text = (
        f"SELECT {cols} FROM {t} ANTI JOIN {changed} AS c USING (org_code, _key) WHERE _op = 1 AND {keep} "
        f"UNION ALL "
        f"SELECT {cols} FROM (SELECT {cols}, row_number() OVER (PARTITION BY org_code, _key "
        f"ORDER BY updated_at DESC, _ingested_at DESC, _row DESC) AS _rn "
        f"FROM {t} SEMI JOIN {changed} AS c2 USING (org_code, _key) WHERE {keep}) AS v "
        f"WHERE _rn = 1 AND _op <> {OP_REVOKED}"
    )
    return Sql(text, params)


class LakeReader:
    """DuckDB over the lake tables a query names, each opened once per reader (not on every query)."""

    def __init__(self, lake: Lake, duck: Duck | None = None) -> None:
        self.lake = lake
        self.duck = duck or Duck(lake)
        self._own = duck is None
        self._seen: set[str] = set()
        self.present = set(lake.tables())

    def has(self, catalogue_table: str) -> bool:
        """Whether the lake holds records of a catalogue table."""
        return data_table(catalogue_table) in self.present

    def rows(self, sql: Sql, *catalogue_tables: str) -> list[tuple[Any, ...]]:
        """Run a statement over the named catalogue tables' lake tables."""
        for t in catalogue_tables:
            name = data_table(t)
            if name not in self._seen:
                self.duck.con.register(name, self.lake.dataset(name).to_pyarrow_dataset())
                self._seen.add(name)
        return self.duck.con.execute(sql.text, sql.params).fetchall()

    def close(self) -> None:
        """Close the connection when this reader made it."""
        if self._own:
            self.duck.close()


# --- periods ---


def month_bounds(month: str) -> tuple[date, date]:
    """First and last day of a YYYY-MM month (Invalid otherwise)."""
    try:
        y, m = (int(x) for x in month.split("-"))
        first = date(y, m, 1)
    except ValueError:
        raise Invalid(f"月份格式应为 YYYY-MM：{month}", code="bad-month") from None
    return first, date(y, m, calendar.monthrange(y, m)[1])


def active_days(month: str, joined_on: date | None, left_on: date | None) -> int:
    """Days of the month an institution was connected: from joining to leaving, both inclusive."""
    first, last = month_bounds(month)
    start = max(first, joined_on) if joined_on else first
    end = min(last, left_on) if left_on else last
    return max(0, (end - start).days + 1)


def month_label(month: str) -> str:
    """“2025 年 3 月”."""
    first, _ = month_bounds(month)
    return f"{first.year} 年 {first.month} 月"


# --- reporting units ---


@dataclass(frozen=True)
class Unit:
    """A bulletin row: a district platform or a directly connected hospital, with its member institutions."""

    code: str
    name: str
    kind: str  # "district" or "hospital"
    members: tuple[str, ...]
    joined_on: date | None = None
    left_on: date | None = None
    district: str | None = None


def required_tables(kind: str) -> list[str]:
    """规定上传表: hospitals owe the medical tables, district platforms every table of the catalogue."""
    sets = catalogue.datasets()
    if kind == "hospital":
        return [d.name for d in sets if d.category == "medical"]
    return [d.name for d in sets]


def realtime_tables() -> list[str]:
    """The real-time forms (实时数据表单)."""
    return [d.name for d in catalogue.datasets() if d.realtime]


def units(month: str) -> list[Unit]:
    """The month's reporting units: 12 district platforms, then the direct hospitals active in it."""
    first, last = month_bounds(month)
    records = registry_data.institutions()
    out: list[Unit] = []
    for d in registry_data.districts():
        members = [d.platform_code] + [
            r.code
            for r in records
            if r.district_code == d.code and r.upload_route == "district" and r.kind != "district_platform"
        ]
        out.append(
            Unit(code=d.platform_code, name=d.name, kind="district", members=tuple(members), district=d.name)
        )
    children: dict[str, list[str]] = defaultdict(list)
    for r in records:
        if r.upload_route == "parent" and r.parent_code:
            children[r.parent_code].append(r.code)
    for r in records:
        if r.kind not in HOSPITAL_KINDS or r.upload_route != "direct" or r.city != registry_data.CITY:
            continue
        if (r.joined_on and r.joined_on > last) or (r.left_on and r.left_on < first):
            continue
        out.append(
            Unit(
                code=r.code,
                name=r.name,
                kind="hospital",
                members=(r.code, *children.get(r.code, ())),
                joined_on=r.joined_on,
                left_on=r.left_on,
                district=r.district,
            )
        )
    return out


# --- SQL builders ---


def _lag_us(lag: timedelta) -> int:
    return int(lag.total_seconds() * 1_000_000)


def activity_sql(
    table: str, fee: str, *, month: str, pending: list[str], lag: timedelta = REALTIME_LAG
) -> Sql:
    """Per institution: current records of a table in the month, their fee total, how many are real-time."""
    event_col = catalogue.get(table).event_time or "updated_at"
    inner = current_sql(table, ["collected_at", event_col, fee], pending=pending)
    event = ident(event_col)
    text = (
        f"SELECT org_code, count(*) AS n, coalesce(sum({ident(fee)}), 0) AS amount, "
        f"count(*) FILTER (WHERE epoch_us(collected_at) - epoch_us({event}) <= $lag) AS n_realtime "
        f"FROM ({inner.text}) AS cur WHERE _month = $month GROUP BY org_code"
    )
    return Sql(text, {**inner.params, "month": month, "lag": _lag_us(lag)})


def realtime_days_sql(table: str, *, month: str, pending: list[str], lag: timedelta = REALTIME_LAG) -> Sql:
    """Per institution and day of the month: stored real-time records of a real-time form."""
    first, last = month_bounds(month)
    prev = (first - timedelta(days=1)).strftime("%Y-%m")
    event = ident(catalogue.get(table).event_time or "updated_at")
    day = f"CAST(make_timestamp(epoch_us(collected_at) + {SHANGHAI_OFFSET_US}) AS DATE)"
    where = "_month IN ($month, $prev) AND epoch_us(collected_at) - epoch_us({event}) <= $lag"
    params: dict[str, Any] = {"month": month, "prev": prev, "lag": _lag_us(lag), "first": first, "last": last}
    if pending:
        where += " AND NOT list_contains($pending, _batch)"
        params["pending"] = list(pending)
    text = (
        f"SELECT org_code, day, count(*) AS n FROM (SELECT org_code, {day} AS day "
        f"FROM {ident(data_table(table))} WHERE {where.format(event=event)}) AS r "
        f"WHERE day BETWEEN $first AND $last GROUP BY org_code, day"
    )
    return Sql(text, params)


def records_sql(table: str, *, month: str, pending: list[str], distinct: str | None = None) -> Sql:
    """Per institution: current records of a table dated up to the end of the month (cumulative)."""
    inner = current_sql(table, [distinct] if distinct else [], pending=pending)
    what = f"count(DISTINCT {ident(distinct)})" if distinct else "count(*)"
    text = (
        f"SELECT org_code, {what} AS n FROM ({inner.text}) AS cur "
        f"WHERE _month <= $month AND _month <> '0000-00' GROUP BY org_code"
    )
    return Sql(text, {**inner.params, "month": month})


def history_sql(*, first_month: str, month: str, pending: list[str]) -> Sql:
    """Per institution and event month: current outpatient visits over a range of months (for trends)."""
    inner = current_sql(VISIT_TABLE, [], pending=pending)
    text = (
        f"SELECT org_code, _month, count(*) AS n FROM ({inner.text}) AS cur "
        f"WHERE _month BETWEEN $first AND $month GROUP BY org_code, _month"
    )
    return Sql(text, {**inner.params, "first": first_month, "month": month})


def visit_history(
    session: Session, *, lake: Lake, month: str, months: int = 12, duck: Duck | None = None
) -> dict[str, dict[str, int]]:
    """Outpatient visits per unit and month, for the `months` months ending with `month`."""
    first, _ = month_bounds(month)
    y, m = first.year, first.month - (months - 1)
    while m <= 0:
        y, m = y - 1, m + 12
    reader = LakeReader(lake, duck)
    try:
        if not reader.has(VISIT_TABLE):
            return {}
        got = reader.rows(
            history_sql(first_month=f"{y:04d}-{m:02d}", month=month, pending=pending_batches(session)),
            VISIT_TABLE,
        )
    finally:
        reader.close()
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


def limit_sql(tables: Iterable[str], *, month: str) -> Sql:
    """The performance limit: one scan of the month's rows of every table, counting rows only."""
    parts = [f"SELECT count(*) AS n FROM {ident(data_table(t))} WHERE _month = $month" for t in tables]
    return Sql(f"SELECT sum(n) FROM ({' UNION ALL '.join(parts)})", {"month": month})


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


def _cda_counts(session: Session, *, month: str) -> dict[str, int]:
    first, last = month_bounds(month)
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


def org_figures(
    session: Session, *, lake: Lake, month: str, duck: Duck | None = None
) -> tuple[dict[str, OrgFigures], int]:
    """Every institution code's raw figures for the month, and the cumulative stored records up to its end."""
    first, last = month_bounds(month)
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
    reader = LakeReader(lake, duck)
    try:
        pending = pending_batches(session)
        for table in realtime_tables():
            if not reader.has(table):
                continue
            for org, day, _n in reader.rows(realtime_days_sql(table, month=month, pending=pending), table):
                f = figs[str(org)]
                f.days.add(day)
                f.forms.add(table)
        for table, fee, kind in (
            (VISIT_TABLE, VISIT_FEE, "visit"),
            (DISCHARGE_TABLE, DISCHARGE_FEE, "discharge"),
        ):
            if not reader.has(table):
                continue
            for org, n, amount, n_rt in reader.rows(
                activity_sql(table, fee, month=month, pending=pending), table
            ):
                f = figs[str(org)]
                if kind == "visit":
                    f.visits, f.visit_revenue, f.visits_realtime = int(n), float(amount), int(n_rt)
                else:
                    f.discharges, f.inpatient_revenue, f.discharges_realtime = (
                        int(n),
                        float(amount),
                        int(n_rt),
                    )
        for what, table in RECORD_TABLES.items():
            if not reader.has(table):
                continue
            distinct = None if what == "basic" else "record_no"
            for org, n in reader.rows(
                records_sql(table, month=month, pending=pending, distinct=distinct), table
            ):
                setattr(figs[str(org)], f"records_{what}", int(n))
    finally:
        reader.close()
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


def month_figures(session: Session, *, lake: Lake, month: str, duck: Duck | None = None) -> MonthFigures:
    """Every figure of the data-collection tables for the month, per unit."""
    from rhip.quality import service

    month_bounds(month)
    orgs, cumulative = org_figures(session, lake=lake, month=month, duck=duck)
    declared = service.declared_counts(session)
    stats = service.statistics_of(session, month=month)
    rt_forms = len(realtime_tables())
    out: list[UnitFigures] = []
    all_units = units(month)
    for u in all_units:
        days: set[date] = set()
        forms: set[str] = set()
        tables: set[str] = set()
        row = UnitFigures(code=u.code, name=u.name, kind=u.kind, forms_of=max(rt_forms, 1))
        row.active_days = active_days(month, u.joined_on, u.left_on)
        first, last = month_bounds(month)
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
        st = stats.get(u.code)
        if st is not None:
            row.stat_visits, row.stat_discharges = st
        out.append(row)
    return MonthFigures(month=month, units=out, cumulative=cumulative, members=[u.members for u in all_units])


# --- bulletin sections ---


def thousands(yuan: float) -> float:
    """Yuan as 千元 with two decimals."""
    return round(yuan / 1000.0, 2)


def cumulative_text(n: int) -> str:
    """“304.90 亿条” for large totals, the exact count with separators below 100 million."""
    return f"{n / 1e8:.2f} 亿条" if n >= 100_000_000 else f"{n:,} 条"


COLUMNS_2025: list[dict[str, Any]] = [
    {"title": "接入单位"},
    {"title": "定时数据上传量", "kind": "int"},
    {"title": "实时数据上传天数", "kind": "int"},
    {"title": "实时数据表单上传情况", "kind": "ratio"},
    {"title": "人次", "group": "门急诊信息", "kind": "int"},
    {"title": "收入（千元）", "group": "门急诊信息", "kind": "decimal2"},
    {"title": "人次", "group": "出院信息", "kind": "int"},
    {"title": "住院收入（千元）", "group": "出院信息", "kind": "decimal2"},
]


def collection_row(u: UnitFigures) -> list[Any]:
    """One row of a 2025-style data-collection table ("/" for revenue when there was no activity)."""
    return [
        u.name,
        u.uploads,
        u.upload_days,
        f"{u.forms}/{u.forms_of}",
        u.visits,
        thousands(u.visit_revenue) if u.visits else "/",
        u.discharges,
        thousands(u.inpatient_revenue) if u.discharges else "/",
    ]


def _rate(v: float | None) -> Any:
    return "/" if v is None else round(v, 4)


SUPPLEMENT_COLUMNS: list[dict[str, Any]] = [
    {"title": "接入单位"},
    {"title": "类别"},
    {"title": "声明上传表/规定上传表", "kind": "ratio"},
    {"title": "已上传表", "kind": "int"},
    {"title": "CDA 文档（份）", "kind": "int"},
    {"title": "上传天数/应传天数", "kind": "ratio"},
    {"title": "实时数据符合率", "group": "门急诊信息", "kind": "percent"},
    {"title": "上传率（与卫统对比）", "group": "门急诊信息", "kind": "percent"},
    {"title": "实时数据符合率", "group": "出院信息", "kind": "percent"},
    {"title": "上传率（与卫统对比）", "group": "出院信息", "kind": "percent"},
    {"title": "基本信息", "group": "健康档案累计上传总量", "kind": "int"},
    {"title": "高血压", "group": "健康档案累计上传总量", "kind": "int"},
    {"title": "糖尿病", "group": "健康档案累计上传总量", "kind": "int"},
]


def supplement_row(u: UnitFigures) -> list[Any]:
    """One row of the supplementary quality table."""
    no_stat = "未获取卫统数据"
    return [
        u.name,
        "区" if u.kind == "district" else "医院",
        f"{u.declared if u.declared is not None else '未反馈'}/{u.required}",
        u.tables_uploaded,
        u.cda,
        f"{u.upload_days}/{u.active_days}",
        _rate(u.visit_compliance),
        no_stat if u.stat_visits is None else _rate(u.visit_upload_rate),
        _rate(u.discharge_compliance),
        no_stat if u.stat_discharges is None else _rate(u.discharge_upload_rate),
        u.records_basic,
        u.records_hypertension,
        u.records_diabetes,
    ]


def summary_paragraphs(fig: MonthFigures, *, days_threshold: float = 0.75) -> list[str]:
    """A short Chinese summary: totals, top uploaders, units below the thresholds."""
    label = month_label(fig.month)
    districts, hospitals = fig.of_kind("district"), fig.of_kind("hospital")
    total = sum(u.uploads for u in fig.units)
    visits = sum(u.visits for u in fig.units)
    discharges = sum(u.discharges for u in fig.units)
    sending = [u for u in fig.units if u.uploads > 0]
    paras = [
        f"{label}，全市 {len(districts)} 个区卫生信息平台和 {len(hospitals)} 家医院中"
        f"有 {len(sending)} 家单位上传数据，"
        f"定时数据上传量合计 {total:,} 条；上传门急诊 {visits:,} 人次、出院 {discharges:,} 人次。"
        f"截止 {label}，区及医院累计校验入库数据 {cumulative_text(fig.cumulative)}。"
    ]
    top_h = "、".join(f"{u.name}（{u.uploads:,} 条）" for u in hospitals[:3] if u.uploads)
    top_d = "、".join(f"{u.name}（{u.uploads:,} 条）" for u in districts[:3] if u.uploads)
    if top_h or top_d:
        paras.append(
            "定时数据上传量居前三位的"
            + "；".join(p for p in (f"区为{top_d}" if top_d else "", f"医院为{top_h}" if top_h else "") if p)
            + "。"
        )
    low_days = [u for u in fig.units if u.active_days and u.upload_days < days_threshold * u.active_days]
    missing_forms = [u for u in fig.units if u.forms < u.forms_of]
    no_data = [u for u in fig.units if u.uploads == 0]
    parts = []
    if low_days:
        names = "、".join(f"{u.name}（{u.upload_days} 天）" for u in low_days[:12])
        more = f"等 {len(low_days)} 家" if len(low_days) > 12 else ""
        parts.append(f"实时数据上传天数不足当月应传天数 {round(days_threshold * 100)}% 的有{names}{more}")
    if missing_forms:
        parts.append(f"实时数据表单未全部上传的有 {len(missing_forms)} 家单位")
    if no_data:
        parts.append(f"本月未上传数据的有{'、'.join(u.name for u in no_data[:12])}")
    if parts:
        paras.append("；".join(parts) + "，请相关单位对照问题清单及时整改。")
    return paras


def sections_of(fig: MonthFigures) -> list[dict[str, Any]]:
    """The bulletin sections for a month's figures (plain data, see rhip.bulletin.sections)."""
    label = month_label(fig.month)
    cumulative = f"（截止 {label}，区及医院累计校验入库数据 {cumulative_text(fig.cumulative)}）"
    title_d = f"{label}南京市卫生信息平台数据采集情况（区）"
    title_h = f"{label}南京市卫生信息平台数据采集情况（医院）"
    return [
        {
            "key": "quality.summary",
            "title": f"{label}数据采集情况",
            "order": 900,
            "paragraphs": summary_paragraphs(fig),
        },
        {
            "key": "quality.districts",
            "title": title_d,
            "order": 901,
            "tables": [
                {
                    "title": title_d,
                    "sheet": "数据采集情况（区）",
                    "columns": COLUMNS_2025,
                    "rows": [collection_row(u) for u in fig.of_kind("district")],
                }
            ],
        },
        {
            "key": "quality.hospitals",
            "title": title_h,
            "order": 902,
            "tables": [
                {
                    "title": title_h,
                    "sheet": "数据采集情况（医院）",
                    "columns": COLUMNS_2025,
                    "rows": [collection_row(u) for u in fig.of_kind("hospital")],
                    "notes": [cumulative],
                }
            ],
        },
        {
            "key": "quality.supplement",
            "title": f"{label}数据采集质量补充指标",
            "order": 903,
            "tables": [
                {
                    "title": f"{label}数据采集质量补充指标（区及医院）",
                    "sheet": "质量补充指标",
                    "columns": SUPPLEMENT_COLUMNS,
                    "rows": [supplement_row(u) for u in fig.of_kind("district") + fig.of_kind("hospital")],
                }
            ],
        },
    ]


def bulletin_sections(*, session: Session, lake: Lake, month: str) -> list[dict[str, Any]]:
    """The data-collection part of the bulletin for a month (the bulletin's provider hook)."""
    return sections_of(month_figures(session, lake=lake, month=month))
