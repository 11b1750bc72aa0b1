"""The data-collection tables in the layout of each era of the bulletin (seeds of 2018, 2020, 2022, 2025).

The centre changed the tables' columns over the years: 2018 printed declared/required tables, uploaded tables,
volumes, upload days, visits and discharges with their 上传率 against 卫统, health-record totals (districts)
and the record-browser and smart-reminder deployments/calls; 2020 dropped the rates and the usage columns;
2022 replaced declarations by 实时数据表单上传情况 and added 实时数据符合率; 2025 added revenue. Every column
is a figure of docs/metrics.md, so any month can be printed in any era's layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rhip.errors import Invalid
from rhip.quality.figures import UnitFigures
from rhip.quality.layouts import COLUMNS_2025, collection_row, usage_cell

LAYOUTS = ("2018", "2020", "2022", "2025")
NO_STATISTICS = "未获取卫统数据"


def layout_for(month: str) -> str:
    """The layout of the era a month belongs to (the layout of the latest seed not after that month)."""
    year = int(month[:4])
    return "2018" if year < 2020 else "2020" if year < 2022 else "2022" if year < 2025 else "2025"


def check_layout(layout: str) -> str:
    """The layout name, or Invalid."""
    if layout not in LAYOUTS:
        raise Invalid(f"未知的表格版式：{layout}（可选：{'、'.join(LAYOUTS)}）", code="bad-layout")
    return layout


@dataclass(frozen=True)
class Col:
    """One column of an era's table: its header, kind and how a unit's cell is computed."""

    title: str
    cell: Callable[[UnitFigures], Any]
    kind: str = "int"
    group: str | None = None

    def spec(self) -> dict[str, Any]:
        """The column in the bulletin's plain-data form."""
        return {"title": self.title, "kind": self.kind, **({"group": self.group} if self.group else {})}


def _percent_points(rate: float | None, known: bool) -> Any:
    """上传率 as the 2018 tables print it: percentage points with two decimals."""
    if not known:
        return NO_STATISTICS
    return 0 if rate is None else round(rate * 100, 2)


def _compliance(rate: float | None) -> Any:
    return "/" if rate is None else round(rate, 4)


def _declared(u: UnitFigures) -> str:
    return f"{u.declared if u.declared is not None else '未反馈'}/{u.required}"


NAME = Col("接入单位", lambda u: u.name, "text")
RECORDS = [
    Col("基本信息", lambda u: u.records_basic, group="健康档案累计上传总量"),
    Col("高血压", lambda u: u.records_hypertension, group="健康档案累计上传总量"),
    Col("糖尿病", lambda u: u.records_diabetes, group="健康档案累计上传总量"),
]
USAGE_2018 = [
    Col("健康档案浏览器部署数量/调用次数", lambda u: usage_cell(u, "browser"), "ratio"),
    Col("智能提示部署数量/调用次数", lambda u: usage_cell(u, "reminder"), "ratio"),
]
RATES_2018 = [
    Col("上传人次", lambda u: u.visits, group="门急诊信息"),
    Col(
        "上传率（与卫统对比）",
        lambda u: _percent_points(u.visit_upload_rate, u.stat_visits is not None),
        "decimal2",
        "门急诊信息",
    ),
    Col("上传人次", lambda u: u.discharges, group="出院信息"),
    Col(
        "上传率（与卫统对比）",
        lambda u: _percent_points(u.discharge_upload_rate, u.stat_discharges is not None),
        "decimal2",
        "出院信息",
    ),
]
ERA_COLUMNS: dict[tuple[str, str], list[Col]] = {
    ("2018", "district"): [
        NAME,
        Col("声明上传表/规定上传表", _declared, "ratio"),
        Col("实际上传表（CDA 文档）", lambda u: u.tables_uploaded),
        Col("数据入库量", lambda u: u.stored),
        Col("数据上传天数", lambda u: u.upload_days),
        *RATES_2018,
        *RECORDS,
        *USAGE_2018,
    ],
    ("2018", "hospital"): [
        NAME,
        Col("声明上传表/规定上传", _declared, "ratio"),
        Col("已上传表/CDA 文档（份）", lambda u: u.tables_uploaded),
        Col("数据上传量", lambda u: u.uploads),
        Col("数据上传天数", lambda u: u.upload_days),
        *RATES_2018,
        *USAGE_2018,
    ],
    ("2020", "district"): [
        NAME,
        Col("申明上传表/规定上传表", _declared, "ratio"),
        Col("已上传表（CDA文档）", lambda u: u.tables_uploaded),
        Col("数据上传量", lambda u: u.uploads),
        Col("数据上传天数", lambda u: u.upload_days),
        Col("门急诊信息上传人次", lambda u: u.visits),
        Col("出院信息上传人次", lambda u: u.discharges),
        *RECORDS,
    ],
    ("2020", "hospital"): [
        NAME,
        Col("申明上传表/规定上传", _declared, "ratio"),
        Col("已上传表/CDA文档（份）", lambda u: u.tables_uploaded),
        Col("数据上传量", lambda u: u.uploads),
        Col("数据上传天数", lambda u: u.upload_days),
        Col("门急诊信息上传人次", lambda u: u.visits),
        Col("出院信息上传人次", lambda u: u.discharges),
    ],
}
_2022 = [
    NAME,
    Col("数据上传量", lambda u: u.uploads),
    Col("数据上传天数", lambda u: u.upload_days),
    Col("实时数据表单上传情况", lambda u: f"{u.forms}/{u.forms_of}", "ratio"),
    Col("人次", lambda u: u.visits, group="门急诊信息"),
    Col("实时数据符合率", lambda u: _compliance(u.visit_compliance), "percent", "门急诊信息"),
    Col("人次", lambda u: u.discharges, group="出院信息"),
    Col("实时数据符合率", lambda u: _compliance(u.discharge_compliance), "percent", "出院信息"),
]
ERA_COLUMNS[("2022", "district")] = [*_2022, *RECORDS]
ERA_COLUMNS[("2022", "hospital")] = _2022


def columns(layout: str, kind: str) -> list[dict[str, Any]]:
    """The header of a data-collection table in a layout, for districts or hospitals."""
    if layout == "2025":
        return COLUMNS_2025
    return [c.spec() for c in ERA_COLUMNS[(check_layout(layout), kind)]]


def row(layout: str, u: UnitFigures) -> list[Any]:
    """One unit's row of the data-collection table in a layout."""
    if layout == "2025":
        return collection_row(u)
    return [c.cell(u) for c in ERA_COLUMNS[(check_layout(layout), u.kind)]]


def order_key(layout: str, u: UnitFigures) -> int:
    """The sort key of the era (largest first): 2018's district table is ordered by 数据入库量."""
    return -(u.stored if layout == "2018" and u.kind == "district" else u.uploads)
