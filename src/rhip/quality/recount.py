"""The month's counts recounted from the lake's records (DuckDB over intake's Delta tables, SQL from
`figsql`): the definition the rollups must agree with (`rhip quality verify`), and the benchmark's reference.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import String, column, select, table as sql_table
from sqlalchemy.orm import Session

from rhip.lake.duck import Duck
from rhip.lake.store import Lake
from rhip.quality import figsql
from rhip.quality.lakeread import LakeReader
from rhip.quality.rollupread import Counts
from rhip.registry import catalogue

_BATCHES = sql_table("intake_batches", column("id", String), column("status", String))


def pending_batches(session: Session) -> list[str]:
    """Ids of upload batches not yet committed: their lake rows must not be read."""
    return [str(i) for i in session.scalars(select(_BATCHES.c.id).where(_BATCHES.c.status == "pending"))]


def has_changes(reader: LakeReader, table: str, *, pending: list[str]) -> str | bool:
    """Where a table's corrected or revoked records are, or False when it has none (`figsql.current_sql`)."""
    source = reader.changed_source(table)
    if source is None:
        return False
    if not pending and reader.changes_certain(table):
        # every file of the source holds a 2 or 3 by its statistics and no row is hidden: no count needed
        return source
    sql = figsql.changed_count_sql(table, pending=pending, source=source)
    return source if reader.rows(sql, table)[0][0] else False


def counts(
    session: Session,
    *,
    lake: Lake,
    month: str,
    first: date,
    last: date,
    forms: list[str],
    activity: dict[str, str],
    records: dict[str, tuple[str, bool]],
    duck: Duck | None = None,
) -> Counts:
    """The same `Counts` as `rollupread.counts`, from the lake (`month` runs from `first` to `last`;
    `activity`: table → its amount field; a person-counting record figure counts distinct values of the
    table's `person` field)."""
    reader = LakeReader(lake, duck)
    try:
        return read_counts(
            reader,
            month=month,
            first=first,
            last=last,
            forms=forms,
            activity=activity,
            records=records,
            pending=pending_batches(session),
        )
    finally:
        reader.close()


def read_counts(
    reader: LakeReader,
    *,
    month: str,
    first: date,
    last: date,
    forms: list[str],
    activity: dict[str, str],
    records: dict[str, tuple[str, bool]],
    pending: list[str],
) -> Counts:
    """`counts` through a reader (perhaps of a range of institutions only), hiding the `pending` batches."""
    out = Counts()
    forms = [t for t in forms if reader.has(t)]
    if forms:
        sql = figsql.realtime_days_sql(forms, first=first, last=last, pending=pending)
        out.days = [(str(t), str(org), int(mask)) for t, org, mask in reader.rows(sql, *forms) if mask]
    for table, fee in activity.items():
        out.activity[table] = []
        if reader.has(table):
            changes = has_changes(reader, table, pending=pending)
            sql = figsql.activity_sql(table, fee, month=month, pending=pending, changes=changes)
            out.activity[table] = [
                (str(org), int(n), float(amount), int(rt)) for org, n, amount, rt in reader.rows(sql, table)
            ]
    for what, (table, people) in records.items():
        out.records[what] = []
        if reader.has(table):
            changes = has_changes(reader, table, pending=pending)
            sql = figsql.records_sql(
                table,
                month=month,
                pending=pending,
                changes=changes,
                distinct=catalogue.get(table).person if people else None,
            )
            out.records[what] = [(str(org), int(n)) for org, n in reader.rows(sql, table) if n]
    return out


def history(
    session: Session, *, lake: Lake, table: str, first_month: str, month: str, duck: Duck | None = None
) -> list[tuple[str, str, int]]:
    """Current records per institution and event month over a range of months, from the lake."""
    reader = LakeReader(lake, duck)
    try:
        return read_history(
            reader, table=table, first_month=first_month, month=month, pending=pending_batches(session)
        )
    finally:
        reader.close()


def read_history(
    reader: LakeReader, *, table: str, first_month: str, month: str, pending: list[str]
) -> list[tuple[str, str, int]]:
    """`history` through a reader, hiding the `pending` batches."""
    if not reader.has(table):
        return []
    changes = has_changes(reader, table, pending=pending)
    sql = figsql.history_sql(table, first_month=first_month, month=month, pending=pending, changes=changes)
    return [(str(org), str(m), int(n)) for org, m, n in reader.rows(sql, table)]


def lake_columns(activity: dict[str, str], records: dict[str, tuple[str, bool]]) -> dict[str, list[str]]:
    """Per catalogue table, the columns `counts` decodes for every row besides `org_code` and `_month` (the
    benchmark's column-scan reference reads exactly these)."""
    forms = [d.name for d in catalogue.realtime_datasets()]
    cols: dict[str, list[str]] = {t: ["collected_at", figsql.event_column(t)] for t in forms}
    for table, fee in activity.items():
        cols.setdefault(table, []).extend([fee, "_op", "_key"])
    for table, people in records.values():
        person = catalogue.get(table).person
        cols.setdefault(table, []).extend(["_op", "_key"] + ([person] if people and person else []))
    return cols
