"""Bulk rows into a table on the session's connection: COPY on PostgreSQL, one driver-level executemany
on SQLite. For jobs that move hundreds of thousands of rows, where an ORM executemany is the cost."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection


def fill(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Append rows (tuples in `columns` order) to `table`; names are ours, never user input."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cols = ", ".join(f'"{c}"' for c in columns)
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    cur = raw.cursor()
    try:
        # streamed to the driver, not listed first: a million live tuples set off repeated full GCs
        cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)  # type: ignore[arg-type]
    finally:
        cur.close()
