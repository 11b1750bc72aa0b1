"""Records figures counted by the platform itself: record views (健康档案调阅) and smart-reminder calls
(智能提示) per institution per month from the access log, records built, and the lab and exam reports
uploaded per institution (医学检验检查报告上传情况, the 2018-03 layout) from the serving store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from rhip import months
from rhip.clock import SHANGHAI
from rhip.lake.store import Lake
from rhip.records.models import AccessLog, RecordEntry
from rhip.registry import data as registry_data

VIEW_ACTIONS = ("view", "view-reminders", "reports", "report", "everything")
# a view answered with its reminders counts as a view and as a reminder call
REMINDER_ACTIONS = ("reminders", "view-reminders", "cds-patient-view", "cds-order-select")


def month_range(month: str) -> tuple[datetime, datetime]:
    """[start, end) of a month in Shanghai time (rhip.months, so every domain's months agree)."""
    return months.time_bounds(month, SHANGHAI)


@dataclass(frozen=True)
class Usage:
    """One institution's record views and reminder calls in a month."""

    institution_code: str
    views: int
    reminders: int


def usage(session: Session, *, month: str) -> list[Usage]:
    """Allowed views and reminder calls per institution in the month (residents' own views excluded)."""
    start, end = month_range(month)
    views = func.sum(case((AccessLog.action.in_(VIEW_ACTIONS), 1), else_=0))
    rem = func.sum(case((AccessLog.action.in_(REMINDER_ACTIONS), 1), else_=0))
    rows = session.execute(
        select(AccessLog.institution_code, views, rem)
        .where(
            AccessLog.at >= start,
            AccessLog.at < end,
            AccessLog.outcome == "allowed",
            AccessLog.institution_code.is_not(None),
        )
        .group_by(AccessLog.institution_code)
        .order_by(AccessLog.institution_code)
    ).all()
    return [Usage(str(c), int(v or 0), int(r or 0)) for c, v, r in rows]


def totals(session: Session, *, until: datetime) -> dict[str, int]:
    """Cumulative figures up to a moment: records built, views and reminders served."""
    views = func.sum(case((AccessLog.action.in_(VIEW_ACTIONS), 1), else_=0))
    rem = func.sum(case((AccessLog.action.in_(REMINDER_ACTIONS), 1), else_=0))
    v, r = session.execute(
        select(views, rem).where(AccessLog.at < until, AccessLog.outcome == "allowed")
    ).one()
    built = session.scalar(
        select(func.count()).select_from(RecordEntry).where(RecordEntry.kind == "health_record")
    )
    return {"records": int(built or 0), "views": int(v or 0), "reminders": int(r or 0)}


def reports_uploaded(session: Session, *, month: str) -> tuple[list[tuple[str, int]], int]:
    """Lab and exam reports per institution reported in the month, and the cumulative total."""
    start, end = month_range(month)
    kinds = RecordEntry.kind.in_(("lab", "exam"))
    rows = session.execute(
        select(RecordEntry.institution_code, func.count())
        .where(kinds, RecordEntry.occurred_at >= start, RecordEntry.occurred_at < end)
        .group_by(RecordEntry.institution_code)
        .order_by(func.count().desc(), RecordEntry.institution_code)
    ).all()
    total = session.scalar(
        select(func.count()).select_from(RecordEntry).where(kinds, RecordEntry.occurred_at < end)
    )
    return [(str(c), int(n)) for c, n in rows], int(total or 0)


def bulletin_sections(*, session: Session, lake: Lake, month: str) -> list[dict[str, Any]]:
    """The records part of the bulletin: the 2022-08 paragraph, usage per institution, the 2018-03 table."""
    y, m = months.parse(month)
    _start, end = month_range(month)
    t = totals(session, until=end)
    use = usage(session, month=month)
    reps, cumulative = reports_uploaded(session, month=month)
    if not (t["views"] or t["records"] or reps):
        return []
    names = {i.code: i.name for i in registry_data.institutions()}
    paragraph = (
        f"截至 {y} 年 {m} 月底，平台已建立居民健康档案 {t['records']:,} 份，健康档案调阅为老百姓提供服务达 "
        f"{t['views']:,} 人次，智能提示服务达 {t['reminders']:,} 人次。本月健康档案调阅 "
        f"{sum(u.views for u in use):,} 人次、智能提示 {sum(u.reminders for u in use):,} 人次，"
        f"涉及 {len(use)} 家机构（均经患者授权或为本机构记录，每次调阅均记入审计日志）。"
    )
    usage_rows = [[names.get(u.institution_code, u.institution_code), u.views, u.reminders] for u in use]
    usage_rows.append(["合计", sum(u.views for u in use), sum(u.reminders for u in use)])
    # the 2018-03 layout: two columns of (序号, 单位, 上传数量)
    half = (len(reps) + 1) // 2
    left, right = reps[:half], reps[half:]
    two_col = []
    for i in range(half):
        row: list[Any] = [i + 1, names.get(left[i][0], left[i][0]), left[i][1]]
        if i < len(right):
            row += [half + i + 1, names.get(right[i][0], right[i][0]), right[i][1]]
        else:
            row += ["", "", ""]
        two_col.append(row)
    month_total = sum(n for _c, n in reps)
    return [
        {
            "key": "records.usage",
            "title": "健康档案调阅与智能提示",
            "order": 400,
            "paragraphs": [paragraph],
            "tables": [
                {
                    "title": f"{y} 年 {m} 月健康档案浏览器调阅与智能提示调用情况",
                    "sheet": "档案调阅",
                    "columns": [
                        {"title": "机构"},
                        {"title": "档案调阅（人次）", "kind": "int"},
                        {"title": "智能提示（人次）", "kind": "int"},
                    ],
                    "rows": usage_rows,
                }
            ],
        },
        {
            "key": "records.reports",
            "title": "医学检验检查报告上传情况统计",
            "order": 410,
            "tables": [
                {
                    "title": f"{y} 年 {m} 月医学检验检查报告上传情况统计",
                    "sheet": "检验检查报告",
                    "columns": [
                        {"title": "序号"},
                        {"title": "单位"},
                        {"title": "上传数量", "kind": "int"},
                        {"title": "序号"},
                        {"title": "单位"},
                        {"title": "上传数量", "kind": "int"},
                    ],
                    "rows": two_col,
                    "notes": [f"本月合计 {month_total:,} 份；截至本月底累计 {cumulative:,} 份。"],
                }
            ],
        },
    ]
