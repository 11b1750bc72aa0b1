"""Reading a batch's files: which table a file is, its header against the catalogue, one string frame
per table (with _file and _row), optionally read ahead on a pool in processing order."""

from __future__ import annotations

import csv
import re
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa

from rhip.errors import Invalid, NotFound
from rhip.intake import formats
from rhip.registry import catalogue


@dataclass
class Upload:
    """One file of a batch as received (already on disk)."""

    path: Path
    filename: str
    table: str | None = None
    encoding: str | None = None
    fmt: str | None = None


def table_for_filename(filename: str) -> str:
    """The catalogue table a file name designates: the longest table name its stem starts with."""
    stem = Path(filename).name.lower()
    stem = re.sub(r"\.(csv|txt|parquet|jsonl|ndjson|json)$", "", stem)
    best = ""
    for name in catalogue.names():
        fits = stem == name or (stem.startswith(name) and not stem[len(name)].isalpha())
        if fits and len(name) > len(best):
            best = name
    if not best:
        raise NotFound(
            f"无法从文件名“{filename}”识别数据表；文件名应以数据表名开头（如 outpatient_visit_202503.csv），"
            f"或用 table 参数指明。可用的数据表：{'、'.join(catalogue.names())}",
            code="unknown-table",
        )
    return best


def check_header(ds: catalogue.Dataset, header: list[str], *, filename: str) -> None:
    """The columns must be the catalogue's: no unknown column, every required one present."""
    known = set(ds.field_names)
    unknown = [c for c in header if c not in known]
    missing = [f.name for f in ds.fields if f.required and f.name not in header]
    if unknown or missing:
        parts = []
        if missing:
            parts.append(f"缺少必填列：{'、'.join(missing)}")
        if unknown:
            parts.append(f"未知列：{'、'.join(unknown[:20])}")
        raise Invalid(
            f"{filename} 的表头与数据集“{ds.label}”（{ds.name}）不符：{'；'.join(parts)}",
            code="bad-header",
            missing=missing,
            unknown=unknown,
            table=ds.name,
        )


def peek_header(up: Upload) -> list[str] | None:
    """A file's column names read from its first line (CSV) or its footer (Parquet), without parsing
    the rest; None when the format has no header to peek at (JSON Lines)."""
    fmt = up.fmt or formats.sniff_format(up.path, filename=up.filename)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(up.path).names)
        except (OSError, pa.ArrowException):
            return None  # the full read reports what is wrong with the file
    if fmt != "csv":
        return None
    with up.path.open("rb") as f:
        first = f.readline(1 << 20)
    for enc in ("utf-8", "gb18030"):
        try:
            text = first.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        return None
    text = text.lstrip("\ufeff").rstrip("\r\n")
    try:
        return next(csv.reader([text]), [])
    except csv.Error:  # e.g. a bare carriage return inside the first line: the full read reports it
        return None


def check_headers_first(uploads: list[Upload]) -> None:
    """Every file's header against the catalogue before any file is parsed: a wrong header costs
    one line's reading, not the whole file's memory (a 600 MB CSV with a wrong header)."""
    for up in uploads:
        ds = get_dataset(up.table or table_for_filename(up.filename))
        header = peek_header(up)
        if header is not None:
            check_header(ds, [c.strip() for c in header], filename=up.filename)


def get_dataset(name: str) -> catalogue.Dataset:
    """A catalogue dataset, or NotFound with the code unknown-table."""
    try:
        return catalogue.get(name)
    except NotFound as exc:
        raise NotFound(exc.detail, code="unknown-table") from None


def read_uploads(uploads: list[Upload], *, workdir: Path) -> dict[str, pl.DataFrame]:
    """Read every file into one string frame per table (with _file and _row), checking headers."""
    per_table: dict[str, list[pl.DataFrame]] = {}
    for i, up in enumerate(uploads):
        ds = get_dataset(up.table or table_for_filename(up.filename))
        per_table.setdefault(ds.name, []).append(_read_one(ds, i, up, workdir))
    return {t: _concat(fs) for t, fs in per_table.items()}


def read_uploads_ahead(
    uploads: list[Upload], *, workdir: Path, pool: Executor
) -> dict[str, Future[pl.DataFrame]]:
    """Like `read_uploads`, but each table's files are read on `pool`, in processing order, so the next
    table is parsed while the previous one is validated and written (reading is a third of a batch's time).
    Unknown tables fail here, at once; a file's own error surfaces when `process` reaches its table."""
    per_table: dict[str, list[tuple[int, Upload]]] = {}
    for i, up in enumerate(uploads):
        name = get_dataset(up.table or table_for_filename(up.filename)).name
        per_table.setdefault(name, []).append((i, up))

    def read(name: str) -> pl.DataFrame:
        ds = get_dataset(name)
        return _concat([_read_one(ds, i, up, workdir) for i, up in per_table[name]])

    return {name: pool.submit(read, name) for name in table_order(list(per_table))}


def _read_one(ds: catalogue.Dataset, index: int, up: Upload, workdir: Path) -> pl.DataFrame:
    got = formats.read_file(up.path, filename=up.filename, encoding=up.encoding, workdir=workdir, fmt=up.fmt)
    check_header(ds, got.header, filename=up.filename)
    return frame_of(ds, got.table, file_index=index)


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")


def frame_of(ds: catalogue.Dataset, table: pa.Table, *, file_index: int = 0) -> pl.DataFrame:
    """A string frame in catalogue column order (absent optional columns as nulls), with _file and _row."""
    df = pl.from_arrow(table, rechunk=False)
    assert isinstance(df, pl.DataFrame)
    n = df.height
    cols = []
    for f in ds.fields:
        if f.name in df.columns:
            cols.append(pl.col(f.name).cast(pl.String))
        else:
            cols.append(pl.lit(None, pl.String).alias(f.name))
    return df.select(
        pl.lit(file_index, pl.Int32).alias("_file"),
        pl.int_range(1, n + 1, dtype=pl.Int64).alias("_row"),
        *cols,
    )


def table_order(tables: list[str]) -> list[str]:
    """Parents before children (by catalogue links), otherwise catalogue order."""
    present = set(tables)
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for link in catalogue.get(name).links:
            if link.dataset in present and link.dataset != name:
                visit(link.dataset)
        order.append(name)

    for name in catalogue.names():
        if name in present:
            visit(name)
    return order
