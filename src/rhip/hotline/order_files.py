"""12345 work orders from a file (CSV, Beijing time): good lines become orders, bad lines are reported."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.clock import SHANGHAI
from rhip.errors import Conflict, Invalid, NotFound
from rhip.hotline import cdr
from rhip.hotline.models import WorkOrder
from rhip.hotline.orders import create_order
from rhip.security.service import Principal

ORDER_FILE_COLUMNS = ("工单编号", "受理时间", "办理期限", "标题", "内容", "承办机构代码")


@dataclass
class OrderImportReport:
    """What an order-file import did: lines, orders created, duplicates, refused lines."""

    lines: int = 0
    created: int = 0
    duplicates: int = 0
    errors: list[cdr.LineError] = field(default_factory=list)


def _local_time(value: str) -> datetime:
    text = value.strip().replace("T", " ")
    fmt = "%Y-%m-%d %H:%M:%S" if len(text) > 16 else "%Y-%m-%d %H:%M"
    return datetime.strptime(text, fmt).replace(tzinfo=SHANGHAI)


def import_orders(session: Session, *, source: str, data: bytes, actor: Principal) -> OrderImportReport:
    """12345 orders from a CSV file (header 工单编号,受理时间,办理期限,标题,内容,承办机构代码; Beijing
    time); each bad line is reported with its number, the good ones are created, known numbers skipped."""
    if source not in ("wo_city_12345", "wo_province_12345"):
        raise Invalid("文件导入只用于市、省 12345 工单", code="bad-source")
    reader = csv.DictReader(io.StringIO(cdr.decode(data)))
    missing = [c for c in ORDER_FILE_COLUMNS[:4] if c not in (reader.fieldnames or [])]
    if missing:
        raise Invalid(f"缺少列：{'、'.join(missing)}", code="bad-header")
    report = OrderImportReport()
    known = set(session.scalars(select(WorkOrder.external_no).where(WorkOrder.source == source)))
    for row in reader:
        line = reader.line_num
        report.lines += 1
        number = (row.get("工单编号") or "").strip()
        errs: list[cdr.LineError] = []
        if not number or len(number) > 64:
            errs.append(cdr.LineError(line, "工单编号", "工单编号为空或过长"))
        try:
            received = _local_time(row.get("受理时间") or "")
        except ValueError:
            errs.append(cdr.LineError(line, "受理时间", "时间格式应为 YYYY-MM-DD HH:MM[:SS]"))
        due: datetime | None = None
        if (row.get("办理期限") or "").strip():
            try:
                due = _local_time(row["办理期限"])
            except ValueError:
                errs.append(cdr.LineError(line, "办理期限", "时间格式应为 YYYY-MM-DD HH:MM[:SS]"))
        title = (row.get("标题") or "").strip()
        if not title:
            errs.append(cdr.LineError(line, "标题", "标题为空"))
        inst = (row.get("承办机构代码") or "").strip() or None
        if errs:
            report.errors.extend(errs)
            continue
        if number in known:
            report.duplicates += 1
            continue
        try:
            with session.begin_nested():
                create_order(
                    session,
                    actor=actor,
                    source=source,
                    title=title,
                    content=(row.get("内容") or "").strip(),
                    external_no=number,
                    received_at=received,
                    due_at=due,
                    institution_code=inst,
                )
        except (Invalid, NotFound, Conflict) as exc:
            report.errors.append(cdr.LineError(line, "*", exc.detail))
            continue
        known.add(number)
        report.created += 1
    return report
