"""Rows of every catalogue table for one uploading unit, generated vectorised in chunks.

`Unit` sizes each table (the calibrated core plus elastic detail tables that bring the unit's total rows
to the bulletin's 定时数据上传量) and `Unit.rows(table, lo, hi)` returns rows lo..hi as text columns.
Columns that no table-specific generator fills are generated from the catalogue field's type, code
system and range, so new catalogue fields get plausible values too.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from rhip.registry import catalogue, codes
from rhip.registry.catalogue import Dataset, Field
from rhip.synth import (
    gen_inpatient,
    gen_outpatient,
    gen_public_health,
    lexicon,
    residents,
    rowkit as rk,
    vec,
    vocab,
)
from rhip.synth.city import DAY, FORM_PRIORITY, Activity, Month, Plan, icd_tables
from rhip.synth.rowkit import Rows

PANEL_SIZES = np.array([len(p[3]) for p in vocab.LAB_PANELS])
PANEL_WEIGHTS = np.array([0.3, 0.14, 0.12, 0.1, 0.12, 0.1, 0.06, 0.06])
EXAM_WEIGHTS = np.array([0.18, 0.14, 0.08, 0.05, 0.04, 0.2, 0.07, 0.05, 0.12, 0.04, 0.03])
ITEMS_PER_PRESCRIPTION = 3.0
PUBLIC_HEALTH_SHARE = 0.15  # of a district platform's elastic rows
ALLERGY_SHARE = 0.02  # visits at which an allergy (过敏史) is recorded
# the table-specific generators, by catalogue table; the other tables' columns come from `generic`
GENERATORS = {**gen_outpatient.TABLES, **gen_inpatient.TABLES, **gen_public_health.TABLES}


class Unit:
    """One uploading unit's month: sizes of every table and a row generator per table."""

    def __init__(
        self,
        plan: Plan,
        act: Activity,
        pop: residents.Residents,
        month: Month,
        *,
        seed: int,
        factors: dict[str, float],
    ):
        self.plan, self.act, self.pop, self.month, self.seed = plan, act, pop, month, seed
        gen = vec.rng(seed, "unit", plan.code)
        self.gen = gen
        n_v, n_s = len(act.v_time), act.n_stays
        n_all = len(act.s_admit)
        n_p = len(act.p_person)
        self.depts = plan.departments
        self.icd_codes, self.icd_names, _ = icd_tables()

        # the calibrated core and the fixed per-event tables
        self.dx_out = np.minimum(1 + gen.poisson(0.3, size=n_v), 4)
        self.dx_in = np.minimum(2 + gen.poisson(1.0, size=n_s), 8)
        surg_p = 0.0 if plan.record.kind == "district_platform" else 0.3
        self.surgery_stay = np.flatnonzero(gen.random(n_s) < surg_p)
        # allergies at a few visits, from their own stream (no other table's draws change)
        self.allergy_visit = np.flatnonzero(vec.rng(seed, "allergy", plan.code).random(n_v) < ALLERGY_SHARE)
        fixed = (
            n_p
            + 3 * n_v
            + int(self.dx_out.sum())
            + n_all
            + 4 * n_s
            + int(self.dx_in.sum())
            + len(self.surgery_stay)
        )

        # diagnoses: outpatient rows, then per stay one admission diagnosis and the discharge diagnoses
        dv, dpos = rk.repeat_children(self.dx_out)
        ds_, spos = rk.repeat_children(self.dx_in)
        self.dx_kind = np.concatenate([np.zeros(len(dv), np.int8), np.where(spos == 0, 1, 2).astype(np.int8)])
        self.dx_parent = np.concatenate([dv, ds_]).astype(np.int64)
        self.dx_seq = np.concatenate([dpos + 1, np.where(spos == 0, 1, spos)])

        # elastic detail tables: size them, then correct once so the rows sent match 定时数据上传量
        self.n_v, self.n_s, self.n_p, self.n_all = n_v, n_s, n_p, n_all
        f_el = max(factors.values(), default=1.0)
        target = plan.target.uploads
        elastic = max(0, int(target / f_el) - fixed)
        self._elastic(elastic)
        expected = sum(self.sizes[t] * factors.get(t, 1.0) for t in self.sizes)
        if elastic and expected:
            self._elastic(max(0, elastic + int((target - expected) / f_el)))
        # allergies ride on top of the calibrated sizes (a few rows; the other tables' sizes do not move)
        self.sizes["allergy"] = len(self.allergy_visit)
        realtime = {d.name for d in catalogue.realtime_datasets()}
        feasible = [t for t in FORM_PRIORITY if t in realtime and self.sizes.get(t, 0) > 0]
        feasible += sorted(t for t in realtime if t not in FORM_PRIORITY and self.sizes.get(t, 0) > 0)
        self.enabled = frozenset(feasible[: plan.forms]) if len(plan.upload_days) else frozenset()

    def _elastic(self, elastic: int) -> None:
        """Lay out the elastic tables for `elastic` valid rows (outpatient, inpatient, public health)."""
        plan, act = self.plan, self.act
        n_v, n_s, n_p, n_all = self.n_v, self.n_s, self.n_p, self.n_all
        gen = vec.rng(self.seed, "elastic", plan.code)
        # shares: outpatient detail, inpatient detail, public health (district platforms)
        w_out, w_in = float(n_v), 25.0 * n_s
        district = plan.record.kind == "district_platform"
        w_ph = PUBLIC_HEALTH_SHARE * (w_out + w_in) / (1 - PUBLIC_HEALTH_SHARE) if district else 0.0
        if district and w_out + w_in == 0:
            w_ph = 1.0  # a platform with no clinical activity this month still sends public-health records
        total_w = w_out + w_in + w_ph
        e_out = int(elastic * w_out / total_w) if total_w else 0
        e_in = int(elastic * w_in / total_w) if total_w else 0
        e_ph = elastic - e_out - e_in if w_ph else 0
        avg_panel = float((PANEL_SIZES * PANEL_WEIGHTS).sum() / PANEL_WEIGHTS.sum())

        # outpatient: prescriptions and their items, lab reports and results, exam reports
        n_pres = int(e_out * 0.45 / (1 + ITEMS_PER_PRESCRIPTION)) if n_v else 0
        n_items = int(e_out * 0.45) - n_pres
        n_lab_o = int(e_out * 0.45 / (1 + avg_panel)) if n_v else 0
        n_exam_o = int(e_out * 0.10) if n_v else 0
        pres_per_visit = rk.split_counts(n_pres, n_v, gen)
        self.pres_visit, _ = rk.repeat_children(pres_per_visit)
        self.pres_cat = gen.choice(3, size=len(self.pres_visit), p=[0.7, 0.2, 0.1]) + 1
        if "中医" in plan.record.name:
            self.pres_cat = gen.choice(3, size=len(self.pres_visit), p=[0.35, 0.3, 0.35]) + 1
        items = 1 + rk.split_counts(
            max(0, n_items - len(self.pres_visit)), len(self.pres_visit), gen, first=False, sigma=0.5
        )
        self.item_pres, self.item_seq = rk.repeat_children(
            items if len(self.pres_visit) else np.zeros(0, np.int64)
        )
        self.pres_time = act.v_time[self.pres_visit] + gen.integers(300, 2400, size=len(self.pres_visit))
        visit_pres = np.bincount(self.pres_visit, minlength=n_v)
        drug_fee = act.v_fee * 45 // 100
        self.pres_amount = np.where(
            visit_pres[self.pres_visit] > 0,
            drug_fee[self.pres_visit] // np.maximum(visit_pres[self.pres_visit], 1),
            0,
        )

        # inpatient: orders, labs, exams
        n_orders = int(e_in * 0.60) if n_s else 0
        n_lab_i = int(e_in * 0.35 / (1 + avg_panel)) if n_s else 0
        n_exam_i = int(e_in * 0.05) if n_s else 0
        self.order_stay, _ = rk.repeat_children(rk.split_counts(n_orders, n_s, gen))
        self.order_time = self._in_stay(self.order_stay, gen)

        # lab reports: outpatient first, then inpatient; kind 0 visit, 1 stay
        lab_o, _ = rk.repeat_children(rk.split_counts(n_lab_o, n_v, gen))
        lab_i, _ = rk.repeat_children(rk.split_counts(n_lab_i, n_s, gen))
        self.lab_kind = np.concatenate([np.zeros(len(lab_o), np.int8), np.ones(len(lab_i), np.int8)])
        self.lab_parent = np.concatenate([lab_o, lab_i]).astype(np.int64)
        self.lab_time = np.concatenate(
            [act.v_time[lab_o] + gen.integers(600, 3600, size=len(lab_o)), self._in_stay(lab_i, gen)]
        )
        self.lab_panel = gen.choice(
            len(PANEL_SIZES), size=len(self.lab_parent), p=PANEL_WEIGHTS / PANEL_WEIGHTS.sum()
        )
        self.lab_received = self.lab_time + gen.integers(300, 2400, size=len(self.lab_time))
        self.lab_reported = self.lab_received + gen.integers(1800, 4 * 3600, size=len(self.lab_time))
        self.res_report, self.res_pos = rk.repeat_children(PANEL_SIZES[self.lab_panel])

        exam_o, _ = rk.repeat_children(rk.split_counts(n_exam_o, n_v, gen))
        exam_i, _ = rk.repeat_children(rk.split_counts(n_exam_i, n_s, gen))
        self.exam_kind = np.concatenate([np.zeros(len(exam_o), np.int8), np.ones(len(exam_i), np.int8)])
        self.exam_parent = np.concatenate([exam_o, exam_i]).astype(np.int64)
        self.exam_time = np.concatenate(
            [act.v_time[exam_o] + gen.integers(900, 5400, size=len(exam_o)), self._in_stay(exam_i, gen)]
        )
        self.exam_item = gen.choice(
            len(vocab.EXAMS), size=len(self.exam_parent), p=EXAM_WEIGHTS / EXAM_WEIGHTS.sum()
        )

        # public health (district platforms): health records of the district's residents, follow-ups
        n_rec = int(e_ph * 0.35)
        n_fu = e_ph - n_rec
        self.hr_person = self._district_people(n_rec, gen)
        n_rec = len(self.hr_person)
        if n_rec == 0:
            n_fu = 0
        hyp = int(n_fu * 0.7)
        self.fu_hyp_record = gen.integers(0, max(n_rec, 1), size=hyp) if n_rec else np.zeros(0, np.int64)
        self.fu_dia_record = (
            gen.integers(0, max(n_rec, 1), size=n_fu - hyp) if n_rec else np.zeros(0, np.int64)
        )
        self.fu_hyp_day = self._fu_days(len(self.fu_hyp_record), gen)
        self.fu_dia_day = self._fu_days(len(self.fu_dia_record), gen)

        self.sizes = {
            "patient_info": n_p,
            "outpatient_registration": n_v,
            "outpatient_visit": n_v,
            "diagnosis": len(self.dx_parent),
            "prescription": len(self.pres_visit),
            "prescription_item": len(self.item_pres),
            "fee_settlement": n_v + n_s,
            "lab_report": len(self.lab_parent),
            "lab_result": len(self.res_report),
            "exam_report": len(self.exam_parent),
            "admission": n_all,
            "discharge_summary": n_s,
            "inpatient_order": len(self.order_stay),
            "medical_record_front_page": n_s,
            "surgery": len(self.surgery_stay),
            "health_record": n_rec,
            "hypertension_followup": len(self.fu_hyp_record),
            "diabetes_followup": len(self.fu_dia_record),
        }

    # ------------------------------------------------------------------ helpers

    def _in_stay(self, stay: np.ndarray, gen: np.random.Generator) -> np.ndarray:
        a, d = self.act.s_admit[stay], self.act.s_dis[stay]
        t = a + (gen.random(len(stay)) * np.maximum(d - a - 1800, 1)).astype(np.int64)
        first = stay == 0  # stay 0's details all fall on its admission day (an upload day)
        t[first] = a[first] + gen.integers(600, 4 * 3600, size=int(first.sum()))
        return np.asarray(np.minimum(t, d - 60), dtype=np.int64)

    def _district_people(self, n: int, gen: np.random.Generator) -> np.ndarray:
        if n <= 0:
            return np.zeros(0, np.int64)
        districts = list(lexicon.DISTRICTS)
        d = self.plan.record.district
        if d not in districts:
            return np.zeros(0, np.int64)
        age = (self.month.start_day - self.pop.birth) / 365.2425
        people = np.flatnonzero((self.pop.home == districts.index(d)) & (age >= 35))
        if len(people) == 0:
            return np.zeros(0, np.int64)
        return np.sort(gen.choice(people, size=min(n, len(people)), replace=False))

    def _fu_days(self, n: int, gen: np.random.Generator) -> np.ndarray:
        return self.month.start_day + gen.integers(0, self.month.days, size=n)

    def size(self, table: str) -> int:
        """Valid rows of a table (0 for tables this unit does not send)."""
        return int(self.sizes.get(table, 0))

    def patient_cols(self, pat: np.ndarray, event: np.ndarray, names: dict[str, str]) -> dict[str, pa.Array]:
        """Patient-derived columns named per this table (name, id, sex, age, phone...)."""
        act, pop = self.act, self.pop
        person = act.p_person[pat]
        idx = pa.array(pat)
        out: dict[str, pa.Array] = {}
        for col, what in names.items():
            if what == "patient_id":
                out[col] = vec.padded(pat + 1, 10, "P")
            elif what == "name":
                out[col] = act.p_name.take(idx)
            elif what == "id_number":
                out[col] = act.p_id.take(idx)
            elif what == "sex":
                out[col] = vec.text(pop.sex[person])
            elif what == "birth_date":
                out[col] = vec.dates(pop.birth[person])
            elif what == "age":
                out[col] = vec.text(
                    np.maximum(0, (event // DAY - pop.birth[person]) / 365.2425).astype(np.int64)
                )
            elif what == "phone":
                out[col] = act.p_phone.take(idx)
        return out

    def dept(self, idx: np.ndarray) -> tuple[pa.Array, pa.Array]:
        """Department codes and names of the unit for department indexes."""
        codes_ = self.depts
        names = rk.dept_names()
        return vec.take(codes_, idx % len(codes_)), vec.take(
            [names.get(c, c) for c in codes_], idx % len(codes_)
        )

    def doc(self, idx: np.ndarray) -> pa.Array:
        """Doctor codes for doctor indexes."""
        return self.act.doctors.take(pa.array(idx % len(self.act.doctors)))

    def icd(self, idx: np.ndarray) -> tuple[pa.Array, pa.Array]:
        """ICD-10 codes and names for indexes into the code table."""
        return vec.take(self.icd_codes, idx), vec.take(self.icd_names, idx)

    def random_icd(self, n: int, gen: np.random.Generator) -> np.ndarray:
        """n indexes of diagnoses drawn from the unit's case mix."""
        return self.plan.icd[gen.integers(0, len(self.plan.icd), size=n)]

    # ------------------------------------------------------------------ rows

    def rows(self, table: str, lo: int, hi: int) -> Rows:
        """Rows lo..hi of a table (valid records, change flag 1)."""
        gen = vec.rng(self.seed, "rows", self.plan.code, table, lo)
        make = GENERATORS.get(table)
        if make is None:
            return Rows({}, np.full(hi - lo, self.month.start + 12 * 3600, np.int64), None)
        return make(self, lo, hi, gen)


CHUNK = 200_000  # rows per generated chunk


# ------------------------------------------------------------------ generic fields


def generic(f: Field, n: int, event: np.ndarray, unit: Unit, gen: np.random.Generator) -> pa.Array:
    """Values for a field no table generator filled: from its type, code system and range."""
    if f.type == "datetime":
        return vec.datetimes(event)
    if f.type == "date":
        return vec.dates(event // DAY)
    if f.type == "code" and f.code_system:
        if f.code_system == "department":
            return unit.dept(gen.integers(0, 1000, size=n))[0]
        if f.code_system == "icd10":
            return vec.take(unit.icd_codes, unit.random_icd(n, gen))
        values = sorted(codes.codes_of(f.code_system))
        return vec.take(values, gen.integers(0, len(values), size=n))
    if f.type in ("integer", "decimal"):
        lo = f.minimum if f.minimum is not None else 0.0
        hi = f.maximum if f.maximum is not None else lo + 100.0
        hi = min(hi, lo + 100.0)
        v = gen.uniform(lo, hi, size=n)
        return (
            vec.text(np.floor(v).astype(np.int64))
            if f.type == "integer"
            else vec.decimal(np.maximum(v, 0), 2)
        )
    if not f.required:
        return pa.nulls(n, pa.string())
    width = min(max(f.max_length or 12, 4), 12)
    return vec.padded(gen.integers(0, 10 ** (width - 2), size=n), width - 2, f.name[:2].upper())


def text_table(
    ds: Dataset, unit: Unit, rows: Rows, gen: np.random.Generator
) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """All-text rows in catalogue column order (common fields included), real-time flags, 数据采集时间."""
    n = len(rows.event)
    plan = unit.plan
    enabled = ds.name in unit.enabled
    collected, updated, rt = _timing(ds, rows.event, enabled, unit, gen)
    cols: dict[str, pa.Array] = {
        "org_code": pa.array([plan.code] * n, pa.string()) if n else pa.array([], pa.string()),
        "collected_at": vec.datetimes(collected),
        "updated_at": vec.datetimes(updated),
        "change_flag": pa.array(["1"] * n, pa.string()),
    }
    out: list[pa.Array] = []
    for f in ds.fields:
        v = cols.get(f.name)
        if v is None:
            v = rows.cols.get(f.name)
        if v is None:
            v = generic(f, n, rows.event, unit, gen)
        if isinstance(v, pa.ChunkedArray):
            v = v.combine_chunks()
        if v.type != pa.string():
            v = v.cast(pa.string())
        out.append(v)
    return pa.Table.from_arrays(out, names=list(ds.field_names)), rt, collected


def _timing(
    ds: Dataset, event: np.ndarray, enabled: bool, unit: Unit, gen: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from rhip.synth.city import timing

    return timing(event, realtime=ds.realtime, enabled=enabled, plan=unit.plan, month=unit.month, gen=gen)
