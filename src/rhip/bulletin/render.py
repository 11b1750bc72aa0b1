"""Rendering an issue: HTML (Jinja2), PDF (WeasyPrint, A4, CJK font, running headers) and XLSX (openpyxl)."""

from __future__ import annotations

import base64
import io
import re
import sys
import threading
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from openpyxl import Workbook
from openpyxl.drawing.image import Image as XlImage
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from rhip.bulletin.sections import Bulletin, Table, format_cell

TEMPLATES = Path(__file__).parent / "templates"
FORMATS = ("html", "pdf", "xlsx")
_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
_env.globals.update(fmt=format_cell, b64=lambda data: base64.b64encode(data).decode("ascii"))
NUMBER_FORMATS = {"int": "0", "decimal2": "0.00", "percent": "0.00%"}
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


_preloading: list[threading.Thread] = []


def preload() -> None:
    """Start importing WeasyPrint in the background (seconds of setup), to overlap with building the issue."""
    if not _preloading and "weasyprint" not in sys.modules:

        def load() -> None:
            import weasyprint  # noqa: F401

        t = threading.Thread(target=load, name="weasyprint-preload", daemon=True)
        _preloading.append(t)
        t.start()


def html(bulletin: Bulletin) -> str:
    """The issue as one self-contained HTML page (images inline, no external resources)."""
    return _env.get_template("bulletin/doc.html").render(b=bulletin)


def pdf(bulletin: Bulletin, *, html_text: str | None = None) -> bytes:
    """The issue as an A4 PDF with the bulletin's running header."""
    for t in _preloading:
        t.join()
    from weasyprint import HTML

    data = HTML(string=html_text or html(bulletin), base_url=str(TEMPLATES)).write_pdf()
    assert data is not None
    return bytes(data)


def _sheet_name(title: str, used: set[str]) -> str:
    base = _SHEET_BAD.sub("", title)[:28] or "表"
    name, i = base, 2
    while name in used:
        name = f"{base[:26]}{i}"
        i += 1
    used.add(name)
    return name


def _write_table(ws: object, t: Table) -> None:
    from openpyxl.worksheet.worksheet import Worksheet

    assert isinstance(ws, Worksheet)
    thin = Side(style="thin", color="333333")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    head_fill = PatternFill("solid", fgColor="F1E6E6")
    bold = Font(bold=True)
    ncols = len(t.columns)
    ws.cell(row=1, column=1, value=t.title).font = Font(bold=True, size=12)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=max(1, ncols))
    row = 2
    if t.has_groups:
        col = 1
        for g, span, c in t.header_groups():
            if g:
                ws.cell(row=row, column=col, value=g)
                ws.merge_cells(start_row=row, start_column=col, end_row=row, end_column=col + span - 1)
                for j, cc in enumerate(x for x in t.columns[col - 1 : col - 1 + span]):
                    ws.cell(row=row + 1, column=col + j, value=cc.title)
            else:
                assert c is not None
                ws.cell(row=row, column=col, value=c.title)
                ws.merge_cells(start_row=row, start_column=col, end_row=row + 1, end_column=col)
            col += span
        header_rows = 2
    else:
        for j, c in enumerate(t.columns, start=1):
            ws.cell(row=row, column=j, value=c.title)
        header_rows = 1
    for r in range(row, row + header_rows):
        for j in range(1, ncols + 1):
            cell = ws.cell(row=r, column=j)
            cell.font, cell.fill, cell.border = bold, head_fill, border
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    row += header_rows
    ws.freeze_panes = ws.cell(row=row, column=2)
    for values in t.rows:
        for j, (c, v) in enumerate(zip(t.columns, values, strict=True), start=1):
            cell = ws.cell(row=row, column=j, value=v)
            cell.border = border
            if isinstance(v, int | float) and c.kind in NUMBER_FORMATS:
                cell.number_format = NUMBER_FORMATS[c.kind]
                cell.alignment = Alignment(horizontal="right")
            elif c.kind != "text":
                cell.alignment = Alignment(horizontal="right")
        row += 1
    for n in t.notes:
        row += 1
        ws.cell(row=row, column=1, value=n)
    for j, c in enumerate(t.columns, start=1):
        width = max([len(c.title) * 2 + 2] + [len(format_cell(r[j - 1], c.kind)) * 1.3 + 2 for r in t.rows])
        ws.column_dimensions[get_column_letter(j)].width = min(40, max(8, width))


def xlsx(bulletin: Bulletin) -> bytes:
    """The issue's tables as a workbook: one sheet per table, numbers stored as numbers, charts as images."""
    wb = Workbook()
    cover = wb.active
    assert cover is not None
    cover.title = "目录"
    cover["A1"] = f"{bulletin.name} {bulletin.issue_label}"
    cover["A1"].font = Font(bold=True, size=14)
    cover["A2"] = f"{bulletin.publisher} 编印　{bulletin.published_on}　统计月份：{bulletin.month_label}"
    used = {"目录"}
    line = 4
    for s in bulletin.sections:
        for t in s.tables:
            ws = wb.create_sheet(_sheet_name(t.sheet or t.title, used))
            _write_table(ws, t)
            cover.cell(row=line, column=1, value=s.title)
            cover.cell(row=line, column=2, value=ws.title)
            line += 1
        for p in s.paragraphs:
            cover.cell(row=line, column=1, value=s.title)
            cover.cell(row=line, column=2, value=p)
            line += 1
        for c in s.charts:
            ws = wb.create_sheet(_sheet_name(c.title or s.title, used))
            ws["A1"] = c.title
            ws.add_image(XlImage(io.BytesIO(c.png)), "A3")
    cover.column_dimensions["A"].width = 40
    cover.column_dimensions["B"].width = 100
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def file_stem(bulletin: Bulletin) -> str:
    """The output file name without extension, e.g. 南京卫生信息化简报_2025-03."""
    return f"{bulletin.name}_{bulletin.month}"


def write(bulletin: Bulletin, out: Path, *, formats: tuple[str, ...] = FORMATS) -> dict[str, Path]:
    """Write the chosen formats into a folder; returns format → path."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        from rhip.errors import Invalid

        raise Invalid(f"未知的输出格式：{'、'.join(unknown)}（可选：html、pdf、xlsx）", code="bad-format")
    out.mkdir(parents=True, exist_ok=True)
    stem = file_stem(bulletin)
    paths: dict[str, Path] = {}
    page = html(bulletin) if ("html" in formats or "pdf" in formats) else ""
    if "html" in formats:
        paths["html"] = out / f"{stem}.html"
        paths["html"].write_text(page, encoding="utf-8")
    if "pdf" in formats:
        paths["pdf"] = out / f"{stem}.pdf"
        paths["pdf"].write_bytes(pdf(bulletin, html_text=page))
    if "xlsx" in formats:
        paths["xlsx"] = out / f"{stem}.xlsx"
        paths["xlsx"].write_bytes(xlsx(bulletin))
    return paths
