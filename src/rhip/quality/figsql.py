"""SQL builders for the data-collection figures over intake's lake tables (text plus bound parameters).

Each builder reads one table once and computes every aggregate a figure needs from it. The "current
record" rule (docs/metrics.md) is applied without ranking every row: intake stores a key's first version
with 修改标志 1 and each later version, always strictly newer, with 2 (updated) or 3 (revoked). So a key
that never changed has exactly one stored version, its current one; and for the few changed keys the
current version is the latest of their 2/3 versions. Only those few rows are ranked; the rest pass an
anti-join against the changed keys, and when a table has no changed key at all the join is left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rhip.clock import SHANGHAI
from rhip.lake.sql import Sql, ident, ranked_versions_sql
from rhip.quality.lakeread import data_table
from rhip.registry import catalogue

OP_NEW, OP_UPDATED, OP_REVOKED = 1, 2, 3
NO_MONTH = "0000-00"  # intake's _month for a record without any usable time
REALTIME_LAG = (
    catalogue.REALTIME_LAG
)  # a record is real-time when 数据采集时间 is at most this after its event
DAY_US = 86_400 * 1_000_000  # Asia/Shanghai has had no daylight saving since 1991: every day is 24 h


def event_column(table: str) -> str:
    """The column whose month is a record's event month (`_month`)."""
    return catalogue.get(table).event_time or "updated_at"


def _lag_us(lag: timedelta) -> int:
    return int(lag.total_seconds() * 1_000_000)


def _keep(pending: list[str]) -> tuple[str, dict[str, Any]]:
    """The filter hiding rows of uncommitted batches (none to hide: no filter, `_batch` is not read)."""
    if pending:
        return "NOT list_contains($pending, _batch)", {"pending": list(pending)}
    return "TRUE", {}


def changed_count_sql(table: str, *, pending: list[str], source: str | None = None) -> Sql:
    """How many stored versions of a table are corrections or revocations (修改标志 2 or 3).

    `source` is a relation holding at least all such rows of the table (by default the table itself).
    """
    keep, params = _keep(pending)
    t = ident(source or data_table(table))
    return Sql(
        f"SELECT count(*) FROM {t} WHERE _op >= $changed AND {keep}", {**params, "changed": OP_UPDATED}
    )


def current_sql(
    table: str,
    columns: list[str],
    *,
    where: str,
    params: dict[str, Any],
    pending: list[str],
    changes: bool | str,
) -> Sql:
    """Current records of a table passing `where` (a filter on system columns, e.g. on `_month`).

    `changes` says whether the table has any changed key (see `changed_count_sql`); without one every
    stored row with 修改标志 1 is current and no key is read. A string names the relation that holds the
    table's changed rows (a view over only the files that contain some).
    """
    keep, kp = _keep(pending)
    cols = ", ".join(ident(c) for c in dict.fromkeys(["org_code", "_month", *columns]))
    t = ident(data_table(table))
    if not changes:
        text = f"SELECT {cols} FROM {t} WHERE _op = $new AND ({where}) AND {keep}"
        return Sql(text, {**params, **kp, "new": OP_NEW})
    source = ident(changes) if isinstance(changes, str) else t
    ranked = ranked_versions_sql(source, f"{cols}, _key, _op", f"_op >= $changed AND {keep}")
    text = (
        f"WITH changed AS MATERIALIZED (SELECT * FROM ({ranked}) AS r WHERE _rn = 1) "
        f"SELECT {cols} FROM {t} ANTI JOIN (SELECT org_code, _key FROM changed) AS c USING (org_code, _key) "
        f"WHERE _op = $new AND ({where}) AND {keep} "
        f"UNION ALL SELECT {cols} FROM changed WHERE _op <> $revoked AND ({where})"
    )
    return Sql(text, {**params, **kp, "new": OP_NEW, "changed": OP_UPDATED, "revoked": OP_REVOKED})


def activity_sql(
    table: str,
    fee: str,
    *,
    month: str,
    pending: list[str],
    changes: bool | str,
    lag: timedelta = REALTIME_LAG,
) -> Sql:
    """Per institution: current records of the month, their fee total and how many are real-time."""
    event = event_column(table)
    inner = current_sql(
        table,
        ["collected_at", event, fee],
        where="_month = $month",
        params={"month": month},
        pending=pending,
        changes=changes,
    )
    # summed as exact decimals (to the micro-yuan), then back to a double: a sum of doubles depends on the
    # order the rows arrive in, which DuckDB's threads and a cluster's ranges change (the last bits differed
    # between one process and two workers); an exact sum is the same however the rows are split
    exact = f"CAST(sum(CAST({ident(fee)} AS DECIMAL(38, 6))) AS DOUBLE)"
    text = (
        f"SELECT org_code, count(*) AS n, coalesce({exact}, 0) AS amount, "
        f"count(*) FILTER (WHERE epoch_us(collected_at) - epoch_us({ident(event)}) BETWEEN 0 AND $lag) "
        f"AS n_realtime "
        f"FROM ({inner.text}) AS cur GROUP BY org_code"
    )
    return Sql(text, {**inner.params, "lag": _lag_us(lag)})


def records_sql(
    table: str, *, month: str, pending: list[str], changes: bool | str, distinct: str | None = None
) -> Sql:
    """Per institution: current records dated up to the end of the month (cumulative)."""
    inner = current_sql(
        table,
        [distinct] if distinct else [],
        where="_month <= $month AND _month <> $no_month",
        params={"month": month, "no_month": NO_MONTH},
        pending=pending,
        changes=changes,
    )
    what = f"count(DISTINCT {ident(distinct)})" if distinct else "count(*)"
    return Sql(f"SELECT org_code, {what} AS n FROM ({inner.text}) AS cur GROUP BY org_code", inner.params)


def history_sql(table: str, *, first_month: str, month: str, pending: list[str], changes: bool | str) -> Sql:
    """Per institution and event month: current records over a range of months (for trends)."""
    inner = current_sql(
        table,
        [],
        where="_month BETWEEN $first AND $month",
        params={"first": first_month, "month": month},
        pending=pending,
        changes=changes,
    )
    text = f"SELECT org_code, _month, count(*) AS n FROM ({inner.text}) AS cur GROUP BY org_code, _month"
    return Sql(text, inner.params)


def _epoch_us(t: datetime) -> int:
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _local_midnight(d: date) -> datetime:
    # the instant in UTC, the lake's own zone: a Shanghai-zoned parameter pushed down into a PyArrow
    # dataset scan (the reader's fallback) compares wrongly with the UTC columns and keeps no row
    return datetime(d.year, d.month, d.day, tzinfo=SHANGHAI).astimezone(UTC)


def realtime_days_sql(
    tables: list[str], *, first: date, last: date, pending: list[str], lag: timedelta = REALTIME_LAG
) -> Sql:
    """Per real-time form and institution: the days of the month with a stored real-time record, as a bit
    mask (bit i set: day i + 1 of the month; `mask_days` reads it).

    All stored versions count (an upload day is a day something was sent in real time). The bounds on
    数据采集时间 and on the event time are what the definition implies (collected in the month, event at most
    `lag` earlier), stated so that the reader skips row groups on their statistics.
    """
    keep, kp = _keep(pending)
    prev = (first - timedelta(days=1)).strftime("%Y-%m")
    start = _local_midnight(first)
    params: dict[str, Any] = {
        **kp,
        "month": first.strftime("%Y-%m"),
        "prev": prev,
        "start": start,
        "end": _local_midnight(last) + timedelta(days=1),
        "event_from": start - lag,
        "lag": _lag_us(lag),
        "start_us": _epoch_us(start),
        "day_us": DAY_US,
    }
    # the day's index counted from the month's first local midnight (Asia/Shanghai days are all 24 h long),
    # folded into one integer per group with bit_or: no timestamp built per row, no list of distinct dates
    # (about an eighth of the statement's time)
    day = "(epoch_us(collected_at) - $start_us) // $day_us"
    parts = []
    for i, table in enumerate(tables):
        event = ident(event_column(table))
        params[f"t{i}"] = table
        parts.append(
            f"SELECT $t{i} AS t, org_code, bit_or(CAST(1 AS BIGINT) << ({day})) AS days "
            f"FROM {ident(data_table(table))} "
            f"WHERE _month IN ($month, $prev) AND collected_at >= $start AND collected_at < $end "
            f"AND {event} >= $event_from AND epoch_us(collected_at) - epoch_us({event}) BETWEEN 0 AND $lag "
            f"AND {keep} GROUP BY org_code"
        )
    return Sql(" UNION ALL ".join(parts), params)


def mask_days(first: date, mask: int) -> set[date]:
    """The days of the month a `realtime_days_sql` bit mask names."""
    bits = int(mask)
    return {first + timedelta(days=i) for i in range(bits.bit_length()) if bits >> i & 1}


def limit_sql(tables: Iterable[str], *, month: str) -> Sql:
    """The performance limit: one scan of the month's rows of every table, counting rows per institution."""
    # per institution, the least any figure must read: a bare count(*) would be answered from the Parquet
    # footers without reading a row, which is not a scan
    parts = [
        f"SELECT org_code, count(*) AS n FROM {ident(data_table(t))} WHERE _month = $month GROUP BY org_code"
        for t in tables
    ]
    return Sql(f"SELECT sum(n) FROM ({' UNION ALL '.join(parts)})", {"month": month})


def columns_sql(columns: dict[str, list[str]], *, month: str) -> Sql:
    """A reference scan for the benchmark: the month's rows of every table per institution, decoding each
    named column once (its largest value) and computing nothing else."""
    # the values are folded into one hash per group so that no column can be pruned from the scan
    parts = [
        f"SELECT count(*) AS n, hash({', '.join(f'max({ident(c)})' for c in dict.fromkeys(cols))}) AS h "
        f"FROM {ident(data_table(t))} WHERE _month = $month GROUP BY org_code"
        for t, cols in columns.items()
        if cols
    ]
    return Sql(f"SELECT sum(n), bit_xor(h) FROM ({' UNION ALL '.join(parts)})", {"month": month})
