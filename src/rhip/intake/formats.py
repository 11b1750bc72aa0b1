"""Upload formats: sniffing, encoding detection (UTF-8, GBK/GB18030), reading CSV, Parquet and JSON Lines.

Every reader returns an Arrow table whose columns are all strings, so that one set of vectorised rules
checks every way in. Bad input raises a domain error with a precise Chinese message.
"""

from __future__ import annotations

import codecs
import itertools
import mmap
import operator
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from rhip.errors import BadRequest, Invalid, UnsupportedMedia

FORMATS = ("csv", "parquet", "jsonl")
ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "gbk": "gb18030", "gb2312": "gb18030", "gb18030": "gb18030"}
# four or more UTF-8 encoded CJK characters in a row: GBK text essentially never looks like this
_UTF8_CJK_RUN = re.compile(rb"(?:[\xe4-\xe9][\x80-\xbf]{2}){4,}")
_CHUNK = 1 << 22
_MB = rb"(?:[\x00-\x09\x0b-\x7f]|[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3})"
_CJK3 = rb"[\xe4-\xe9][\x80-\xbf]{2}"
# a whole line of valid UTF-8 holding at least two 3-byte Chinese characters: GBK text (2-byte characters,
# some of which look like 2-byte UTF-8 sequences) practically never does
_UTF8_LINE = re.compile(rb"^" + _MB + rb"*?" + _CJK3 + _MB + rb"*?" + _CJK3 + _MB + rb"*\r?$", re.M)


@dataclass
class ReadResult:
    """An upload file read into string columns."""

    table: pa.Table
    header: list[str]
    format: str
    encoding: str | None


def sniff_format(path: Path, *, filename: str = "") -> str:
    """The file's format from its first bytes (and name): csv, parquet or jsonl; refuses archives."""
    with path.open("rb") as f:
        head = f.read(8192)
    name = filename.lower()
    if not head:
        raise Invalid(f"文件为空：{filename or path.name}", code="empty-file")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        what = "Excel 工作簿" if name.endswith((".xlsx", ".xls")) else "ZIP 压缩包"
        raise UnsupportedMedia(
            f"{filename or path.name} 是{what}，"
            "请解压或另存为 CSV（UTF-8 或 GBK）、Parquet、JSON Lines 后上传",
            code="archive-not-accepted",
        )
    if head.startswith(b"\x1f\x8b") or head.startswith(b"7z\xbc\xaf") or head.startswith(b"Rar!"):
        raise UnsupportedMedia(
            f"{filename or path.name} 是压缩文件，请解压后上传", code="archive-not-accepted"
        )
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"%PDF") or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise UnsupportedMedia(
            f"{filename or path.name} 不是数据文件（PDF 或旧版 Office 文档）", code="not-data"
        )
    if b"\x00" in head:
        raise UnsupportedMedia(
            f"{filename or path.name} 含有二进制内容，不是 CSV/JSON Lines 文本文件", code="binary-file"
        )
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{") or name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if stripped.startswith(b"<"):
        raise UnsupportedMedia(
            f"{filename or path.name} 是 XML/HTML；CDA 文档请上传到 /api/v1/intake/cda", code="not-data"
        )
    return "csv"


def _line_of(mm: Any, pos: int) -> int:
    return int(mm[:pos].count(b"\n")) + 1


def detect_encoding(path: Path, declared: str | None = None, *, check_gbk: bool = True) -> str:
    """The CSV's encoding (utf-8 or gb18030), checking a declared one; refuses mixed encodings.

    `check_gbk=False` skips the full GB18030 decoding pass, for a caller that transcodes the file next
    (`transcode_to_utf8` refuses undecodable bytes with the same error).
    """
    want = None
    if declared:
        want = ENCODINGS.get(declared.strip().lower())
        if want is None:
            raise Invalid(f"不支持的编码：{declared}（可选 UTF-8、GBK、GB18030）", code="unknown-encoding")
    size = path.stat().st_size
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else _Empty() as mm:
        bad = _first_invalid_utf8(mm)
        if bad is None:
            has_cjk = _UTF8_CJK_RUN.search(mm) is not None
            if want == "gb18030" and has_cjk:
                raise Invalid(
                    "声明的编码是 GBK，但文件实际是 UTF-8 编码；请更正声明或不声明（自动识别）",
                    code="wrong-encoding",
                )
            return "utf-8"
        line = _line_of(mm, bad)
        if want == "utf-8":
            raise Invalid(
                f"声明的编码是 UTF-8，但第 {line} 行不是有效的 UTF-8（可能是 GBK 编码）",
                code="wrong-encoding",
                line=line,
            )
        # a whole line with non-ASCII text that is valid UTF-8 before the first bad byte, or a long run of
        # UTF-8 Chinese after it: GBK text practically never looks like either
        line_start = mm.rfind(b"\n", 0, bad)
        other = _find_utf8_line(mm, 0, max(line_start, 0))
        if other is None:
            other = _find_utf8_line(mm, bad, len(mm))
        if other is not None:
            raise Invalid(
                f"文件混用了多种编码：第 {other} 行是 UTF-8，第 {line} 行不是；请整个文件使用同一种编码",
                code="mixed-encoding",
                line=line,
            )
        if not check_gbk:
            return "gb18030"
        decoder = codecs.getincrementaldecoder("gb18030")()
        for start in range(0, len(mm), _CHUNK):
            try:
                decoder.decode(mm[start : start + _CHUNK], final=start + _CHUNK >= len(mm))
            except UnicodeDecodeError as exc:
                at = _line_of(mm, start + exc.start)
                raise Invalid(
                    f"第 {at} 行既不是 UTF-8 也不是 GBK/GB18030 编码", code="bad-encoding", line=at
                ) from None
        return "gb18030"


_CJK_PAIR = re.compile("[\u4000-\u9fff].*[\u4000-\u9fff]")


def _find_utf8_line(mm: Any, start: int, end: int) -> int | None:
    """Line number (1-based, in the file) of the first whole line in mm[start:end] that is valid UTF-8 with
    two or more Chinese characters (U+4000–U+9FFF, i.e. 3-byte sequences led by E4–E9), or None.

    Same test as `_UTF8_LINE`, done in C: the slice is decoded once with errors="replace", so a line is valid
    UTF-8 exactly when it holds no U+FFFD (a newline byte never sits inside a multi-byte sequence); only
    such lines meet the regex. A line cut at `start` is skipped, as `^` does not match mid-line.
    """
    if start >= end:
        return None
    lines = mm[start:end].decode("utf-8", errors="replace").split("\n")
    first = 0
    if start > 0 and mm[start - 1 : start] != b"\n":
        first = 1
    base = _line_of(mm, start)
    # the U+FFFD test runs in C over every line (map/compress); Python only sees the clean ones
    clean = itertools.compress(
        range(len(lines)), map(operator.not_, map(operator.contains, lines, itertools.repeat("\ufffd")))
    )
    for i in clean:
        line = lines[i]
        if i >= first and not line.isascii() and _CJK_PAIR.search(line):
            return base + i
    return None


class _Empty:
    def __enter__(self) -> bytes:
        return b""

    def __exit__(self, *exc: object) -> None:
        return None


def _first_invalid_utf8(mm: Any) -> int | None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    n = len(mm)
    for start in range(0, n, _CHUNK):
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(mm[start : start + _CHUNK], final=start + _CHUNK >= n)
        except UnicodeDecodeError as exc:
            return max(0, start - pending + exc.start)
    return None


def transcode_to_utf8(src: Path, dst: Path, encoding: str) -> None:
    """Re-encode a file to UTF-8 chunk by chunk; undecodable bytes raise Invalid `bad-encoding`."""
    decoder = codecs.getincrementaldecoder(encoding)()
    lines = 0
    with src.open("rb") as fin, dst.open("wb") as fout:
        while True:
            block = fin.read(_CHUNK)
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                pending = len(decoder.getstate()[0])
                at = lines + block[: max(0, exc.start - pending)].count(b"\n") + 1
                raise Invalid(
                    f"第 {at} 行既不是 UTF-8 也不是 GBK/GB18030 编码", code="bad-encoding", line=at
                ) from None
            fout.write(text.encode("utf-8"))
            if not block:
                break
            lines += block.count(b"\n")


def read_header(path: Path) -> list[str]:
    """The CSV header's column names (UTF-8 file)."""
    with path.open("rb") as f:
        first = f.readline(1 << 20)
    text = first.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
    return [c.strip() for c in text.split(",")]


def read_csv(path: Path, *, filename: str = "", encoding: str | None = None, workdir: Path) -> ReadResult:
    """Read a CSV (any accepted encoding) into string columns; malformed rows raise Invalid."""
    declared = ENCODINGS.get(encoding.strip().lower()) if encoding else None
    if encoding and declared is None:
        raise Invalid(f"不支持的编码：{encoding}（可选 UTF-8、GBK、GB18030）", code="unknown-encoding")
    enc = detect_encoding(path, encoding) if declared == "gb18030" else "utf-8"
    if enc == "utf-8" and declared is None and not _head_is_utf8(path):
        # GBK text in the first MiB: skip the UTF-8 parse that would fail anyway
        enc = detect_encoding(path, encoding, check_gbk=False)
    source = path
    if enc == "utf-8":
        try:
            table, header = _read_utf8_csv(source)
        except _NotUtf8:
            enc = detect_encoding(path, encoding, check_gbk=False)
    if enc != "utf-8":
        source = workdir / (path.name + ".utf8")
        transcode_to_utf8(path, source, enc)
        try:
            table, header = _read_utf8_csv(source)
        except _NotUtf8:  # pragma: no cover - the transcoder wrote UTF-8
            raise Invalid("文件编码无法识别", code="bad-encoding") from None
    _check_lines(source, table.num_rows)
    return ReadResult(table=table, header=header, format="csv", encoding="gbk" if enc != "utf-8" else "utf-8")


def _head_is_utf8(path: Path, size: int = 1 << 20) -> bool:
    """Whether the file's first `size` bytes are valid UTF-8 (a sequence cut at the end is fine)."""
    with path.open("rb") as f:
        head = f.read(size)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


class _NotUtf8(Exception):
    pass


def _read_utf8_csv(path: Path) -> tuple[pa.Table, list[str]]:
    header = read_header(path)
    if not header or header == [""]:
        raise Invalid("CSV 没有表头行", code="no-header")
    seen: set[str] = set()
    dups = sorted({c for c in header if c in seen or seen.add(c)})  # type: ignore[func-returns-value]
    if dups:
        raise Invalid(f"表头中列名重复：{'、'.join(dups)}", code="duplicate-columns", columns=dups)
    bad_rows: list[tuple[int | None, str, int, int]] = []

    def on_invalid(row: Any) -> str:
        try:
            text = row.text
        except UnicodeDecodeError:  # pyarrow decodes the row before the encoding check has run
            text = "（非 UTF-8 文本）"
        bad_rows.append((row.number, text, row.expected_columns, row.actual_columns))
        return "error"

    try:
        table = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(column_names=header, skip_rows=1, block_size=1 << 24),
            parse_options=pcsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        msg = str(exc)
        if "invalid UTF8" in msg:
            raise _NotUtf8 from None
        if bad_rows:
            number, text, expected, actual = bad_rows[0]
            where = f"第 {number} 行" if number else f"记录“{text[:60]}”"
            raise Invalid(
                f"CSV 格式错误：{where}应有 {expected} 列，实际 {actual} 列（文件可能被截断或分隔符有误）",
                code="malformed-csv",
                line=number,
            ) from None
        raise Invalid(f"CSV 无法解析：{msg[:200]}", code="malformed-csv") from None
    return table, header


def _check_lines(path: Path, rows: int) -> None:
    """Catch an unclosed quote that swallowed following lines (the row count falls short)."""
    size = path.stat().st_size
    if not size:
        return
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        if mm.find(b'"') < 0:
            # no quote anywhere: every line break ends a record, nothing can have been swallowed (and a
            # search for one byte is many times faster than counting every line break)
            return
        lines = _count_newlines(mm) + (0 if mm[size - 1 : size] == b"\n" else 1)
        blank = 0
        if rows + 1 < lines and size < (1 << 26):
            # only a short count needs the blank lines (which the parser skips) counted too
            data = mm[:]
            blank = data.count(b"\n\n") + data.count(b"\n\r\n")
            del data
    if rows + 1 < lines - blank:
        raise Invalid(
            f"CSV 格式错误：文件有 {lines - blank} 行，只解析出 {rows} 条记录（可能有未闭合的引号）",
            code="malformed-csv",
        )


def _count_newlines(mm: Any) -> int:
    total = 0
    for start in range(0, len(mm), _CHUNK):
        total += mm[start : start + _CHUNK].count(b"\n")
    return total


def _to_strings(table: pa.Table) -> pa.Table:
    cols = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        t = col.type
        if pa.types.is_string(t):
            cols.append(col)
        elif pa.types.is_large_string(t) or pa.types.is_string_view(t):
            cols.append(col.cast(pa.string()))
        elif pa.types.is_timestamp(t):
            cols.append(pc.strftime(col, format="%Y-%m-%d %H:%M:%S"))
        elif pa.types.is_date(t):
            cols.append(pc.strftime(col.cast(pa.date32()), format="%Y-%m-%d"))
        elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            cols.append(col.cast(pa.string()))
        elif pa.types.is_boolean(t):
            cols.append(pc.if_else(col, "1", "0"))
        else:
            raise Invalid(f"列 {name} 的类型 {t} 无法作为数据集字段读取", code="bad-column-type")
    return pa.table(cols, names=[str(n).strip() for n in table.column_names])


def read_parquet(path: Path, *, filename: str = "") -> ReadResult:
    """Read a Parquet file into string columns."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise Invalid(
            f"Parquet 文件无法读取（可能被截断）：{str(exc)[:160]}", code="malformed-parquet"
        ) from None
    table = _to_strings(table)
    return ReadResult(table=table, header=list(table.column_names), format="parquet", encoding=None)


def read_jsonl(path: Path, *, filename: str = "") -> ReadResult:
    """Read JSON Lines (one object per line) into string columns."""
    import polars as pl

    try:
        df = pl.read_ndjson(path, infer_schema_length=None)
    except Exception as exc:  # polars raises several ComputeError flavours for bad JSON
        raise Invalid(
            f"JSON Lines 无法解析：{str(exc).splitlines()[0][:160]}", code="malformed-jsonl"
        ) from None
    for name, dtype in df.schema.items():
        if isinstance(dtype, pl.List | pl.Struct | pl.Array):
            raise Invalid(f"JSON Lines 字段 {name} 不是简单值（对象或数组）", code="malformed-jsonl")
    df = df.select(pl.all().cast(pl.String))
    table = df.to_arrow()
    table = pa.table([c.cast(pa.string()) for c in table.columns], names=table.column_names)
    return ReadResult(table=table, header=list(table.column_names), format="jsonl", encoding="utf-8")


def read_file(
    path: Path, *, filename: str = "", encoding: str | None = None, workdir: Path, fmt: str | None = None
) -> ReadResult:
    """Read any accepted upload file into string columns."""
    fmt = fmt or sniff_format(path, filename=filename)
    if fmt not in FORMATS:
        raise BadRequest(f"不支持的格式：{fmt}（可选 csv、parquet、jsonl）", code="unknown-format")
    if fmt == "parquet":
        return read_parquet(path, filename=filename)
    if fmt == "jsonl":
        return read_jsonl(path, filename=filename)
    return read_csv(path, filename=filename, encoding=encoding, workdir=workdir)


def table_from_records(records: list[dict[str, Any]]) -> pa.Table:
    """String columns from JSON records (real-time forms, FHIR and CDA mappings)."""
    names: dict[str, None] = {}
    for rec in records:
        if not isinstance(rec, dict):
            raise Invalid("每条记录必须是 JSON 对象", code="not-an-object")
        names.update(dict.fromkeys(rec))
    # built by Polars, not pyarrow: pa.array first asks whether its input is a pandas object, importing
    # pandas (~1 s, once per process: a demo's first FHIR Bundle or CDA document)
    cols: list[pl.Series] = []
    for name in names:
        values = [rec.get(name) for rec in records]
        kinds = set(map(type, values))
        if kinds <= {str, type(None)}:
            # the common case (mapped and JSON text fields): the empty string becomes null
            col = pl.Series(str(name), values, dtype=pl.String)
            cols.append(pl.select(pl.when(col != "").then(col)).to_series().alias(str(name)))
            continue
        out: list[str | None] = []
        for v in values:
            if v is None or v == "":
                out.append(None)
            elif isinstance(v, bool):
                out.append("1" if v else "0")
            elif isinstance(v, int | float | str):
                out.append(str(v))
            else:
                raise Invalid(f"字段 {name} 的值必须是字符串或数字", code="bad-value")
        cols.append(pl.Series(str(name), out, dtype=pl.String))
    return pl.DataFrame(cols).to_arrow()
