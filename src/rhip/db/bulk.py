"""Bulk rows into a table on the session's connection: COPY on PostgreSQL, one driver-level executemany
on SQLite. For jobs that move hundreds of thousands of rows, where an ORM executemany is the cost."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection


def fill(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Append rows (tuples in `columns` order) to `table`; names are ours, never user input."""
    cols = ", ".join(f'"{c}"' for c in columns)
    if conn.dialect.name == "postgresql":
        with _raw(conn).cursor() as cur:
            _copy(cur, table, cols, rows)
        return
    marks = ", ".join("?" for _ in columns)
    _many(conn, f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)


def _raw(conn: Connection) -> Any:
    """The driver's own connection under the session's (same transaction)."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    return raw


def _copy(cur: Any, table: str, cols: str, rows: Iterable[Sequence[Any]]) -> None:
    """The rows COPYed into `table` on psycopg's cursor."""
    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _many(conn: Connection, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """One driver-level executemany of `sql` over the rows."""
    cur = _raw(conn).cursor()
    try:
        # streamed to the driver, not listed first: a million live tuples set off repeated full GCs
        cur.executemany(sql, rows)
    finally:
        cur.close()


def upsert(
    conn: Connection, table: str, columns: Sequence[str], key: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert rows, or replace the row with the same `key` (a unique constraint of `table`); rows hold no
    two with one key. PostgreSQL: COPY into a temporary table, then one INSERT … ON CONFLICT; SQLite: the
    driver's executemany of the INSERT … ON CONFLICT."""
    cols = ", ".join(f'"{c}"' for c in columns)
    keys = ", ".join(f'"{c}"' for c in key)
    sets = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in key)
    conflict = f"ON CONFLICT ({keys}) DO UPDATE SET {sets}"
    if conn.dialect.name == "postgresql":
        stage = f"stage_{table}"
        with _raw(conn).cursor() as cur:
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DROP "
                f"AS SELECT {cols} FROM {table} WITH NO DATA"
            )
            _copy(cur, stage, cols, rows)
            cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} {conflict}")
            cur.execute(f"TRUNCATE {stage}")
        return
    marks = ", ".join("?" for _ in columns)
    _many(conn, f"INSERT INTO {table} ({cols}) VALUES ({marks}) {conflict}", rows)


def delete_keys(conn: Connection, table: str, key: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Delete the rows whose `key` columns equal each given tuple (one indexed lookup each)."""
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    where = " AND ".join(f'"{c}" = {mark}' for c in key)
    _many(conn, f"DELETE FROM {table} WHERE {where}", rows)
