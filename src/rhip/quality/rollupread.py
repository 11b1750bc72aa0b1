"""Reading intake's rollups (SQL tables `intake_activity`, `intake_realtime_days`, `intake_people_first`,
kept at every batch's commit; intake/rollup.py documents them) into the counts the figures are made of.

A month's figures read a few rows per institution and table here instead of scanning the lake; `recount`
computes the same `Counts` from the lake's records, which `rhip quality verify` compares with these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Double, Integer, String, column, func, select, table as sql_table
from sqlalchemy.orm import Session

NO_MONTH = "0000-00"  # intake's _month for a record without any usable time

_ACTIVITY = sql_table(
    "intake_activity",
    column("table_name", String),
    column("month", String),
    column("institution_code", String),
    column("n", Integer),
    column("amount", Double),
    column("n_realtime", Integer),
)
_DAYS = sql_table(
    "intake_realtime_days",
    column("table_name", String),
    column("month", String),
    column("institution_code", String),
    column("days", Integer),
)
_FIRST = sql_table(
    "intake_people_first",
    column("table_name", String),
    column("month", String),
    column("institution_code", String),
    column("n", Integer),
)


@dataclass
class Counts:
    """What the lake's records contribute to a month's figures, per institution code."""

    days: list[tuple[str, str, int]] = field(default_factory=list)  # (form, org, bit mask of days)
    activity: dict[str, list[tuple[str, int, float, int]]] = field(default_factory=dict)  # table → rows
    records: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # figure → (org, n)


def counts(
    session: Session,
    *,
    month: str,
    forms: list[str],
    activity: Iterable[str],
    records: dict[str, tuple[str, bool]],
) -> Counts:
    """The month's counts from the rollups: real-time days of `forms`, current records with amount and
    real-time share of the `activity` tables, and the cumulative `records` (figure → (table, whether it
    counts distinct persons))."""
    out = Counts()
    d = _DAYS.c
    rows = session.execute(
        select(d.table_name, d.institution_code, d.days).where(
            d.month == month, d.table_name.in_(forms), d.days != 0
        )
    )
    out.days = [(str(t), str(org), int(mask)) for t, org, mask in rows]
    a = _ACTIVITY.c
    for table in activity:
        got = session.execute(
            select(a.institution_code, a.n, a.amount, a.n_realtime).where(
                a.table_name == table, a.month == month, a.n != 0
            )
        )
        out.activity[table] = [(str(org), int(n), float(amount), int(rt)) for org, n, amount, rt in got]
    f = _FIRST.c
    for what, (table, people) in records.items():
        src = _FIRST if people else _ACTIVITY
        c = f if people else a
        summed = session.execute(
            select(c.institution_code, func.sum(c.n))
            .select_from(src)
            .where(c.table_name == table, c.month <= month, c.month != NO_MONTH)
            .group_by(c.institution_code)
        ).all()
        out.records[what] = [(str(org), int(n)) for org, n in summed if n]
    return out


def history(session: Session, *, table: str, first_month: str, month: str) -> list[tuple[str, str, int]]:
    """Current records per institution and event month over a range of months (for trends)."""
    a = _ACTIVITY.c
    rows = session.execute(
        select(a.institution_code, a.month, a.n).where(
            a.table_name == table, a.month >= first_month, a.month <= month, a.n != 0
        )
    )
    return [(str(org), str(m), int(n)) for org, m, n in rows]
