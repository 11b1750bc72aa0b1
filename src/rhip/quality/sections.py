"""The quality domain's bulletin sections: summary, the two data-collection tables in the month's era layout
(or a chosen one), the cumulative line and the supplementary table of every other figure."""

from __future__ import annotations

from typing import Any

from rhip.months import label as month_label
from rhip.quality import eras
from rhip.quality.figures import MonthFigures
from rhip.quality.layouts import SUPPLEMENT_COLUMNS, cumulative_text, summary_paragraphs, supplement_row


def sections_of(fig: MonthFigures, *, layout: str | None = None) -> list[dict[str, Any]]:
    """The bulletin sections for a month's figures (plain data, see rhip.bulletin.sections)."""
    layout = eras.check_layout(layout) if layout else eras.layout_for(fig.month)
    label = month_label(fig.month)
    cumulative = f"（截止 {label}，区及医院累计校验入库数据 {cumulative_text(fig.cumulative)}）"

    def table(kind: str, title: str, sheet: str) -> dict[str, Any]:
        rows = sorted((u for u in fig.units if u.kind == kind), key=lambda u: eras.order_key(layout, u))
        return {
            "title": title,
            "sheet": sheet,
            "columns": eras.columns(layout, kind),
            "rows": [eras.row(layout, u) for u in rows],
        }

    title_d = f"{label}南京市卫生信息平台数据采集情况（区）"
    title_h = f"{label}南京市卫生信息平台数据采集情况（医院）"
    hospitals = table("hospital", title_h, "数据采集情况（医院）")
    hospitals["notes"] = [cumulative]
    return [
        {
            "key": "quality.summary",
            "title": f"{label}数据采集情况",
            "order": 900,
            "paragraphs": summary_paragraphs(fig),
        },
        {
            "key": "quality.districts",
            "title": title_d,
            "order": 901,
            "tables": [table("district", title_d, "数据采集情况（区）")],
        },
        {"key": "quality.hospitals", "title": title_h, "order": 902, "tables": [hospitals]},
        {
            "key": "quality.supplement",
            "title": f"{label}数据采集质量补充指标",
            "order": 903,
            "tables": [
                {
                    "title": f"{label}数据采集质量补充指标（区及医院）",
                    "sheet": "质量补充指标",
                    "columns": SUPPLEMENT_COLUMNS,
                    "rows": [supplement_row(u) for u in fig.of_kind("district") + fig.of_kind("hospital")],
                }
            ],
        },
    ]
