"""MCH monthly figures: 妇幼保健信息系统各区使用情况 in the 2018-03 bulletin's layout, and the series the
dashboard charts. `bulletin_sections` is the bulletin's hook.

Each column counts the month's events (Asia/Shanghai dates) in the district of the institution that recorded
them: 妇女登记 = episodes registered (建册), 初诊 / 复诊 = antenatal visits by kind, 访视一次 / 访视两次 =
first / second postpartum visits, 分娩 = deliveries (district of the delivery institution; home births in
the managing district), 儿童登记 = children's records opened.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from rhip.errors import Invalid
from rhip.mch.models import FIRST, PP_VISIT, RETURN, AntenatalVisit, Child, PostpartumVisit, Pregnancy
from rhip.registry import data as reg_data

COLUMNS = ("妇女登记", "初诊", "复诊", "访视一次", "访视两次", "分娩", "儿童登记")
KEYS = (
    "registrations",
    "first_visits",
    "return_visits",
    "postpartum_1",
    "postpartum_2",
    "deliveries",
    "children",
)
# the 2018-03 table's row order
DISTRICT_ORDER = (
    "玄武区",
    "秦淮区",
    "建邺区",
    "鼓楼区",
    "雨花台区",
    "栖霞区",
    "江宁区",
    "浦口区",
    "六合区",
    "溧水区",
    "高淳区",
    "江北新区",
)


def month_days(month: str) -> tuple[date, date]:
    """[first day, first day of the next month) of 'YYYY-MM'."""
    try:
        y, m = (int(x) for x in month.split("-"))
        first = date(y, m, 1)
    except ValueError:
        raise Invalid(f"月份格式应为 YYYY-MM：{month}", code="bad-month") from None
    return first, date(y + (m == 12), m % 12 + 1, 1)


def month_label(month: str) -> str:
    """'2018-03' -> '2018 年 3 月'."""
    y, m = month.split("-")
    return f"{y} 年 {int(m)} 月"


def usage_sql(month: str) -> dict[str, Select[*tuple[Any, ...]]]:
    """One grouped count per column: district code -> events of the month."""
    a, b = month_days(month)

    def pp(seq: int) -> Select[*tuple[Any, ...]]:
        return (
            select(PostpartumVisit.district_code, func.count())
            .where(
                PostpartumVisit.visit_date >= a,
                PostpartumVisit.visit_date < b,
                PostpartumVisit.kind == PP_VISIT,
                PostpartumVisit.seq == seq,
            )
            .group_by(PostpartumVisit.district_code)
        )

    def anc(kind: str) -> Select[*tuple[Any, ...]]:
        return (
            select(AntenatalVisit.district_code, func.count())
            .where(AntenatalVisit.visit_date >= a, AntenatalVisit.visit_date < b, AntenatalVisit.kind == kind)
            .group_by(AntenatalVisit.district_code)
        )

    return {
        "registrations": select(Pregnancy.registered_district_code, func.count())
        .where(Pregnancy.registered_on >= a, Pregnancy.registered_on < b)
        .group_by(Pregnancy.registered_district_code),
        "first_visits": anc(FIRST),
        "return_visits": anc(RETURN),
        "postpartum_1": pp(1),
        "postpartum_2": pp(2),
        "deliveries": select(Pregnancy.delivery_district_code, func.count())
        .where(Pregnancy.delivered_on >= a, Pregnancy.delivered_on < b)
        .group_by(Pregnancy.delivery_district_code),
        "children": select(Child.district_code, func.count())
        .where(Child.registered_on >= a, Child.registered_on < b)
        .group_by(Child.district_code),
    }


def usage_counts(session: Session, *, month: str) -> dict[str, dict[str, int]]:
    """district code -> column key -> count, for every district (zeros included)."""
    out = {d.code: dict.fromkeys(KEYS, 0) for d in reg_data.districts()}
    for key, stmt in usage_sql(month).items():
        for code, n in session.execute(stmt).all():
            if code in out:
                out[code][key] += int(n)
    return out


def usage_table(session: Session, *, month: str) -> dict[str, Any]:
    """南京市妇幼保健信息系统各区使用情况表: the bulletin's rows, a 合计 row, the cumulative note."""
    counts = usage_counts(session, month=month)
    by_name = {d.name: d.code for d in reg_data.districts()}
    rows: list[list[Any]] = []
    totals = dict.fromkeys(KEYS, 0)
    for name in DISTRICT_ORDER:
        c = counts[by_name[name]]
        rows.append([name, *(c[k] for k in KEYS)])
        for k in KEYS:
            totals[k] += c[k]
    rows.append(["合计", *(totals[k] for k in KEYS)])
    _a, b = month_days(month)
    cumulative = int(session.scalar(select(func.count()).where(Pregnancy.registered_on < b)) or 0)
    return {
        "title": f"{month_label(month)}南京市妇幼保健信息系统各区使用情况表",
        "columns": ["行政区", *COLUMNS],
        "rows": rows,
        "cumulative": cumulative,
        "note": f"（截止 {int(month[5:])} 月底，总登记建卡数为 {cumulative}）",
    }


def monthly_series(session: Session, *, end_month: str, months: int = 12) -> dict[str, list[Any]]:
    """The last `months` months to end_month: registrations, early share, deliveries, children."""
    labels: list[str] = []
    y, m = (int(x) for x in end_month.split("-"))
    for _ in range(months):
        labels.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    labels.reverse()
    first, _ = month_days(labels[0])
    _, last = month_days(labels[-1])

    def by_month(col: Any, extra: Any = None) -> dict[str, int]:
        stmt = select(col, func.count()).where(col >= first, col < last)
        if extra is not None:
            stmt = stmt.where(extra)
        got: dict[str, int] = {}
        for day, n in session.execute(stmt.group_by(col)).all():
            key = f"{day.year:04d}-{day.month:02d}"
            got[key] = got.get(key, 0) + int(n)
        return got

    reg = by_month(Pregnancy.registered_on)
    early = by_month(Pregnancy.registered_on, Pregnancy.registration_week < 13)
    dlv = by_month(Pregnancy.delivered_on)
    kids = by_month(Child.registered_on)
    return {
        "months": labels,
        "registrations": [reg.get(k, 0) for k in labels],
        "early_share": [round(100 * early.get(k, 0) / reg[k], 1) if reg.get(k) else 0.0 for k in labels],
        "deliveries": [dlv.get(k, 0) for k in labels],
        "children": [kids.get(k, 0) for k in labels],
    }


def bulletin_sections(*, session: Session, lake: Any, month: str) -> list[dict[str, Any]]:
    """The bulletin's MCH section for a month (none when the month has no MCH activity)."""
    table = usage_table(session, month=month)
    if not any(table["rows"][-1][1:]):
        return []
    return [
        {
            "key": "mch.usage",
            "title": table["title"],
            "order": 950,
            "tables": [
                {
                    "title": table["title"],
                    "sheet": "妇幼保健信息系统",
                    "columns": [{"title": "行政区"}, *({"title": c, "kind": "int"} for c in COLUMNS)],
                    "rows": table["rows"],
                    "notes": [table["note"]],
                }
            ],
        }
    ]
