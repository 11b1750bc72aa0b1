"""Problem lists (问题清单) as CSV and XLSX downloads."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from openpyxl import Workbook

from rhip.intake.models import IntakeBatch, IntakeProblem
from rhip.intake.rules import RULES
from rhip.security import masking

HEADER = ["数据表", "文件", "记录序号", "业务主键", "规则代码", "规则", "字段", "值", "问题说明"]


# a cell starting with one of these is a formula to Excel, LibreOffice and WPS (tab and CR too: some
# importers strip them and then see the formula); OWASP's advice is a leading apostrophe
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralise(value: object) -> object:
    """A text cell that cannot run as a formula: a leading apostrophe when it starts like one."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _row(p: IntakeProblem) -> list[object]:
    # uploaded values and business keys are the uploader's text: echoed into a spreadsheet they must
    # not become formulas (=HYPERLINK(...) in a problem list opened by an official)
    return [
        neutralise(v)
        for v in (
            p.table_name,
            p.file or "",
            p.row,
            p.business_key or "",
            p.rule,
            RULES.get(p.rule, p.rule),
            p.field or "",
            masking.mask_text(p.value) if p.value else "",
            masking.mask_text(p.message),
        )
    ]


def problems_csv(items: Sequence[IntakeProblem]) -> bytes:
    """CSV bytes (UTF-8 with BOM so Excel shows the Chinese)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(HEADER)
    for p in items:
        w.writerow(_row(p))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def problems_xlsx(batch: IntakeBatch, items: Sequence[IntakeProblem]) -> bytes:
    """An XLSX workbook: one sheet with the receipt summary, one with the problems."""
    wb = Workbook(write_only=True)
    summary = wb.create_sheet("回执")
    for k, v in (
        ("回执编号", batch.id),
        ("机构代码", batch.institution_code),
        ("上传方式", batch.channel),
        ("状态", batch.status),
        ("接收", batch.received),
        ("新增入库", batch.accepted),
        ("更新", batch.updated),
        ("撤销", batch.revoked),
        ("重复", batch.duplicate),
        ("拒收", batch.rejected),
    ):
        summary.append([k, v])
    sheet = wb.create_sheet("问题清单")
    sheet.append(HEADER)
    for p in items:
        sheet.append(_row(p))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
