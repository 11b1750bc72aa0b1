"""The data-collection part of the bulletin: the tables "南京市卫生信息平台数据采集情况（区）/（医院）" in the
layout of the seeds, the cumulative line, a short summary and a supplementary table of the other figures.
"""

from __future__ import annotations

from typing import Any

from rhip.months import label as month_label
from rhip.quality.figures import MonthFigures, UnitFigures


def thousands(yuan: float) -> float:
    """Yuan as 千元 with two decimals."""
    return round(yuan / 1000.0, 2)


def cumulative_text(n: int) -> str:
    """“304.90 亿条” for large totals, the exact count with separators below 100 million."""
    return f"{n / 1e8:.2f} 亿条" if n >= 100_000_000 else f"{n:,} 条"


COLUMNS_2025: list[dict[str, Any]] = [
    {"title": "接入单位"},
    {"title": "定时数据上传量", "kind": "int"},
    {"title": "实时数据上传天数", "kind": "int"},
    {"title": "实时数据表单上传情况", "kind": "ratio"},
    {"title": "人次", "group": "门急诊信息", "kind": "int"},
    {"title": "收入（千元）", "group": "门急诊信息", "kind": "decimal2"},
    {"title": "人次", "group": "出院信息", "kind": "int"},
    {"title": "住院收入（千元）", "group": "出院信息", "kind": "decimal2"},
]


def collection_row(u: UnitFigures) -> list[Any]:
    """One row of a 2025-style data-collection table ("/" for revenue when there was no activity)."""
    return [
        u.name,
        u.uploads,
        u.upload_days,
        f"{u.forms}/{u.forms_of}",
        u.visits,
        thousands(u.visit_revenue) if u.visits else "/",
        u.discharges,
        thousands(u.inpatient_revenue) if u.discharges else "/",
    ]


def _rate(v: float | None) -> Any:
    return "/" if v is None else round(v, 4)


def usage_cell(u: UnitFigures, what: str) -> str:
    """“部署数量/调用次数” of the record browser or smart reminders (未反馈: no report; 未部署: none)."""
    if u.usage is None:
        return "未反馈"
    deployed, calls = getattr(u.usage, f"{what}_deployed"), getattr(u.usage, f"{what}_calls")
    return f"{deployed if deployed or u.kind == 'district' else '未部署'}/{calls}"


SUPPLEMENT_COLUMNS: list[dict[str, Any]] = [
    {"title": "接入单位"},
    {"title": "类别"},
    {"title": "声明上传表/规定上传表", "kind": "ratio"},
    {"title": "已上传表", "kind": "int"},
    {"title": "CDA 文档（份）", "kind": "int"},
    {"title": "上传天数/应传天数", "kind": "ratio"},
    {"title": "实时数据符合率", "group": "门急诊信息", "kind": "percent"},
    {"title": "上传率（与卫统对比）", "group": "门急诊信息", "kind": "percent"},
    {"title": "实时数据符合率", "group": "出院信息", "kind": "percent"},
    {"title": "上传率（与卫统对比）", "group": "出院信息", "kind": "percent"},
    {"title": "基本信息", "group": "健康档案累计上传总量", "kind": "int"},
    {"title": "高血压", "group": "健康档案累计上传总量", "kind": "int"},
    {"title": "糖尿病", "group": "健康档案累计上传总量", "kind": "int"},
    {"title": "健康档案浏览器部署数量/调用次数", "kind": "ratio"},
    {"title": "智能提示部署数量/调用次数", "kind": "ratio"},
]


def supplement_row(u: UnitFigures) -> list[Any]:
    """One row of the supplementary quality table."""
    no_stat = "未获取卫统数据"
    return [
        u.name,
        "区" if u.kind == "district" else "医院",
        f"{u.declared if u.declared is not None else '未反馈'}/{u.required}",
        u.tables_uploaded,
        u.cda,
        f"{u.upload_days}/{u.active_days}",
        _rate(u.visit_compliance),
        no_stat if u.stat_visits is None else _rate(u.visit_upload_rate),
        _rate(u.discharge_compliance),
        no_stat if u.stat_discharges is None else _rate(u.discharge_upload_rate),
        u.records_basic,
        u.records_hypertension,
        u.records_diabetes,
        usage_cell(u, "browser"),
        usage_cell(u, "reminder"),
    ]


def summary_paragraphs(fig: MonthFigures, *, days_threshold: float = 0.75) -> list[str]:
    """A short Chinese summary: totals, top uploaders, units below the thresholds."""
    label = month_label(fig.month)
    districts, hospitals = fig.of_kind("district"), fig.of_kind("hospital")
    total = sum(u.uploads for u in fig.units)
    visits = sum(u.visits for u in fig.units)
    discharges = sum(u.discharges for u in fig.units)
    sending = [u for u in fig.units if u.uploads > 0]
    paras = [
        f"{label}，全市 {len(districts)} 个区卫生信息平台和 {len(hospitals)} 家医院中"
        f"有 {len(sending)} 家单位上传数据，"
        f"定时数据上传量合计 {total:,} 条；上传门急诊 {visits:,} 人次、出院 {discharges:,} 人次。"
        f"截止 {label}，区及医院累计校验入库数据 {cumulative_text(fig.cumulative)}。"
    ]
    top_h = "、".join(f"{u.name}（{u.uploads:,} 条）" for u in hospitals[:3] if u.uploads)
    top_d = "、".join(f"{u.name}（{u.uploads:,} 条）" for u in districts[:3] if u.uploads)
    if top_h or top_d:
        paras.append(
            "定时数据上传量居前三位的"
            + "；".join(p for p in (f"区为{top_d}" if top_d else "", f"医院为{top_h}" if top_h else "") if p)
            + "。"
        )
    low_days = [u for u in fig.units if u.active_days and u.upload_days < days_threshold * u.active_days]
    missing_forms = [u for u in fig.units if u.forms < u.forms_of]
    no_data = [u for u in fig.units if u.uploads == 0]
    parts = []
    if low_days:
        names = "、".join(f"{u.name}（{u.upload_days} 天）" for u in low_days[:12])
        more = f"等 {len(low_days)} 家" if len(low_days) > 12 else ""
        parts.append(f"实时数据上传天数不足当月应传天数 {round(days_threshold * 100)}% 的有{names}{more}")
    if missing_forms:
        parts.append(f"实时数据表单未全部上传的有 {len(missing_forms)} 家单位")
    if no_data:
        parts.append(f"本月未上传数据的有{'、'.join(u.name for u in no_data[:12])}")
    if parts:
        paras.append("；".join(parts) + "，请相关单位对照问题清单及时整改。")
    return paras
