"""Record-browser (健康档案浏览器) and smart-reminder (智能提示) usage: what institutions report each month.

The 2018 bulletin prints, per district and hospital, how many workstations run the shared health-record
browser and the smart-reminder plug-in (部署数量) and how often they were called that month (调用次数).
rhip has no records domain yet, so these figures come from a monthly report the institutions (and the
synthetic city) submit, imported with `rhip quality import-usage FILE` or `POST /api/v1/quality/usage`;
docs/metrics.md says so. When the records domain counts its own views, it replaces this report.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from rhip import clock, months
from rhip.errors import Invalid, NotFound
from rhip.quality.models import RecordUsage
from rhip.quality.units import units
from rhip.registry import data as registry_data

FIELDS = ("browser_deployed", "browser_calls", "reminder_deployed", "reminder_calls")
_HEADERS: dict[str, tuple[str, ...]] = {
    "month": ("month", "月份", "统计月份"),
    "institution": (
        "institution",
        "institution_code",
        "org_code",
        "机构代码",
        "机构",
        "机构名称",
        "接入单位",
    ),
    "browser_deployed": ("browser_deployed", "健康档案浏览器部署数量"),
    "browser_calls": ("browser_calls", "健康档案浏览器调用次数"),
    "reminder_deployed": ("reminder_deployed", "智能提示部署数量"),
    "reminder_calls": ("reminder_calls", "智能提示调用次数"),
}
NOT_DEPLOYED = "未部署"


@dataclass(frozen=True)
class Usage:
    """One unit's (or institution's) reported deployments and calls for a month."""

    browser_deployed: int = 0
    browser_calls: int = 0
    reminder_deployed: int = 0
    reminder_calls: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(getattr(self, f) + getattr(other, f) for f in FIELDS))


def _header(header: list[str], what: str) -> str | None:
    for h in header:
        if h.strip().lower() in _HEADERS[what]:
            return h
    return None


def _count(value: str | None, *, row: int, what: str) -> int:
    text = (value or "").strip().replace(",", "")
    if text == NOT_DEPLOYED and what.endswith("部署数量"):
        return 0
    if not text.isdigit():
        raise Invalid(f"第 {row} 行的{what}应为非负整数：{value or '（空）'}", code="bad-usage")
    return int(text)


def parse_usage(text: str, *, month: str | None = None) -> list[tuple[str, str, Usage]]:
    """Rows (month, institution code, usage) of a usage report CSV; names resolve via the registry."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = list(reader.fieldnames or [])
    cols = {k: _header(header, k) for k in _HEADERS}
    missing = [k for k in ("institution", *FIELDS) if cols[k] is None]
    if missing:
        raise Invalid(f"使用情况报表缺少列：{'、'.join(_HEADERS[k][-1] for k in missing)}", code="bad-usage")
    if cols["month"] is None and month is None:
        raise Invalid("使用情况报表没有月份列，请用 --month 指定", code="bad-usage")
    labels = {f: _HEADERS[f][-1] for f in FIELDS}
    out = []
    for i, r in enumerate(reader, start=2):
        m = ((r.get(cols["month"]) if cols["month"] else None) or month or "").strip()
        m = months.check(m)
        ref = (r.get(cols["institution"] or "") or "").strip()
        if not ref:
            raise Invalid(f"第 {i} 行缺少机构", code="bad-usage")
        record = registry_data.get(ref) or registry_data.resolve_name(ref)
        if record is None:
            raise Invalid(f"第 {i} 行的机构无法识别：{ref}", code="bad-usage")
        values = [_count(r.get(cols[f] or ""), row=i, what=labels[f]) for f in FIELDS]
        out.append((m, record.code, Usage(*values)))
    return out


def import_usage(session: Session, *, text: str, source: str, month: str | None = None) -> int:
    """Store a usage report; a month and institution reported again replaces the earlier figures."""
    merged: dict[tuple[str, str], Usage] = {}
    for m, code, u in parse_usage(text, month=month):
        merged[(m, code)] = merged.get((m, code), Usage()) + u
    now = clock.now()
    for (m, code), u in merged.items():
        session.execute(
            delete(RecordUsage).where(RecordUsage.month == m, RecordUsage.institution_code == code)
        )
        session.add(
            RecordUsage(month=m, institution_code=code, source=source[:255], imported_at=now, **asdict(u))
        )
    session.flush()
    return len(merged)


def import_usage_file(session: Session, *, path: Path, month: str | None = None) -> int:
    """Import a usage report CSV file (UTF-8 or GBK)."""
    if not path.is_file():
        raise NotFound(f"文件不存在：{path}", code="file-not-found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")
    return import_usage(session, text=text, source=path.name, month=month)


def usage_of(session: Session, *, month: str) -> dict[str, Usage]:
    """The reported usage per reporting unit for a month (members roll up); units without a report absent."""
    rows = session.scalars(select(RecordUsage).where(RecordUsage.month == month)).all()
    by_code = {r.institution_code: Usage(*(int(getattr(r, f)) for f in FIELDS)) for r in rows}
    out: dict[str, Usage] = {}
    for u in units(month):
        got = [by_code[m] for m in u.members if m in by_code]
        if got:
            total = Usage()
            for g in got:
                total = total + g
            out[u.code] = total
    return out
