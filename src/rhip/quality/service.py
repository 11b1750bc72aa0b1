"""Quality services: declared tables, the statistics report (卫统) import, tracked problems, inspections."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from rhip import clock, months
from rhip.errors import Conflict, Forbidden, Invalid, NotFound
from rhip.quality.models import (
    CLOSED,
    ITEM_LABELS,
    ITEM_STATES,
    OPEN,
    RECTIFYING,
    VERIFIED,
    Inspection,
    QualityComment,
    QualityItem,
    StatisticsReport,
    TableDeclaration,
)
from rhip.quality.units import units
from rhip.registry import catalogue, data as registry_data
from rhip.security.roles import Role
from rhip.security.service import Principal

MANAGERS = (Role.manager, Role.admin, Role.auditor)


def can_see(principal: Principal, institution_code: str) -> bool:
    """Managers, admins and auditors see every institution; others only their own."""
    return principal.role in MANAGERS or principal.institution_code == institution_code


def check_institution(code: str) -> str:
    """The registry's code for an institution code (NotFound otherwise)."""
    record = registry_data.get(code)
    if record is None:
        raise NotFound(f"机构代码不存在：{code}", code="institution-not-found")
    return record.code


# --- declarations ---


def get_declaration(session: Session, *, institution_code: str) -> list[str]:
    """The catalogue tables an institution declared it produces (empty: 未反馈)."""
    code = check_institution(institution_code)
    return list(
        session.scalars(
            select(TableDeclaration.table_name)
            .where(TableDeclaration.institution_code == code)
            .order_by(TableDeclaration.table_name)
        )
    )


def declare(session: Session, *, institution_code: str, tables: list[str], declared_by: str) -> list[str]:
    """Replace an institution's declaration of the tables it produces (声明上传表)."""
    code = check_institution(institution_code)
    known = set(catalogue.names())
    unknown = sorted(set(tables) - known)
    if unknown:
        raise Invalid(f"未知的数据表：{'、'.join(unknown)}", code="unknown-table", unknown=unknown)
    session.execute(delete(TableDeclaration).where(TableDeclaration.institution_code == code))
    now = clock.now()
    for t in sorted(set(tables)):
        session.add(
            TableDeclaration(institution_code=code, table_name=t, declared_by=declared_by, declared_at=now)
        )
    session.flush()
    return sorted(set(tables))


def declared_counts(session: Session) -> dict[str, int]:
    """Number of declared tables per institution that declared."""
    rows = session.execute(
        select(TableDeclaration.institution_code, func.count()).group_by(TableDeclaration.institution_code)
    ).all()
    return {str(c): int(n) for c, n in rows}


# --- statistics report (卫统) ---

_HEADERS = {
    "month": ("month", "月份", "统计月份"),
    "code": ("institution_code", "org_code", "机构代码", "code"),
    "name": ("institution", "institution_name", "name", "机构名称", "单位"),
    "visits": ("visits", "门急诊人次", "outpatient_visits"),
    "discharges": ("discharges", "出院人次", "inpatient_discharges"),
}


def _column(header: list[str], what: str) -> str | None:
    for h in header:
        if h.strip().lower() in _HEADERS[what]:
            return h
    return None


def _int(value: str | None, *, row: int, what: str) -> int | None:
    if value is None or value.strip() in ("", "/", "-"):
        return None
    try:
        n = int(float(value.strip().replace(",", "")))
    except ValueError:
        raise Invalid(f"第 {row} 行的{what}不是数字：{value}", code="bad-statistics") from None
    if n < 0:
        raise Invalid(f"第 {row} 行的{what}为负数：{value}", code="bad-statistics")
    return n


def parse_statistics(text: str, *, month: str | None = None) -> list[tuple[str, str, int | None, int | None]]:
    """Rows (month, institution code, visits, discharges) of a 卫统 CSV; names resolve via the registry."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = list(reader.fieldnames or [])
    cols = {k: _column(header, k) for k in _HEADERS}
    if cols["code"] is None and cols["name"] is None:
        raise Invalid("卫统报表缺少机构列（institution_code 或 机构名称）", code="bad-statistics")
    if cols["visits"] is None and cols["discharges"] is None:
        raise Invalid("卫统报表缺少门急诊人次或出院人次列", code="bad-statistics")
    if cols["month"] is None and month is None:
        raise Invalid("卫统报表没有月份列，请用 --month 指定", code="bad-statistics")
    out = []
    for i, r in enumerate(reader, start=2):
        m = (r.get(cols["month"]) if cols["month"] else None) or month
        assert m is not None
        m = m.strip()
        m = months.check(m)
        ref = (r.get(cols["code"]) if cols["code"] else None) or (
            r.get(cols["name"]) if cols["name"] else None
        )
        if not ref or not ref.strip():
            raise Invalid(f"第 {i} 行缺少机构", code="bad-statistics")
        record = registry_data.get(ref.strip()) or registry_data.resolve_name(ref.strip())
        if record is None:
            raise Invalid(f"第 {i} 行的机构无法识别：{ref}", code="bad-statistics")
        visits = _int(r.get(cols["visits"]) if cols["visits"] else None, row=i, what="门急诊人次")
        discharges = _int(r.get(cols["discharges"]) if cols["discharges"] else None, row=i, what="出院人次")
        out.append((m, record.code, visits, discharges))
    return out


def import_statistics(session: Session, *, text: str, source: str, month: str | None = None) -> int:
    """Store a statistics report (卫统); rows of the same month and institution replace earlier ones."""
    rows = parse_statistics(text, month=month)
    merged: dict[tuple[str, str], tuple[int | None, int | None]] = {}
    for m, code, v, d in rows:
        pv, pd = merged.get((m, code), (None, None))
        merged[(m, code)] = (
            None if v is None and pv is None else (v or 0) + (pv or 0),
            None if d is None and pd is None else (d or 0) + (pd or 0),
        )
    now = clock.now()
    for (m, code), (v, d) in merged.items():
        session.execute(
            delete(StatisticsReport).where(
                StatisticsReport.month == m, StatisticsReport.institution_code == code
            )
        )
        session.add(
            StatisticsReport(
                month=m, institution_code=code, visits=v, discharges=d, source=source[:255], imported_at=now
            )
        )
    session.flush()
    return len(merged)


def import_statistics_file(session: Session, *, path: Path, month: str | None = None) -> int:
    """Import a statistics report CSV file (UTF-8 or GBK)."""
    if not path.is_file():
        raise NotFound(f"文件不存在：{path}", code="file-not-found")
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise Invalid("无法识别文件编码", code="bad-encoding")
    return import_statistics(session, text=text, source=path.name, month=month)


def statistics_of(session: Session, *, month: str) -> dict[str, tuple[int | None, int | None]]:
    """The statistics report's (visits, discharges) per reporting unit for a month; members roll up."""
    rows = session.execute(
        select(StatisticsReport.institution_code, StatisticsReport.visits, StatisticsReport.discharges).where(
            StatisticsReport.month == month
        )
    ).all()
    by_code = {str(c): (v, d) for c, v, d in rows}
    out: dict[str, tuple[int | None, int | None]] = {}
    for u in units(month):
        got = [by_code[m] for m in u.members if m in by_code]
        if not got:
            continue
        vs = [v for v, _ in got if v is not None]
        ds = [d for _, d in got if d is not None]
        out[u.code] = (sum(vs) if vs else None, sum(ds) if ds else None)
    return out


# --- tracked problems ---

NEXT: dict[str, tuple[str, ...]] = {
    OPEN: (RECTIFYING,),
    RECTIFYING: (VERIFIED,),
    VERIFIED: (CLOSED, RECTIFYING),
    CLOSED: (),
}


def create_item(
    session: Session,
    *,
    institution_code: str,
    title: str,
    dimension: str,
    created_by: str,
    detail: str = "",
    month: str | None = None,
    owner: str | None = None,
    due_on: date | None = None,
) -> QualityItem:
    """Open a tracked problem for an institution."""
    code = check_institution(institution_code)
    if not title.strip():
        raise Invalid("问题标题不能为空", code="empty-title")
    now = clock.now()
    item = QualityItem(
        institution_code=code,
        month=month,
        dimension=dimension,
        title=title.strip()[:255],
        detail=detail,
        status=OPEN,
        owner=owner,
        due_on=due_on,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    session.add(item)
    session.flush()
    return item


def get_item(session: Session, *, item_id: int, principal: Principal | None = None) -> QualityItem:
    """One tracked problem; an institution sees only its own."""
    item = session.get(QualityItem, item_id)
    if item is None:
        raise NotFound(f"问题不存在：{item_id}", code="item-not-found")
    if principal is not None and not can_see(principal, item.institution_code):
        raise Forbidden("只能查看本机构的问题清单", code="other-institution")
    return item


def get_all_items(
    session: Session,
    *,
    institution_code: str | None = None,
    status: str | None = None,
    month: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> tuple[list[QualityItem], int]:
    """A page of tracked problems and the total, newest first."""
    stmt = select(QualityItem)
    if institution_code:
        stmt = stmt.where(QualityItem.institution_code == institution_code)
    if status:
        if status not in ITEM_STATES:
            raise Invalid(f"未知的状态：{status}", code="bad-status")
        stmt = stmt.where(QualityItem.status == status)
    if month:
        stmt = stmt.where(QualityItem.month == month)
    total = int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    rows = session.scalars(stmt.order_by(QualityItem.id.desc()).limit(max(1, limit)).offset(max(0, offset)))
    return list(rows), total


def move_item(
    session: Session,
    *,
    item_id: int,
    to: str,
    author: str,
    comment: str = "",
    principal: Principal | None = None,
) -> QualityItem:
    """Move a problem along open → rectifying → verified → closed (verified may reopen to rectifying)."""
    item = get_item(session, item_id=item_id, principal=principal)
    if to not in ITEM_STATES:
        raise Invalid(f"未知的状态：{to}", code="bad-status")
    if to not in NEXT[item.status]:
        raise Conflict(
            f"问题当前为“{ITEM_LABELS[item.status]}”，不能改为“{ITEM_LABELS[to]}”", code="bad-transition"
        )
    if (
        principal is not None
        and to in (VERIFIED, CLOSED)
        and principal.role not in (Role.manager, Role.admin)
    ):
        raise Forbidden("只有信息中心管理员可以核验或关闭问题", code="manager-only")
    session.add(
        QualityComment(
            item_id=item.id,
            author=author,
            body=comment,
            status_from=item.status,
            status_to=to,
            created_at=clock.now(),
        )
    )
    item.status = to
    item.updated_at = clock.now()
    session.flush()
    return item


def comment_item(
    session: Session, *, item_id: int, author: str, body: str, principal: Principal | None = None
) -> QualityComment:
    """Add a comment to a problem."""
    item = get_item(session, item_id=item_id, principal=principal)
    if not body.strip():
        raise Invalid("评论不能为空", code="empty-comment")
    c = QualityComment(item_id=item.id, author=author, body=body.strip(), created_at=clock.now())
    session.add(c)
    item.updated_at = clock.now()
    session.flush()
    return c


def update_item(
    session: Session, *, item_id: int, owner: str | None = None, due_on: date | None = None
) -> QualityItem:
    """Set a problem's owner and due date."""
    item = get_item(session, item_id=item_id)
    if owner is not None:
        item.owner = owner
    if due_on is not None:
        item.due_on = due_on
    item.updated_at = clock.now()
    session.flush()
    return item


# --- inspections (专项检查) ---


def schedule_inspection(
    session: Session, *, institution_code: str, on: date, created_by: str, note: str = ""
) -> Inspection:
    """Schedule a special inspection of an institution on a date (one per institution and day)."""
    code = check_institution(institution_code)
    exists = session.scalar(
        select(Inspection.id).where(Inspection.institution_code == code, Inspection.scheduled_on == on)
    )
    if exists is not None:
        raise Conflict(f"{on:%Y-%m-%d} 已安排对该机构的专项检查", code="inspection-exists")
    item = Inspection(
        institution_code=code,
        scheduled_on=on,
        note=note,
        done=False,
        created_by=created_by,
        created_at=clock.now(),
    )
    session.add(item)
    session.flush()
    return item


def get_all_inspections(
    session: Session,
    *,
    start: date | None = None,
    end: date | None = None,
    institution_code: str | None = None,
) -> list[Inspection]:
    """Scheduled inspections in date order."""
    stmt = select(Inspection).order_by(Inspection.scheduled_on, Inspection.institution_code)
    if start:
        stmt = stmt.where(Inspection.scheduled_on >= start)
    if end:
        stmt = stmt.where(Inspection.scheduled_on <= end)
    if institution_code:
        stmt = stmt.where(Inspection.institution_code == institution_code)
    return list(session.scalars(stmt))
