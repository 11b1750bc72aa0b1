"""Checking intake's rollups against the lake: every figure that comes from them, recounted from the records.

The rollups are deltas kept at each batch's commit; a recount applies docs/metrics.md's definitions to the
stored records directly. They must agree exactly (money to the fen: the rollups add and subtract amounts
in floating point, so the last bits of a sum may differ).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy.orm import Session

from rhip.lake.cluster import Job
from rhip.lake.duck import Duck
from rhip.lake.store import Lake
from rhip.quality.figures import UnitFigures, month_figures, visit_history

# the figures whose source is the lake's records (every other figure is read the same way both times)
FIELDS = (
    "upload_days",
    "forms",
    "visits",
    "visit_revenue",
    "visits_realtime",
    "discharges",
    "inpatient_revenue",
    "discharges_realtime",
    "records_basic",
    "records_hypertension",
    "records_diabetes",
)
MONEY = {"visit_revenue", "inpatient_revenue"}


@dataclass(frozen=True)
class Difference:
    """A figure on which the rollups and the recount disagree."""

    unit: str
    name: str
    figure: str
    rollups: object
    recount: object


def _value(u: UnitFigures, name: str) -> object:
    v = getattr(u, name)
    return round(v * 100) if name in MONEY else v


def differences(
    session: Session,
    *,
    lake: Lake,
    month: str,
    duck: Duck | None = None,
    units: Collection[str] | None = None,
    job: Job | None = None,
) -> list[Difference]:
    """Every disagreement between the month's figures from the rollups and recounted from the lake (the
    upload days and the 13 months of visit history included; only `units`, when given; with a `job`, the
    recount runs on its workers); empty when they agree."""
    recount: bool | Job = job if job is not None else True
    fast = month_figures(session, lake=lake, month=month, duck=duck)
    slow = month_figures(session, lake=lake, month=month, duck=duck, recount=recount)
    out: list[Difference] = []
    for a, b in zip(fast.units, slow.units, strict=True):
        if units is not None and a.code not in units:
            continue
        for name in FIELDS:
            if _value(a, name) != _value(b, name):
                out.append(Difference(a.code, a.name, name, getattr(a, name), getattr(b, name)))
        if a.days != b.days:
            out.append(Difference(a.code, a.name, "days", a.days, b.days))
    names = {u.code: u.name for u in fast.units}
    quick = visit_history(session, lake=lake, month=month, months=13, duck=duck)
    full = visit_history(session, lake=lake, month=month, months=13, duck=duck, recount=recount)
    for code in sorted(set(quick) | set(full)):
        if units is not None and code not in units:
            continue
        if quick.get(code) != full.get(code):
            out.append(
                Difference(code, names.get(code, code), "visit_history", quick.get(code), full.get(code))
            )
    return out
