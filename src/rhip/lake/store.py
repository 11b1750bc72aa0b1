"""Delta tables in the lake folder: one folder per table, partitioned by month."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from rhip.lake.sql import ident


class Lake:
    """The lake root: `root/<table>/` is a Delta table."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, table: str) -> Path:
        """The folder of a table (the name must be a plain identifier)."""
        ident(table)
        return self.root / table

    def exists(self, table: str) -> bool:
        """Whether the table has been written at least once."""
        return (self.path(table) / "_delta_log").is_dir()

    def tables(self) -> list[str]:
        """Names of the tables in the lake."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "_delta_log").is_dir())

    def write(
        self,
        table: str,
        data: pa.Table,
        *,
        partition_by: list[str] | None = None,
        mode: Literal["append", "overwrite"] = "append",
    ) -> int:
        """Commit `data` to the table in one Delta transaction; returns the new table version."""
        self.root.mkdir(parents=True, exist_ok=True)
        write_deltalake(str(self.path(table)), data, mode=mode, partition_by=partition_by)
        return int(DeltaTable(str(self.path(table))).version())

    def dataset(self, table: str) -> DeltaTable:
        """The Delta table handle."""
        return DeltaTable(str(self.path(table)))

    def count(self, table: str) -> int:
        """Number of rows in the table's current version (0 when absent)."""
        if not self.exists(table):
            return 0
        return int(self.dataset(table).to_pyarrow_dataset().count_rows())
