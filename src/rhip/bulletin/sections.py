"""The section interface: what a domain's `stats.py` hands the bulletin, as plain data.

Domains sit below the bulletin in the layering (bulletin → domains), so they import nothing from here:
a provider is any module `rhip.<domain>.stats` with a function

    bulletin_sections(*, session, lake, month) -> list[dict]

returning sections as plain dicts (JSON-like), which `parse_section` checks and turns into the
dataclasses below::

    {"key": "quality.districts", "title": "南京市卫生信息平台数据采集情况（区）", "order": 900,
     "paragraphs": ["..."],                       # text before the tables (optional)
     "tables": [{"title": "2025 年 3 月……（区）", "sheet": "数据采集（区）",
                 "columns": [{"title": "接入单位"}, {"title": "人次", "group": "门急诊信息", "kind": "int"}],
                 "rows": [["玄武区", 100733]], "notes": ["（截止……）"]}],
     "charts": [{"title": "...", "png": b"..."}]}  # optional

Column kinds: text, int, decimal2 (two decimals), percent (a ratio 0–1 printed as 89.10%), ratio (text
such as “11/12”). A cell may also be a string (e.g. "/" or "未获取卫统数据") in any column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, cast

from rhip.errors import Invalid

Kind = Literal["text", "int", "decimal2", "percent", "ratio"]
KINDS: tuple[str, ...] = ("text", "int", "decimal2", "percent", "ratio")
Cell = str | int | float | None


@dataclass(frozen=True)
class Column:
    """One column: its header, an optional upper header shared with neighbours, and its kind."""

    title: str
    group: str | None = None
    kind: Kind = "text"


@dataclass(frozen=True)
class Table:
    """One statistics table of a section."""

    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    notes: tuple[str, ...] = ()
    sheet: str = ""

    @property
    def has_groups(self) -> bool:
        """Whether the header has two rows."""
        return any(c.group for c in self.columns)

    def header_groups(self) -> list[tuple[str | None, int, Column | None]]:
        """The upper header row: (group title or None, span, the column when ungrouped)."""
        out: list[tuple[str | None, int, Column | None]] = []
        for col in self.columns:
            if col.group and out and out[-1][0] == col.group:
                g, span, _ = out[-1]
                out[-1] = (g, span + 1, None)
            elif col.group:
                out.append((col.group, 1, None))
            else:
                out.append((None, 1, col))
        return out


@dataclass(frozen=True)
class Chart:
    """A chart image (PNG bytes) with its caption."""

    title: str
    png: bytes


@dataclass(frozen=True)
class Section:
    """One part of the bulletin: text, tables and charts from one domain."""

    key: str
    title: str
    order: int = 500
    paragraphs: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    charts: tuple[Chart, ...] = ()
    source: str = ""


def format_cell(value: Cell, kind: str) -> str:
    """A cell as printed in the bulletin (HTML and PDF)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if kind == "int":
        return str(int(value))
    if kind == "decimal2":
        return f"{float(value):.2f}"
    if kind == "percent":
        return f"{float(value) * 100:.2f}%"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _need(raw: dict[str, Any], key: str, where: str) -> Any:
    if key not in raw:
        raise Invalid(f"简报栏目格式错误：{where} 缺少“{key}”", code="bad-section")
    return raw[key]


def _column(raw: Any, where: str) -> Column:
    if isinstance(raw, str):
        return Column(title=raw)
    if not isinstance(raw, dict):
        raise Invalid(f"简报栏目格式错误：{where} 的列必须是字符串或对象", code="bad-section")
    kind = str(raw.get("kind", "text"))
    if kind not in KINDS:
        raise Invalid(f"简报栏目格式错误：{where} 的列类型“{kind}”未知", code="bad-section")
    group = raw.get("group")
    return Column(
        title=str(_need(raw, "title", where)), group=str(group) if group else None, kind=cast(Kind, kind)
    )


def _cell(value: Any, where: str) -> Cell:
    if value is None or isinstance(value, str | int | float):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Invalid(f"简报栏目格式错误：{where} 含不能显示的单元格 {value!r}", code="bad-section") from None


def _table(raw: Any, where: str) -> Table:
    if not isinstance(raw, dict):
        raise Invalid(f"简报栏目格式错误：{where} 的表格必须是对象", code="bad-section")
    title = str(_need(raw, "title", where))
    columns = tuple(_column(c, f"{where}·{title}") for c in _need(raw, "columns", where))
    rows = []
    for i, r in enumerate(_need(raw, "rows", where)):
        cells = tuple(_cell(v, f"{where}·{title}") for v in r)
        if len(cells) != len(columns):
            raise Invalid(
                f"简报栏目格式错误：{where}·{title} 第 {i + 1} 行有 {len(cells)} 个单元格，"
                f"应为 {len(columns)} 个",
                code="bad-section",
            )
        rows.append(cells)
    sheet = str(raw.get("sheet") or title)
    return Table(
        title=title,
        columns=columns,
        rows=tuple(rows),
        notes=tuple(str(n) for n in raw.get("notes", ())),
        sheet=sheet,
    )


def parse_section(raw: Any, *, source: str = "") -> Section:
    """Check a provider's plain-data section and return it typed (Invalid when malformed)."""
    if isinstance(raw, Section):
        return raw
    if not isinstance(raw, dict):
        raise Invalid(f"简报栏目格式错误：{source} 返回的栏目必须是 dict", code="bad-section")
    key = str(_need(raw, "key", source))
    where = f"{source}:{key}"
    charts = []
    for c in raw.get("charts", ()):
        png = _need(c, "png", where)
        if not isinstance(png, bytes | bytearray):
            raise Invalid(f"简报栏目格式错误：{where} 的图表必须是 PNG 字节", code="bad-section")
        charts.append(Chart(title=str(c.get("title", "")), png=bytes(png)))
    return Section(
        key=key,
        title=str(_need(raw, "title", where)),
        order=int(raw.get("order", 500)),
        paragraphs=tuple(str(p) for p in raw.get("paragraphs", ())),
        tables=tuple(_table(t, where) for t in raw.get("tables", ())),
        charts=tuple(charts),
        source=source,
    )


@dataclass
class Bulletin:
    """One issue: its month, masthead fields and sections in order."""

    month: str  # statistics month, YYYY-MM
    issue_year: int
    issue_no: int  # 期号 within the year
    issue_total: int  # 总期号
    published_on: str  # e.g. 2025年4月25日
    publisher: str = "南京市卫生信息中心"
    name: str = "南京卫生信息化简报"
    sections: list[Section] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def issue_label(self) -> str:
        """“2025年第4期（总第158期）”."""
        return f"{self.issue_year}年第{self.issue_no}期（总第{self.issue_total}期）"

    @property
    def month_label(self) -> str:
        """“2025 年 3 月”."""
        y, m = self.month.split("-")
        return f"{int(y)} 年 {int(m)} 月"
