"""The hotline's monthly figures and its bulletin section (the bulletin's provider hook).

受理咨询电话 is the sum of the month's calls by category (calls abandoned before anyone answered are not
受理); the categories print in the seeds' order with their units, then the month's work orders by source.
自接工单 counts the self-received orders, one per complaint call. The province sentence appears when the
province's calls by city were imported for the month; the assistant's month follows.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip.clock import SHANGHAI
from rhip.errors import Invalid
from rhip.hotline.models import Call, Conversation, ProvinceCalls, WorkOrder
from rhip.registry import directories

ORDER_SOURCES = ("wo_city_12345", "wo_province_12345", "wo_self")
MAIN_CATEGORIES = ("consult", "complaint", "phone_booking", "manual", "crisis", "ivr")


def month_range(month: str) -> tuple[datetime, datetime, int]:
    """The month's first instant, the next month's first instant (Beijing time) and its days."""
    try:
        y, m = (int(x) for x in month.split("-"))
        first = date(y, m, 1)
    except ValueError:
        raise Invalid(f"月份格式应为 YYYY-MM：{month}", code="bad-month") from None
    days = calendar.monthrange(y, m)[1]
    start = datetime.combine(first, time(0), tzinfo=SHANGHAI)
    return start, start + timedelta(days=days), days


@dataclass
class MonthFigures:
    """One month of the hotline."""

    month: str
    calls: dict[str, int]
    orders: dict[str, int]
    province: list[tuple[str, int]] = field(default_factory=list)
    conversations: int = 0
    answered: int = 0
    handed_off: int = 0
    crisis_referrals: int = 0

    @property
    def total(self) -> int:
        """受理咨询电话: the sum of the categories."""
        return sum(self.calls.values())


def month_figures(session: Session, *, month: str) -> MonthFigures:
    """The month's calls by category, orders by source, province calls and assistant conversations."""
    start, end, _days = month_range(month)
    rows = session.execute(
        select(Call.category, func.count())
        .where(Call.started_at >= start, Call.started_at < end, Call.outcome != "abandoned")
        .group_by(Call.category)
    )
    got = {str(k): int(v) for k, v in rows}
    order = [c.code for c in directories.hotline_categories() if c.kind == "call"]
    calls = {c: got.get(c, 0) for c in order if c in MAIN_CATEGORIES or got.get(c)}
    orows = session.execute(
        select(WorkOrder.source, func.count())
        .where(
            WorkOrder.received_at >= start, WorkOrder.received_at < end, WorkOrder.source.in_(ORDER_SOURCES)
        )
        .group_by(WorkOrder.source)
    )
    ogot = {str(k): int(v) for k, v in orows}
    prov = session.execute(
        select(ProvinceCalls.city, ProvinceCalls.calls)
        .where(ProvinceCalls.month == month)
        .order_by(ProvinceCalls.sort_order, ProvinceCalls.id)
    )
    crows = session.execute(
        select(Conversation.outcome, func.count())
        .where(Conversation.started_at >= start, Conversation.started_at < end)
        .group_by(Conversation.outcome)
    )
    conv = {str(k): int(v) for k, v in crows}
    return MonthFigures(
        month=month,
        calls=calls,
        orders={s: ogot.get(s, 0) for s in ORDER_SOURCES},
        province=[(str(c), int(n)) for c, n in prov],
        conversations=sum(conv.values()),
        answered=conv.get("answered", 0),
        handed_off=conv.get("handoff", 0),
        crisis_referrals=conv.get("crisis", 0),
    )


def _label(month: str) -> str:
    y, m = month.split("-")
    return f"{int(y)} 年 {int(m)} 月"


def paragraph(fig: MonthFigures) -> str:
    """The month's paragraph in the seeds' (2025) wording and order."""
    names = {c.code: (c.name, c.unit) for c in directories.hotline_categories()}
    parts = [f"{names[c][0]} {n} {names[c][1]}" for c, n in fig.calls.items()]
    o = fig.orders
    return (
        f"{_label(fig.month)}，南京 12320 卫生热线共受理咨询电话 {fig.total} 个，其中{'、'.join(parts)}，"
        f"受理市 12345 工单 {o['wo_city_12345']} 件，省 12345 工单 {o['wo_province_12345']} 件，"
        f"自接工单 {o['wo_self']} 件。"
    )


def province_sentence(fig: MonthFigures) -> str | None:
    """全省 12320 共接听电话 …，其中南京 …、苏州 … (only when imported)."""
    if not fig.province:
        return None
    total = sum(n for _c, n in fig.province)
    cities = "、".join(f"{c} {n} 人次" for c, n in fig.province)
    return f"{int(fig.month[5:])} 月，全省 12320 共接听电话 {total} 人次，其中{cities}。"


def assistant_sentence(fig: MonthFigures) -> str | None:
    """The assistant's month: conversations, answered without a human, handed off."""
    if not fig.conversations:
        return None
    share = fig.answered / fig.conversations
    return (
        f"{int(fig.month[5:])} 月，智慧客服“宁宁”共接待会话 {fig.conversations} 次，"
        f"其中独立答复 {fig.answered} 次"
        f"（{share:.1%}），转人工 {fig.handed_off} 次，心理危机转介 {fig.crisis_referrals} 次。"
    )


def by_day(session: Session, *, month: str) -> tuple[list[int], dict[str, list[int]]]:
    """Calls per day of the month and category (Beijing days), for the dashboard chart."""
    start, end, days = month_range(month)
    counts: dict[str, list[int]] = {c: [0] * days for c in MAIN_CATEGORIES}
    q = select(Call.started_at, Call.category).where(
        Call.started_at >= start, Call.started_at < end, Call.outcome != "abandoned"
    )
    for at, cat in session.execute(q):
        day = at.astimezone(SHANGHAI).day - 1
        counts.setdefault(str(cat), [0] * days)[day] += 1
    return list(range(1, days + 1)), counts


def import_province(session: Session, *, month: str, rows: list[tuple[str, int]]) -> int:
    """Store (replace) the province's calls by city for a month; returns the rows stored."""
    month_range(month)
    if not rows:
        raise Invalid("至少需要一个城市", code="empty")
    seen = set()
    for city, n in rows:
        if not city.strip() or n < 0 or city in seen:
            raise Invalid(f"城市或人次无效：{city} {n}", code="bad-row")
        seen.add(city)
    for old in session.scalars(select(ProvinceCalls).where(ProvinceCalls.month == month)):
        session.delete(old)
    session.flush()
    for i, (city, n) in enumerate(rows):
        session.add(ProvinceCalls(month=month, city=city.strip().removesuffix("市"), calls=n, sort_order=i))
    return len(rows)


def bulletin_sections(*, session: Session, lake: Any, month: str) -> list[dict[str, Any]]:
    """南京 12320 卫生热线 YYYY 年 M 月数据统计 (the bulletin's provider hook)."""
    fig = month_figures(session, month=month)
    if not fig.total and not any(fig.orders.values()):
        return []
    paragraphs = [paragraph(fig)]
    for extra in (province_sentence(fig), assistant_sentence(fig)):
        if extra:
            paragraphs.append(extra)
    names = {c.code: c.name for c in directories.hotline_categories()}
    rows: list[list[Any]] = [[names[c], n] for c, n in fig.calls.items()]
    rows.append(["合计", fig.total])
    return [
        {
            "key": "hotline.month",
            "title": f"南京 12320 卫生热线 {_label(month)}数据统计",
            "order": 300,
            "paragraphs": paragraphs,
            "tables": [
                {
                    "title": f"{_label(month)} 12320 受理来电分类",
                    "sheet": "12320热线",
                    "columns": [{"title": "分类"}, {"title": "数量", "kind": "int"}],
                    "rows": rows,
                }
            ],
        }
    ]
