"""MCH services, the public API other domains and the entry points import: the pregnancy episode (建册,
antenatal visits, risk grading, 专案管理, transfer, delivery, postpartum visits and the 42-day check) and the
child (registration under the mother's ID, the link to the child's own ID, newborn visits, examinations,
growth), and what intake stores for the MCH catalogue tables. Callers own the transaction; every refusal is an
`Invalid`/`Conflict`/`NotFound` with the rule in Chinese.

The work is done in `common.py`, `pregnancy.py`, `risk.py`, `children.py` and `uploads.py`; this module
names what is public.
"""

from __future__ import annotations

from rhip.mch.children import (
    child_visits,
    exams_due,
    get_all_children,
    link_child,
    record_child_death,
    record_child_visit,
    register_child,
)
from rhip.mch.common import (
    IDENTITY_SOURCE,
    WRITE_KINDS,
    Actor,
    get_child,
    get_pregnancy,
    institution_district,
    today,
)
from rhip.mch.pregnancy import (
    end_pregnancy,
    get_all_pregnancies,
    record_antenatal_visit,
    record_delivery,
    record_maternal_death,
    record_postpartum_visit,
    register_pregnancy,
    transfer_pregnancy,
    visits_of,
)
from rhip.mch.risk import (
    CaseRow,
    assess_risk,
    follow_up_days,
    high_risk_cases,
    is_case,
    record_follow_up,
)
from rhip.mch.uploads import absorb_stored

__all__ = [
    "IDENTITY_SOURCE",
    "WRITE_KINDS",
    "Actor",
    "CaseRow",
    "absorb_stored",
    "assess_risk",
    "child_visits",
    "end_pregnancy",
    "exams_due",
    "follow_up_days",
    "get_all_children",
    "get_all_pregnancies",
    "get_child",
    "get_pregnancy",
    "high_risk_cases",
    "institution_district",
    "is_case",
    "link_child",
    "record_antenatal_visit",
    "record_child_death",
    "record_child_visit",
    "record_delivery",
    "record_follow_up",
    "record_maternal_death",
    "record_postpartum_visit",
    "register_child",
    "register_pregnancy",
    "today",
    "transfer_pregnancy",
    "visits_of",
]
