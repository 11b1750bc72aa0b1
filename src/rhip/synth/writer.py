"""Streaming CSV files: UTF-8 through pyarrow, GBK by re-encoding each chunk; sha256 and row counts."""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv

_OPTIONS = pcsv.WriteOptions(include_header=False, quoting_style="none", batch_size=65536)


@dataclass
class FileEntry:
    """One written file as the manifest lists it."""

    path: str  # relative to the output folder, with forward slashes
    org_code: str
    table: str
    encoding: str  # "utf-8" or "gbk"
    rows: int
    bytes: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        """The entry as a JSON-ready dict."""
        return asdict(self)


class CsvFile:
    """A CSV file written chunk by chunk; every column is text, nulls become empty cells."""

    def __init__(self, root: Path, rel: str, columns: list[str], *, encoding: str, org_code: str, table: str):
        self.root, self.rel, self.columns = root, rel, columns
        self.encoding, self.org_code, self.table = encoding, org_code, table
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = path.open("wb")
        self._sha = hashlib.sha256()
        self.rows = 0
        self.bytes = 0
        self._put((",".join(columns) + "\n").encode("utf-8"))

    def _put(self, data: bytes) -> None:
        if self.encoding == "gbk":
            data = data.decode("utf-8").encode("gbk")
        self._f.write(data)
        self._sha.update(data)
        self.bytes += len(data)

    def write(self, table: pa.Table) -> None:
        """Append rows (columns in the file's order, all strings)."""
        if table.num_rows == 0:
            return
        table = table.select(self.columns)
        buf = io.BytesIO()
        pcsv.write_csv(table, buf, _OPTIONS)
        self._put(buf.getvalue())
        self.rows += table.num_rows

    def close(self) -> FileEntry:
        """Close the file and describe it."""
        self._f.close()
        return FileEntry(
            path=self.rel,
            org_code=self.org_code,
            table=self.table,
            encoding=self.encoding,
            rows=self.rows,
            bytes=self.bytes,
            sha256=self._sha.hexdigest(),
        )


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
