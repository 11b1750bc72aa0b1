"""Public-health rows of a district platform: health records and chronic-disease follow-ups."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from rhip.synth import lexicon, residents, rowkit as rk, vec
from rhip.synth.city import DAY

if TYPE_CHECKING:
    from rhip.synth.tables import Unit


def record_no(u: Unit, idx: np.ndarray) -> pa.Array:
    """Health-record numbers of the district platform."""
    return vec.padded(idx + 1, 10, "DA" + (u.plan.district_code or "000000"))


def health_record(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of health_record."""
    pop = u.pop
    person = u.hr_person[lo:hi]
    n = len(person)
    birth = pop.birth[person].astype(np.int64)
    earliest = np.maximum(birth, residents.day_number(date(2009, 1, 1)))
    created = earliest + (
        gen.random(n) * np.maximum(u.month.start_day + u.month.days - 1 - earliest, 0)
    ).astype(np.int64)
    event = (
        u.month.start
        + gen.integers(0, u.month.days, size=n) * DAY
        + gen.integers(8 * 3600, 17 * 3600, size=n)
    )
    home = pop.home[person]
    dcodes = [lexicon.DISTRICTS[d][0] for d in lexicon.DISTRICTS] + [
        lexicon.METRO[c][1][0] for c in lexicon.METRO
    ]
    cols = {
        "record_no": record_no(u, np.arange(lo, hi)),
        "id_number": pop.id_number.take(pa.array(person)),
        "name": pop.name.take(pa.array(person)),
        "sex": vec.text(pop.sex[person]),
        "birth_date": vec.dates(birth),
        "ethnicity": vec.take(["01", "03", "08"], gen.choice(3, size=n, p=[0.95, 0.03, 0.02])),
        "marital_status": vec.take(["20", "30", "40"], gen.choice(3, size=n, p=[0.85, 0.1, 0.05])),
        "abo_blood_type": vec.take(
            ["1", "2", "3", "4", "5"], gen.choice(5, size=n, p=[0.28, 0.24, 0.33, 0.09, 0.06])
        ),
        "residence_type": vec.take(["1", "2"], (gen.random(n) < 0.15).astype(np.int64)),
        "phone": vec.text(pop.phone[person]),
        "address": pop.address.take(pa.array(person)),
        "district_code": vec.take(dcodes, home),
        "created_at": vec.dates(created),
        "responsible_doctor_code": u.doc(gen.integers(0, 1000, size=n)),
    }
    return rk.Rows(cols, event, None)


def followup(
    u: Unit, record: np.ndarray, day: np.ndarray, lo: int, hi: int, gen: np.random.Generator, prefix: str
) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Columns shared by the chronic-disease follow-ups, and their event times."""
    r, d = record[lo:hi], day[lo:hi]
    n = len(r)
    event = d * DAY + gen.integers(8 * 3600, 17 * 3600, size=n)
    cols = {
        "followup_no": vec.padded(np.arange(lo, hi) + 1, 10, prefix),
        "record_no": record_no(u, r),
        "id_number": u.pop.id_number.take(pa.array(u.hr_person[r])),
        "followup_date": vec.dates(d),
        "followup_mode": vec.take(["1", "2", "3"], gen.choice(3, size=n, p=[0.6, 0.15, 0.25])),
        "medication_compliance": vec.take(["1", "2", "3"], gen.choice(3, size=n, p=[0.8, 0.15, 0.05])),
        "followup_classification": vec.take(
            ["1", "2", "3", "4"], gen.choice(4, size=n, p=[0.75, 0.2, 0.03, 0.02])
        ),
        "next_followup_date": vec.dates(d + 90),
        "doctor_code": u.doc(gen.integers(0, 1000, size=n)),
        "height_cm": vec.decimal(gen.normal(165, 8, size=n).clip(140, 195), 1),
        "weight_kg": vec.decimal(gen.normal(66, 11, size=n).clip(38, 130), 1),
        "bmi": vec.decimal(gen.normal(24, 3, size=n).clip(16, 40), 1),
        "systolic": vec.text(gen.normal(138, 15, size=n).clip(90, 200).astype(np.int64)),
        "diastolic": vec.text(gen.normal(84, 10, size=n).clip(55, 120).astype(np.int64)),
    }
    return cols, event


def hypertension_followup(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of hypertension_followup."""
    cols, event = followup(u, u.fu_hyp_record, u.fu_hyp_day, lo, hi, gen, "GX")
    n = hi - lo
    cols["heart_rate"] = vec.text(gen.normal(76, 9, size=n).clip(50, 120).astype(np.int64))
    cols["daily_smoking"] = vec.text(np.where(gen.random(n) < 0.25, gen.integers(1, 20, size=n), 0))
    cols["daily_drinking"] = vec.decimal(np.where(gen.random(n) < 0.2, gen.uniform(0.5, 4, size=n), 0.0), 1)
    return rk.Rows(cols, event, None)


def diabetes_followup(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of diabetes_followup."""
    cols, event = followup(u, u.fu_dia_record, u.fu_dia_day, lo, hi, gen, "TN")
    n = hi - lo
    cols["fasting_glucose"] = vec.decimal(gen.normal(7.4, 1.6, size=n).clip(3.5, 20), 1)
    cols["hba1c"] = vec.decimal(gen.normal(7.1, 1.0, size=n).clip(4.5, 14), 1)
    cols["insulin_daily_units"] = vec.decimal(
        np.where(gen.random(n) < 0.2, gen.integers(8, 40, size=n), 0).astype(float), 0
    )
    return rk.Rows(cols, event, None)


TABLES = {
    "health_record": health_record,
    "hypertension_followup": hypertension_followup,
    "diabetes_followup": diabetes_followup,
}
