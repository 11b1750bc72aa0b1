"""The month's self-service figures and their bulletin tables (docs/metrics.md, section 自助服务).

- 投放台数: terminals installed on or before the month's last day and not removed before its first;
- 发卡, 挂号 (当日挂号 + 预约取号), 缴费: successful transactions (outcome ok) made in the month
  (Asia/Shanghai), counted per institution; 挂号金额/缴费金额 their amounts, summed in integer fen;
- 取单（份）: pages of successful print transactions;
- 开卡量: physical cards recorded in the month (windows and terminals); 总开卡量 the carried-over baseline
  plus every card recorded since it.

Layouts: 2018-03 (one table of every institution with terminals, with 发卡 and 取单) and 2020-05 (医疗单位
then 各区: community health centres and district MCH institutions summed by district, all twelve
districts listed); the 2018-03 开卡量 table (two column pairs of 序号/单位/合计) with its cumulative note.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from rhip import months
from rhip.clock import SHANGHAI
from rhip.registry import data as reg_data
from rhip.selfservice import service as svc
from rhip.selfservice.models import Terminal, TerminalTransaction
from rhip.selfservice.money import fen_to_yuan

LAYOUTS = ("2018", "2020")


@dataclass
class Figures:
    """One institution's month."""

    terminals: int = 0
    cards: int = 0
    reg: int = 0
    reg_fen: int = 0
    pay: int = 0
    pay_fen: int = 0
    prints: int = 0

    def add(self, other: Figures) -> None:
        """Add another institution's figures (district rows and 合计)."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _label(month: str) -> str:
    y, m = month.split("-")
    return f"{y} 年 {int(m)} 月"


def in_service_during(month: str) -> tuple[Any, ...]:
    """The conditions of a terminal in service during a month: installed by its last day, not removed
    before its first."""
    start, end = months.time_bounds(month, SHANGHAI)
    last_day = end.date().fromordinal(end.date().toordinal() - 1)
    return (
        Terminal.installed_on <= last_day,
        or_(Terminal.removed_on.is_(None), Terminal.removed_on >= start.date()),
    )


def month_figures(session: Session, *, month: str) -> dict[str, Figures]:
    """Every institution with terminals in service in the month (or transactions in it): its figures."""
    start, end = months.time_bounds(month, SHANGHAI)
    out: dict[str, Figures] = defaultdict(Figures)
    in_service = session.execute(
        select(Terminal.institution_code, func.count())
        .where(*in_service_during(month))
        .group_by(Terminal.institution_code)
    ).all()
    for code, n in in_service:
        out[code].terminals = int(n)
    T = TerminalTransaction
    is_reg = T.kind.in_(("register", "take_number"))
    rows = session.execute(
        select(
            T.institution_code,
            func.sum(case((T.kind == "issue_card", 1), else_=0)),
            func.sum(case((is_reg, 1), else_=0)),
            func.sum(case((is_reg, func.coalesce(T.amount_fen, 0)), else_=0)),
            func.sum(case((T.kind == "payment", 1), else_=0)),
            func.sum(case((T.kind == "payment", T.amount_fen), else_=0)),
            func.sum(case((T.kind == "print", func.coalesce(T.pages, 1)), else_=0)),
        )
        .where(T.occurred_at >= start, T.occurred_at < end, T.outcome == "ok")
        .group_by(T.institution_code)
    ).all()
    for code, cards, reg, reg_fen, pay, pay_fen, prints in rows:
        f = out[code]
        f.cards, f.reg, f.reg_fen = int(cards or 0), int(reg or 0), int(reg_fen or 0)
        f.pay, f.pay_fen, f.prints = int(pay or 0), int(pay_fen or 0), int(prints or 0)
    return dict(out)


def _name(code: str) -> str:
    inst = reg_data.get(code)
    return inst.name if inst else code


def _order(item: tuple[str, Figures]) -> tuple[int, int, str]:
    code, f = item
    return (-f.terminals, -(f.reg + f.pay), code)


def _district_level(code: str) -> bool:
    """Whether an institution's terminals count in the 2020 layout's 各区 block (community, district MCH)."""
    inst = reg_data.get(code)
    return inst is not None and (inst.kind == "community_health_centre" or code.startswith("F"))


def table_2018(session: Session, *, month: str) -> dict[str, Any]:
    """自助智能医疗服务终端医院使用情况表, 2018-03 layout."""
    figs = month_figures(session, month=month)
    total = Figures()
    rows: list[list[Any]] = []
    for code, f in sorted(figs.items(), key=_order):
        total.add(f)
        rows.append([_name(code), f.terminals, f.cards, f.reg, fen_to_yuan(f.reg_fen), f.pay,
                     fen_to_yuan(f.pay_fen), f.prints])  # fmt: skip
    rows.append(["合计", total.terminals, total.cards, total.reg, fen_to_yuan(total.reg_fen), total.pay,
                 fen_to_yuan(total.pay_fen), total.prints])  # fmt: skip
    return {
        "title": f"{_label(month)}自助智能医疗服务终端医院使用情况表",
        "sheet": "自助终端",
        "columns": [
            {"title": "医院名称"},
            {"title": "投放台数", "kind": "int"},
            {"title": "发卡（张）", "kind": "int"},
            {"title": "挂号（次）", "kind": "int"},
            {"title": "挂号金额（元）", "kind": "decimal2"},
            {"title": "缴费（次）", "kind": "int"},
            {"title": "缴费金额（元）", "kind": "decimal2"},
            {"title": "取单（份）", "kind": "int"},
        ],
        "rows": rows,
    }


def table_2020(session: Session, *, month: str) -> dict[str, Any]:
    """自助智能医疗服务终端医院使用情况表, 2020-05 layout: 医疗单位 then 各区, with 合计."""
    figs = month_figures(session, month=month)
    hospitals = {c: f for c, f in figs.items() if not _district_level(c)}
    districts: dict[str, Figures] = {d.name: Figures() for d in reg_data.districts()}
    for code, f in figs.items():
        inst = reg_data.get(code)
        if _district_level(code) and inst is not None and inst.district in districts:
            districts[inst.district].add(f)
    total = Figures()
    rows: list[list[Any]] = []

    def line(block: str, name: str, f: Figures) -> list[Any]:
        total.add(f)
        return [block, name, f.terminals, f.reg, fen_to_yuan(f.reg_fen), f.pay, fen_to_yuan(f.pay_fen)]

    for i, (code, f) in enumerate(sorted(hospitals.items(), key=_order)):
        rows.append(line("医疗单位" if i == 0 else "", _name(code), f))
    for i, (name, f) in enumerate(sorted(districts.items(), key=lambda kv: _order(kv))):
        rows.append(line("各区" if i == 0 else "", name, f))
    rows.append(["合计", "", total.terminals, total.reg, fen_to_yuan(total.reg_fen), total.pay,
                 fen_to_yuan(total.pay_fen)])  # fmt: skip
    return {
        "title": f"{_label(month)}自助智能医疗服务终端医院使用情况表",
        "sheet": "自助终端",
        "columns": [
            {"title": ""},
            {"title": "单位"},
            {"title": "投放台数", "kind": "int"},
            {"title": "挂号（次）", "kind": "int"},
            {"title": "挂号金额（元）", "kind": "decimal2"},
            {"title": "缴费（次）", "kind": "int"},
            {"title": "缴费金额（元）", "kind": "decimal2"},
        ],
        "rows": rows,
    }


def card_figures(session: Session, *, month: str) -> tuple[list[tuple[str, int]], int, int]:
    """(institution code, cards) largest first, the month's total and 总开卡量 at the month's end."""
    start, end = months.time_bounds(month, SHANGHAI)
    counts = svc.card_counts(session, start=start, end=end)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ordered, sum(counts.values()), svc.cards_to_date(session, month=month, end=end)


def card_table(session: Session, *, month: str) -> dict[str, Any]:
    """市民卡（医疗卡）开卡量统计表, 2018-03 layout: two column pairs, 合计, and the cumulative note."""
    ordered, total, to_date = card_figures(session, month=month)
    half = (len(ordered) + 1) // 2
    rows: list[list[Any]] = []
    for i in range(half):
        left = [i + 1, _name(ordered[i][0]), ordered[i][1]]
        j = i + half
        right = [j + 1, _name(ordered[j][0]), ordered[j][1]] if j < len(ordered) else ["", "", ""]
        rows.append(left + right)
    rows.append(["合计", "", total, "", "", ""])
    return {
        "title": f"{_label(month)}市民卡（医疗卡）开卡量统计表",
        "sheet": "开卡量",
        "columns": [
            {"title": "序号"},
            {"title": "单位"},
            {"title": "合计", "kind": "int"},
            {"title": "序号"},
            {"title": "单位"},
            {"title": "合计", "kind": "int"},
        ],
        "rows": rows,
        "notes": [f"（截止 {int(month.split('-')[1])} 月底，总开卡量为 {to_date}）"],
    }


def layout_of(month: str) -> str:
    """The terminal table's layout by era: 2018 before 2020, 2020 from then on."""
    return "2018" if month < "2020-01" else "2020"


def bulletin_sections(
    *, session: Session, lake: Any, month: str, layout: str | None = None
) -> list[dict[str, Any]]:
    """The self-service part of the bulletin (the bulletin's provider hook); none for a month without data."""
    chosen = layout or layout_of(month)
    terminal = table_2018(session, month=month) if chosen == "2018" else table_2020(session, month=month)
    sections: list[dict[str, Any]] = []
    if len(terminal["rows"]) > 1:
        sections.append(
            {
                "key": "selfservice.terminals",
                "title": "自助智能医疗服务终端",
                "order": 950,
                "tables": [terminal],
            }
        )
    cards = card_table(session, month=month)
    if len(cards["rows"]) > 1:
        sections.append(
            {"key": "selfservice.cards", "title": "市民卡（医疗卡）开卡量", "order": 951, "tables": [cards]}
        )
    return sections


def per_terminal(session: Session, *, institution_code: str, month: str) -> list[dict[str, Any]]:
    """The hospital dashboard: per terminal, successful and failed transactions by kind, amounts, time."""
    start, end = months.time_bounds(month, SHANGHAI)
    T = TerminalTransaction
    rows = session.execute(
        select(
            Terminal.code,
            Terminal.location,
            Terminal.status,
            T.kind,
            T.outcome,
            func.count(T.id),
            func.coalesce(func.sum(T.amount_fen), 0),
            func.coalesce(func.avg(T.duration_ms), 0),
        )
        .select_from(Terminal)
        .outerjoin(T, (T.terminal_id == Terminal.id) & (T.occurred_at >= start) & (T.occurred_at < end))
        .where(Terminal.institution_code == institution_code)
        .group_by(Terminal.code, Terminal.location, Terminal.status, T.kind, T.outcome)
        .order_by(Terminal.code)
    ).all()
    out: dict[str, dict[str, Any]] = {}
    for code, location, status, kind, outcome, n, fen, avg_ms in rows:
        d = out.setdefault(
            code,
            {"code": code, "location": location, "status": status, "ok": 0, "failed": 0, "fen": 0,
             "by_kind": defaultdict(int), "avg_ms": 0.0},
        )  # fmt: skip
        if kind is None:
            continue
        if outcome == "ok":
            d["ok"] += int(n)
            d["by_kind"][kind] += int(n)
            d["fen"] += int(fen)
            d["avg_ms"] = max(d["avg_ms"], float(avg_ms))
        else:
            d["failed"] += int(n)
    return list(out.values())


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[start, end) of a month in Asia/Shanghai (booking's definition, so every domain's months agree)."""
    return months.time_bounds(month, SHANGHAI)


def first_day(month: str) -> date:
    """The first day of a month."""
    return months.day_bounds(month)[0]
