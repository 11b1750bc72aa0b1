"""Quality dimensions in the spirit of DHIS2 and the WHO Data Quality Review, a score per unit and month,
and the problems they raise (问题清单). docs/metrics.md defines each dimension.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.lake.store import Lake
from rhip.quality import service
from rhip.quality.figures import MonthFigures, UnitFigures, month_figures, visit_history
from rhip.quality.models import CLOSED, QualityItem

DIMENSIONS = {
    "completeness": "完整性",
    "timeliness": "及时性",
    "conformity": "规范性",
    "continuity": "连续性",
    "consistency": "一致性",
    "outlier": "异常值",
}


@dataclass(frozen=True)
class Thresholds:
    """Configurable thresholds (shares in [0, 1]; outliers as a modified z-score)."""

    completeness: float = 0.90
    timeliness: float = 0.75
    conformity: float = 0.95
    continuity: float = 0.90
    consistency_band: float = 0.50  # this month within ±50% of the mean of earlier months
    outlier_z: float = 3.5


@dataclass
class Assessment:
    """One unit's dimension values, which of them fail, and its score (0–100)."""

    code: str
    name: str
    kind: str
    values: dict[str, float | None] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # dimension → Chinese reason
    score: float | None = None


def modified_z(value: float, history: list[float]) -> float | None:
    """Iglewicz–Hoaglin modified z-score of a value against a history (None when it cannot be computed)."""
    if len(history) < 3:
        return None
    med = statistics.median(history)
    mad = statistics.median(abs(x - med) for x in history)
    if mad == 0:
        return None if value == med else float("inf") if value > med else float("-inf")
    return 0.6745 * (value - med) / mad


def assess_unit(u: UnitFigures, history: dict[str, int], month: str, t: Thresholds) -> Assessment:
    """The dimensions of one unit for a month, given its monthly visit history."""
    a = Assessment(code=u.code, name=u.name, kind=u.kind)
    forms_share = u.forms / u.forms_of if u.forms_of else None
    rate = u.visit_upload_rate
    completeness = (
        None if forms_share is None else forms_share * (min(rate, 1.0) if rate is not None else 1.0)
    )
    timeliness = u.visit_compliance if u.visits else u.discharge_compliance
    conformity = 1 - u.rejected / u.uploads if u.uploads else None
    continuity = u.days_rate
    earlier = [float(n) for m, n in history.items() if m < month]
    consistency: float | None = None
    if earlier:
        mean = sum(earlier) / len(earlier)
        consistency = 1.0 if mean and abs(u.visits - mean) <= t.consistency_band * mean else 0.0
    z = modified_z(float(u.visits), earlier)
    outlier = None if z is None else (0.0 if abs(z) > t.outlier_z else 1.0)
    a.values = {
        "completeness": completeness,
        "timeliness": timeliness,
        "conformity": conformity,
        "continuity": continuity,
        "consistency": consistency,
        "outlier": outlier,
    }
    if completeness is not None and completeness < t.completeness:
        a.failed["completeness"] = (
            f"完整性 {completeness:.1%}，低于 {t.completeness:.0%}（实时表单 {u.forms}/{u.forms_of}）"
        )
    if timeliness is not None and timeliness < t.timeliness:
        a.failed["timeliness"] = f"实时数据符合率 {timeliness:.1%}，低于 {t.timeliness:.0%}"
    if conformity is not None and conformity < t.conformity:
        a.failed["conformity"] = (
            f"校验通过率 {conformity:.1%}，低于 {t.conformity:.0%}（拒收 {u.rejected:,} 条）"
        )
    if continuity is not None and continuity < t.continuity:
        a.failed["continuity"] = f"实时数据上传 {u.upload_days}/{u.active_days} 天，低于 {t.continuity:.0%}"
    if consistency == 0.0:
        a.failed["consistency"] = f"门急诊人次 {u.visits:,} 与此前月均值偏离超过 {t.consistency_band:.0%}"
    if outlier == 0.0 and z is not None:
        a.failed["outlier"] = f"门急诊人次 {u.visits:,} 的修正 z 值为 {z:.1f}，超过 {t.outlier_z}"
    present = [v for v in a.values.values() if v is not None]
    a.score = round(100 * sum(present) / len(present), 1) if present else None
    return a


def assess_month(
    session: Session,
    *,
    lake: Lake,
    month: str,
    thresholds: Thresholds | None = None,
    fig: MonthFigures | None = None,
) -> tuple[MonthFigures, list[Assessment]]:
    """Every unit's dimensions and score for a month."""
    t = thresholds or Thresholds()
    fig = fig or month_figures(session, lake=lake, month=month)
    history = visit_history(session, lake=lake, month=month, months=13)
    return fig, [assess_unit(u, history.get(u.code, {}), month, t) for u in fig.units]


def raise_items(session: Session, *, assessments: list[Assessment], month: str, created_by: str) -> int:
    """Open a problem for each failed dimension not already tracked (not closed) for the unit and month."""
    existing = {
        (i.institution_code, i.dimension)
        for i in session.scalars(
            select(QualityItem).where(QualityItem.month == month, QualityItem.status != CLOSED)
        )
    }
    n = 0
    for a in assessments:
        for dim, reason in a.failed.items():
            if (a.code, dim) in existing:
                continue
            service.create_item(
                session,
                institution_code=a.code,
                title=f"{month} {DIMENSIONS[dim]}未达标",
                dimension=dim,
                detail=reason,
                month=month,
                created_by=created_by,
            )
            n += 1
    return n
