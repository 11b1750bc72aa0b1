"""DuckDB adapter: runs `Sql` over the lake's Delta tables, registered as views by name."""

from __future__ import annotations

import re
from typing import Any

import duckdb
import pyarrow as pa

from rhip.lake.sql import Sql, ident
from rhip.lake.store import Lake

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Duck:
    """An in-process DuckDB connection that sees every lake table under its own name."""

    def __init__(self, lake: Lake, *, threads: int | None = None) -> None:
        self.lake = lake
        self.con = duckdb.connect(":memory:")
        if threads:
            self.con.execute(f"SET threads={int(threads)}")
        self._registered: dict[str, int] = {}

    def _register(self, table: str) -> None:
        dt = self.lake.dataset(table)
        version = int(dt.version())
        if self._registered.get(table) == version:
            return
        self.con.register(table, dt.to_pyarrow_dataset())
        self._registered[table] = version

    def refresh(self) -> None:
        """(Re)register every lake table at its latest version."""
        for table in self.lake.tables():
            self._register(table)

    def _refresh_for(self, text: str) -> None:
        """Register, at their latest version, only the lake tables the statement names."""
        words = set(_WORD.findall(text))
        for table in self.lake.tables():
            if table in words:
                self._register(table)

    def query(self, sql: Sql) -> pa.Table:
        """Run a statement with bound parameters and return an Arrow table."""
        self._refresh_for(sql.text)
        return self.con.execute(sql.text, sql.params).to_arrow_table()

    def rows(self, sql: Sql) -> list[tuple[Any, ...]]:
        """Run a statement and return Python rows."""
        self._refresh_for(sql.text)
        return self.con.execute(sql.text, sql.params).fetchall()

    def count(self, table: str) -> int:
        """Row count of a lake table through DuckDB."""
        return int(self.rows(Sql(f"SELECT count(*) FROM {ident(table)}"))[0][0])

    def close(self) -> None:
        """Close the connection."""
        self.con.close()
