"""The synthetic city's maternal and child health.

- `month_plan` / `generate_month`: one month's activity calibrated to the 2018-03 bulletin's district table
  (南京市妇幼保健信息系统各区使用情况) at a scale s, each cell round-half-up(s × seed), districts at zero
  included, written through the real services (so every rule is checked): women registered with realistic
  gestational weeks and colour grading, first visits, return visits of women registered earlier, deliveries
  of women registered months before, first and second postpartum visits of women delivered the month before,
  children's records opened.
- `generate_year`: the cohorts of a report year for the indicators (about 80,000 × s births and 500,000 × s
  children under 7), calibrated to recent national values; written in bulk (Core inserts) for speed.

Every synthetic record's local id starts with "SYN", so the demo can be run again (`clear`).

The calibration is in `synth_plan.py`, the month in `synth_month.py`, the year's cohorts in `synth_year.py`.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from rhip.mch.models import (
    AntenatalVisit,
    CaseFollowUp,
    Child,
    ChildVisit,
    ChildYear,
    PostpartumVisit,
    Pregnancy,
    RiskAssessment,
    Transfer,
    UploadKey,
)
from rhip.mch.synth_month import generate_month
from rhip.mch.synth_plan import PREFIX, SEED_2018_03, SEED_TOTAL_2018_03, month_plan, scaled
from rhip.mch.synth_year import generate_year

__all__ = [
    "SEED_2018_03",
    "SEED_TOTAL_2018_03",
    "clear",
    "generate_month",
    "generate_year",
    "month_plan",
    "scaled",
]


def clear(session: Session) -> None:
    """Remove every synthetic MCH record (local ids starting with SYN), so the demo can run again."""
    preg = select(Pregnancy.id).where(Pregnancy.local_id.like(f"{PREFIX}%")).scalar_subquery()
    kids = select(Child.id).where(Child.local_id.like(f"{PREFIX}%")).scalar_subquery()
    session.execute(delete(ChildVisit).where(ChildVisit.child_id.in_(kids)))
    session.execute(delete(ChildYear).where(ChildYear.child_id.in_(kids)))
    session.execute(delete(Child).where(Child.local_id.like(f"{PREFIX}%")))
    for model in (AntenatalVisit, PostpartumVisit, RiskAssessment, CaseFollowUp, Transfer):
        session.execute(delete(model).where(model.pregnancy_id.in_(preg)))
    session.execute(delete(Pregnancy).where(Pregnancy.local_id.like(f"{PREFIX}%")))
    session.execute(delete(UploadKey).where(UploadKey.business_key.like(f"{PREFIX}%")))
