"""Rows of every catalogue table for one uploading unit, generated vectorised in chunks.

`Unit` sizes each table (the calibrated core plus elastic detail tables that bring the unit's total rows
to the bulletin's 定时数据上传量) and `Unit.rows(table, lo, hi)` returns rows lo..hi as text columns.
Columns that no table-specific generator fills are generated from the catalogue field's type, code
system and range, so new catalogue fields get plausible values too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rhip.registry import catalogue, codes, data as registry
from rhip.registry.catalogue import Dataset, Field
from rhip.synth import lexicon, residents, vec, vocab
from rhip.synth.city import DAY, FORM_PRIORITY, Activity, Month, Plan, icd_tables

PAYMENT = (["1", "2", "7", "5", "6", "8", "9"], [0.45, 0.35, 0.12, 0.03, 0.02, 0.02, 0.01])
PANEL_SIZES = np.array([len(p[3]) for p in vocab.LAB_PANELS])
PANEL_WEIGHTS = np.array([0.3, 0.14, 0.12, 0.1, 0.12, 0.1, 0.06, 0.06])
EXAM_WEIGHTS = np.array([0.18, 0.14, 0.08, 0.05, 0.04, 0.2, 0.07, 0.05, 0.12, 0.04, 0.03])
ITEMS_PER_PRESCRIPTION = 3.0
PUBLIC_HEALTH_SHARE = 0.15  # of a district platform's elastic rows


@dataclass
class Rows:
    """Generated rows: text columns by field name, event times, and the patient index per row (or None)."""

    cols: dict[str, pa.Array]
    event: np.ndarray
    patient: np.ndarray | None


@cache
def datasets() -> dict[str, Dataset]:
    """The catalogue by name."""
    return {d.name: d for d in catalogue.datasets()}


@cache
def _dept_names() -> dict[str, str]:
    return {d.code: d.name for d in registry.departments()}


def _at(a: np.ndarray, i: np.ndarray) -> np.ndarray:
    """a[i], or zeros when a is empty (the other branch of an np.where is taken anyway)."""
    return a[i] if len(a) else np.zeros(len(i), dtype=a.dtype)


def _pick(
    gen: np.random.Generator, n: int, values: list[str], p: list[float] | np.ndarray | None = None
) -> pa.Array:
    if p is not None:
        p = np.asarray(p, dtype=np.float64)
        p = p / p.sum()
    return vec.take(values, gen.choice(len(values), size=n, p=p))


def _repeat(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parent index and 0-based position of each child row, for per-parent child counts."""
    counts = np.asarray(counts, dtype=np.int64)
    parent = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    pos = np.arange(len(parent)) - np.repeat(starts, counts)
    return parent, pos


def _counts(
    total: int, n: int, gen: np.random.Generator, *, first: bool = True, sigma: float = 0.8
) -> np.ndarray:
    """Split `total` children over n parents (lognormal weights); parent 0 gets at least one."""
    if n == 0 or total <= 0:
        return np.zeros(n, dtype=np.int64)
    w = gen.lognormal(0.0, sigma, size=n)
    if first:
        c = vec.spread(total - 1, w, gen)
        c[0] += 1
        return c
    return vec.spread(total, w, gen)


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
        dv, dpos = _repeat(self.dx_out)
        ds_, spos = _repeat(self.dx_in)
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
        pres_per_visit = _counts(n_pres, n_v, gen)
        self.pres_visit, _ = _repeat(pres_per_visit)
        self.pres_cat = gen.choice(3, size=len(self.pres_visit), p=[0.7, 0.2, 0.1]) + 1
        if "中医" in plan.record.name:
            self.pres_cat = gen.choice(3, size=len(self.pres_visit), p=[0.35, 0.3, 0.35]) + 1
        items = 1 + _counts(
            max(0, n_items - len(self.pres_visit)), len(self.pres_visit), gen, first=False, sigma=0.5
        )
        self.item_pres, self.item_seq = _repeat(items if len(self.pres_visit) else np.zeros(0, np.int64))
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
        self.order_stay, _ = _repeat(_counts(n_orders, n_s, gen))
        self.order_time = self._in_stay(self.order_stay, gen)

        # lab reports: outpatient first, then inpatient; kind 0 visit, 1 stay
        lab_o, _ = _repeat(_counts(n_lab_o, n_v, gen))
        lab_i, _ = _repeat(_counts(n_lab_i, n_s, gen))
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
        self.res_report, self.res_pos = _repeat(PANEL_SIZES[self.lab_panel])

        exam_o, _ = _repeat(_counts(n_exam_o, n_v, gen))
        exam_i, _ = _repeat(_counts(n_exam_i, n_s, gen))
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

    def _patient_cols(self, pat: np.ndarray, event: np.ndarray, names: dict[str, str]) -> dict[str, pa.Array]:
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

    def _dept(self, idx: np.ndarray) -> tuple[pa.Array, pa.Array]:
        codes_ = self.depts
        names = _dept_names()
        return vec.take(codes_, idx % len(codes_)), vec.take(
            [names.get(c, c) for c in codes_], idx % len(codes_)
        )

    def _doc(self, idx: np.ndarray) -> pa.Array:
        return self.act.doctors.take(pa.array(idx % len(self.act.doctors)))

    def _icd(self, idx: np.ndarray) -> tuple[pa.Array, pa.Array]:
        return vec.take(self.icd_codes, idx), vec.take(self.icd_names, idx)

    def _random_icd(self, n: int, gen: np.random.Generator) -> np.ndarray:
        return self.plan.icd[gen.integers(0, len(self.plan.icd), size=n)]

    # ------------------------------------------------------------------ rows

    def rows(self, table: str, lo: int, hi: int) -> Rows:
        """Rows lo..hi of a table (valid records, change flag 1)."""
        gen = vec.rng(self.seed, "rows", self.plan.code, table, lo)
        make = getattr(self, f"_t_{table}", None)
        if make is None:
            return Rows({}, np.full(hi - lo, self.month.start + 12 * 3600, np.int64), None)
        rows: Rows = make(lo, hi, gen)
        return rows

    def _t_patient_info(self, lo: int, hi: int, gen: np.random.Generator) -> Rows:
        act, pop = self.act, self.pop
        pat = np.arange(lo, hi)
        n = len(pat)
        person = act.p_person[pat]
        event = act.p_first[pat]
        cols = self._patient_cols(
            pat,
            event,
            {
                "patient_id": "patient_id",
                "name": "name",
                "sex": "sex",
                "birth_date": "birth_date",
                "id_number": "id_number",
                "phone": "phone",
            },
        )
        has_id = pc.is_valid(cols["id_number"])
        cols["id_type"] = pc.if_else(has_id, pa.scalar("01"), pa.scalar(None, pa.string()))
        cols["medical_card_no"] = vec.padded(gen.integers(0, 10**10, size=n), 12, "K")
        age = (self.month.start_day - pop.birth[person]) / 365.2425
        cols["ethnicity"] = vec.take(
            ["01", "03", "08", "04", "10"], gen.choice(5, size=n, p=[0.94, 0.02, 0.02, 0.01, 0.01])
        )
        marital = np.where(age < 22, 0, np.where(gen.random(n) < 0.85, 1, np.where(age > 65, 3, 4)))
        cols["marital_status"] = vec.take(["10", "20", "20", "30", "40"], marital)
        cols["address"] = pop.address.take(pa.array(person))
        home = pop.home[person]
        dcodes = [lexicon.DISTRICTS[d][0] for d in lexicon.DISTRICTS] + [
            lexicon.METRO[c][1][0] for c in lexicon.METRO
        ]
        cols["district_code"] = vec.take(dcodes, home)
        since = np.maximum(
            pop.birth[person].astype(np.int64) * DAY, event - gen.integers(0, 3000, size=n) * DAY
        )
        cols["registered_at"] = vec.datetimes(
            np.minimum(since + gen.integers(8 * 3600, 17 * 3600, size=n), event)
        )
        return Rows(cols, event, pat)

    def _visit_cols(self, v: np.ndarray, gen: np.random.Generator) -> dict[str, pa.Array]:
        act = self.act
        dept, dname = self._dept(act.v_dept[v])
        return {
            "visit_type": vec.text(act.v_type[v]),
            "dept_code": dept,
            "dept_name": dname,
            "doctor_code": self._doc(act.v_doc[v]),
            "doctor_name": act.doctor_names.take(pa.array(act.v_doc[v] % len(act.doctor_names))),
        }

    def _t_outpatient_registration(self, lo: int, hi: int, gen: np.random.Generator) -> Rows:
        act = self.act
        v = np.arange(lo, hi)
        n = len(v)
        vt = act.v_time[v]
        day_start = (vt // DAY) * DAY
        reg = np.maximum(vt - gen.integers(60, 1800, size=n), day_start)
        cols = self._patient_cols(
            act.v_pat[v], vt, {"patient_id": "patient_id", "patient_name": "name", "id_number": "id_number"}
        )
        cols.update(self._visit_cols(v, gen))
        cols["registration_no"] = vec.padded(v + 1, 10, "GH")
        cols["registered_at"] = vec.datetimes(reg)
        cols["visit_date"] = vec.dates(vt // DAY)
        booked = gen.random(n) < 0.45
        cols["appointment_no"] = pc.if_else(
            pa.array(booked), vec.padded(v + 1, 10, "YY"), pa.scalar(None, pa.string())
        )
        cols["channel"] = pc.if_else(
            pa.array(booked), _pick(gen, n, vocab.CHANNELS), pa.scalar(None, pa.string())
        )
        fee = np.where(
            self.plan.record.tertiary,
            gen.choice([1000, 1500, 2500, 5000], size=n),
            gen.choice([500, 1000], size=n),
        )
        cols["registration_fee"] = vec.money(fee)
        return Rows(cols, reg, act.v_pat[v])

    def _t_outpatient_visit(self, lo: int, hi: int, gen: np.random.Generator) -> Rows:
        act = self.act
        v = np.arange(lo, hi)
        n = len(v)
        vt = act.v_time[v]
        cols = self._patient_cols(
            act.v_pat[v],
            vt,
            {
                "patient_id": "patient_id",
                "patient_name": "name",
                "id_number": "id_number",
                "sex": "sex",
                "age": "age",
            },
        )
        cols.update(self._visit_cols(v, gen))
        cols["visit_no"] = vec.padded(v + 1, 10, "MZ")
        cols["registration_no"] = vec.padded(v + 1, 10, "GH")
        cols["visit_time"] = vec.datetimes(vt)
        cols["first_visit"] = vec.take(["1", "0"], (gen.random(n) < 0.6).astype(np.int64))
        cols["chief_complaint"] = _pick(gen, n, vocab.COMPLAINTS)
        code, name = self._icd(act.v_icd[v])
        cols["main_diagnosis_code"], cols["main_diagnosis_name"] = code, name
        cols["payment_type"] = _pick(gen, n, *PAYMENT)
        fee = act.v_fee[v]
        cols["fee_total"] = vec.money(fee)
        cols["fee_drug"] = vec.money(fee * 45 // 100)
        cols["fee_exam"] = vec.money(fee * 15 // 100)
        cols["fee_lab"] = vec.money(fee * 15 // 100)
        return Rows(cols, vt, act.v_pat[v])

    def _t_diagnosis(self, lo: int, hi: int, gen: np.random.Generator) -> Rows:
        act = self.act
        kind, parent, seq = self.dx_kind[lo:hi], self.dx_parent[lo:hi], self.dx_seq[lo:hi]
        n = hi - lo
        out = kind == 0
        vp = np.where(out, parent, 0)
        sp = np.where(out, 0, parent)
        t = np.where(
            out,
            _at(act.v_time, vp) + gen.integers(120, 1200, size=n),
            np.where(
                kind == 1,
                _at(act.s_admit, sp) + gen.integers(600, 3600, size=n),
                _at(act.s_dis, sp) - gen.integers(1800, 7200, size=n),
            ),
        )
        t = np.where(out, t, np.maximum(t, _at(act.s_admit, sp) + 60))
        pat = np.where(out, _at(act.v_pat, vp), _at(act.s_pat, sp))
        main = seq == 1
        icd_main = np.where(out, _at(act.v_icd, vp), _at(act.s_icd, sp))
        icd = np.where(main, icd_main, self._random_icd(n, gen))
        code, name = self._icd(icd)
        none = pa.scalar(None, pa.string())
        dept_idx = np.where(out, _at(act.v_dept, vp), _at(act.s_dept, sp))
        dept, _ = self._dept(dept_idx)
        cols = {
            "diagnosis_no": vec.padded(np.arange(lo, hi) + 1, 10, "ZD"),
            "visit_no": pc.if_else(pa.array(out), vec.padded(vp + 1, 10, "MZ"), none),
            "admission_no": pc.if_else(pa.array(~out), vec.padded(sp + 1, 10, "ZY"), none),
            "patient_id": vec.padded(pat + 1, 10, "P"),
            "diagnosis_type": vec.take(["1", "2", "3"], kind),
            "main_flag": vec.take(["0", "1"], main.astype(np.int64)),
            "seq": vec.text(seq),
            "diagnosis_code": code,
            "diagnosis_name": name,
            "diagnosed_at": vec.datetimes(t),
            "dept_code": dept,
            "doctor_code": self._doc(np.where(out, _at(act.v_doc, vp), _at(act.s_doc, sp))),
        }
        return Rows(cols, t, pat)

    def _t_prescription(self, lo: int, hi: int, gen: np.random.Generator) -> Rows:
        act = self.act
        v = self.pres_visit[lo:hi]
        n = hi - lo
        cat = self.pres_cat[lo:hi]
        t = self.pres_time[lo:hi]
        dept, _ = self._dept(act.v_dept[v])
        herbal = np.where(cat == 3, gen.choice([7, 14], size=n), 0)
        cols = {
            "prescription_no": vec.padded(np.arange(lo, hi) + 1, 10, "CF"),
            "visit_no": vec.padded(v + 1, 10, "MZ"),
            "patient_id": vec.padded(act.v_pat[v] + 1, 10, "P"),
            "prescription_category": vec.text(cat),
            "dept_code": dept,
            "doctor_code": self._doc(act.v_doc[v]),
            "issued_at": vec.datetimes(t),
            "diagnosis_code": vec.take(self.icd_codes, act.v_icd[v]),
            "herbal_doses": pc.if_else(pa.array(cat == 3), vec.text(herbal), pa.scalar(None, pa.string())),
            "total_amount": vec.money(self.pres_amount[lo:hi]),
        }
        return Rows(cols, t, act.v_pat[v])

    def _t_prescription_item(self, lo: int, hi: int, gen: np.random.Generator) -> Rows:
        p = self.item_pres[lo:hi]
        n = hi - lo
        cat = self.pres_cat[p]
        groups = {
            1: [i for i, d in enumerate(vocab.DRUGS) if d[0].startswith("X")],
            2: [i for i, d in enumerate(vocab.DRUGS) if d[0].startswith("Z")],
            3: [i for i, d in enumerate(vocab.DRUGS) if d[0].startswith("T")],
        }
        drug = np.zeros(n, np.int64)
        for c, members in groups.items():
            m = cat == c
            drug[m] = np.array(members)[gen.integers(0, len(members), size=int(m.sum()))]
        t = self.pres_time[p]
        qty = np.where(cat == 3, gen.integers(50, 300, size=n), gen.integers(1, 4, size=n))
        price = np.array([d[9] for d in vocab.DRUGS])[drug]

        def col(j: int) -> pa.Array:
            """Column j of the drug list for these rows."""
            return vec.take([str(d[j]) for d in vocab.DRUGS], drug)

        cols = {
            "prescription_no": vec.padded(p + 1, 10, "CF"),
            "item_seq": vec.text(self.item_seq[lo:hi] + 1),
            "issued_at": vec.datetimes(t),
            "drug_code": col(0),
            "drug_name": col(1),
            "specification": col(2),
            "dosage_form": col(3),
            "dose": vec.decimal(np.array([d[4] for d in vocab.DRUGS], float)[drug], 2),
            "dose_unit": col(5),
            "frequency": col(6),
            "route": col(7),
            "days": vec.text(gen.integers(3, 15, size=n)),
            "quantity": vec.decimal(qty.astype(float), 2),
            "quantity_unit": col(8),
            "unit_price": vec.money(price),
            "amount": vec.money(price * qty),
        }
        return Rows(cols, t, self.act.v_pat[self.pres_visit[p]])

    def _t_fee_settlement(self, lo: int, hi: int, gen: np.random.Generator) -> Rows:
        act = self.act
        n_v = len(act.v_time)
        i = np.arange(lo, hi)
        out = i < n_v
        v = np.where(out, i, 0)
        s = np.where(out, 0, i - n_v)
        t = np.where(
            out,
            _at(act.v_time, v) + gen.integers(600, 5400, size=len(i)),
            _at(act.s_dis, s) + gen.integers(600, 7200, size=len(i)),
        )
        total = np.where(out, _at(act.v_fee, v), _at(act.s_fee, s))
        fund = total * gen.integers(30, 70, size=len(i)) // 100
        account = (total - fund) * gen.integers(0, 60, size=len(i)) // 100
        pat = np.where(out, _at(act.v_pat, v), _at(act.s_pat, s))
        none = pa.scalar(None, pa.string())
        cols = {
            "settlement_no": vec.padded(i + 1, 10, "JS"),
            "settlement_type": vec.take(["2", "1"], out.astype(np.int64)),
            "visit_no": pc.if_else(pa.array(out), vec.padded(v + 1, 10, "MZ"), none),
            "admission_no": pc.if_else(pa.array(~out), vec.padded(s + 1, 10, "ZY"), none),
            "patient_id": vec.padded(pat + 1, 10, "P"),
            "settled_at": vec.datetimes(t),
            "payment_type": _pick(gen, len(i), *PAYMENT),
            "total_amount": vec.money(total),
            "fund_amount": vec.money(fund),
            "account_amount": vec.money(account),
            "self_amount": vec.money(total - fund - account),
            "operator_code": vec.padded(gen.integers(1, 60, size=len(i)), 3, "SF"),
        }
        return Rows(cols, t, pat)

    def _parent_cols(
        self, kind: np.ndarray, parent: np.ndarray
    ) -> tuple[dict[str, pa.Array], np.ndarray, np.ndarray]:
        act = self.act
        out = kind == 0
        vp = np.where(out, parent, 0)
        sp = np.where(out, 0, parent)
        none = pa.scalar(None, pa.string())
        pat = np.where(out, _at(act.v_pat, vp), _at(act.s_pat, sp))
        dept_idx = np.where(out, _at(act.v_dept, vp), _at(act.s_dept, sp))
        doc = np.where(out, _at(act.v_doc, vp), _at(act.s_doc, sp))
        cols = {
            "visit_no": pc.if_else(pa.array(out), vec.padded(vp + 1, 10, "MZ"), none),
            "admission_no": pc.if_else(pa.array(~out), vec.padded(sp + 1, 10, "ZY"), none),
            "patient_id": vec.padded(pat + 1, 10, "P"),
        }
        return cols, dept_idx, doc

    def _t_lab_report(self, lo: int, hi: int, gen: np.random.Generator) -> Rows:
        n = hi - lo
        cols, dept_idx, doc = self._parent_cols(self.lab_kind[lo:hi], self.lab_parent[lo:hi])
        panel = self.lab_panel[lo:hi]
        sampled = self.lab_time[lo:hi]
        received = self.lab_received[lo:hi]
        reported = self.lab_reported[lo:hi]
        cols.update(
            {
                "report_no": vec.padded(np.arange(lo, hi) + 1, 10, "JY"),
                "request_dept_code": self._dept(dept_idx)[0],
                "request_doctor_code": self._doc(doc),
                "specimen_no": vec.padded(np.arange(lo, hi) + 1, 10, "BB"),
                "specimen_type": vec.take([p[2] for p in vocab.LAB_PANELS], panel),
                "panel_code": vec.take([p[0] for p in vocab.LAB_PANELS], panel),
                "panel_name": vec.take([p[1] for p in vocab.LAB_PANELS], panel),
                "sampled_at": vec.datetimes(sampled),
                "received_at": vec.datetimes(received),
                "reported_at": vec.datetimes(reported),
                "reporter_code": vec.padded(gen.integers(1, 40, size=n), 3, "JY"),
                "reviewer_code": vec.padded(gen.integers(1, 40, size=n), 3, "JY"),
            }
        )
        pat = np.asarray(pc.cast(pc.utf8_slice_codeunits(cols["patient_id"], 1), pa.int64())) - 1
        return Rows(cols, reported, pat)

    def _t_lab_result(self, lo: int, hi: int, gen: np.random.Generator) -> Rows:
        rep = self.res_report[lo:hi]
        pos = self.res_pos[lo:hi]
        panel = self.lab_panel[rep]
        n = hi - lo
        items = [it for p in vocab.LAB_PANELS for it in p[3]]
        offset = np.cumsum([0] + [len(p[3]) for p in vocab.LAB_PANELS])[:-1]
        item = offset[panel] + pos
        low = np.array([it[4] for it in items])[item]
        high = np.array([it[5] for it in items])[item]
        mid, span = (low + high) / 2, (high - low)
        value = np.abs(mid + gen.normal(0, 0.35, size=n) * span)
        flag = np.where(value < low, "L", np.where(value > high, "H", "N"))
        places = np.where(high < 10, 2, 1)
        text = pc.if_else(pa.array(places == 2), vec.decimal(value, 2), vec.decimal(value, 1))
        t = self.lab_reported[rep]
        cols = {
            "report_no": vec.padded(rep + 1, 10, "JY"),
            "item_code": vec.take([it[0] for it in items], item),
            "loinc_code": vec.take([it[1] for it in items], item),
            "item_name": vec.take([it[2] for it in items], item),
            "result_value": text,
            "result_numeric": text,
            "unit": pc.if_else(
                pc.equal(vec.take([it[3] for it in items], item), ""),
                pa.scalar(None, pa.string()),
                vec.take([it[3] for it in items], item),
            ),
            "reference_range": vec.join(vec.decimal(low, 2), vec.decimal(high, 2), sep="-"),
            "reference_low": vec.decimal(low, 2),
            "reference_high": vec.decimal(high, 2),
            "abnormal_flag": pa.array(flag.astype(object), pa.string()),
            "reported_at": vec.datetimes(t),
        }
        kind, parent = self.lab_kind[rep], self.lab_parent[rep]
        pat = np.where(
            kind == 0,
            _at(self.act.v_pat, np.where(kind == 0, parent, 0)),
            _at(self.act.s_pat, np.where(kind == 0, 0, parent)),
        )
        return Rows(cols, t, pat)

    def _t_exam_report(self, lo: int, hi: int, gen: np.random.Generator) -> Rows:
        n = hi - lo
        cols, dept_idx, doc = self._parent_cols(self.exam_kind[lo:hi], self.exam_parent[lo:hi])
        ex = self.exam_item[lo:hi]
        t0 = self.exam_time[lo:hi]
        reported = t0 + gen.integers(1200, 3 * 3600, size=n)
        positive = gen.random(n) < 0.3
        e = vocab.EXAMS
        conclusion = pc.if_else(
            pa.array(positive), vec.take([x[5] for x in e], ex), vec.take([x[4] for x in e], ex)
        )
        images = np.select(
            [np.isin(ex, [1, 2]), np.isin(ex, [3, 4]), ex == 8],
            [gen.integers(200, 600, size=n), gen.integers(150, 400, size=n), 1],
            default=gen.integers(2, 30, size=n),
        )
        cols.update(
            {
                "report_no": vec.padded(np.arange(lo, hi) + 1, 10, "JC"),
                "accession_no": vec.padded(np.arange(lo, hi) + 1, 10, "YX"),
                "modality": vec.take([x[0] for x in e], ex),
                "exam_item_code": vec.take([x[1] for x in e], ex),
                "exam_item_name": vec.take([x[2] for x in e], ex),
                "body_part": vec.take([x[3] for x in e], ex),
                "request_dept_code": self._dept(dept_idx)[0],
                "exam_time": vec.datetimes(t0),
                "reported_at": vec.datetimes(reported),
                "findings": conclusion,
                "conclusion": conclusion,
                "positive_flag": vec.take(["0", "1"], positive.astype(np.int64)),
                "image_count": vec.text(images),
                "reporter_code": self._doc(doc + 7),
                "reviewer_code": self._doc(doc + 13),
            }
        )
        pat = np.asarray(pc.cast(pc.utf8_slice_codeunits(cols["patient_id"], 1), pa.int64())) - 1
        return Rows(cols, reported, pat)

    def _stay_cols(self, s: np.ndarray, gen: np.random.Generator) -> dict[str, pa.Array]:
        act = self.act
        dept, _ = self._dept(act.s_dept[s])
        code, name = self._icd(act.s_icd[s])
        return {
            "admission_no": vec.padded(s + 1, 10, "ZY"),
            "dept_code": dept,
            "_dx_code": code,
            "_dx_name": name,
        }

    def _t_admission(self, lo: int, hi: int, gen: np.random.Generator) -> Rows:
        act = self.act
        s = np.arange(lo, hi)
        n = len(s)
        t = act.s_admit[s]
        cols = self._patient_cols(
            act.s_pat[s],
            t,
            {
                "patient_id": "patient_id",
                "patient_name": "name",
                "id_number": "id_number",
                "sex": "sex",
                "age": "age",
            },
        )
        sc = self._stay_cols(s, gen)
        cols.update(
            {
                "admission_no": sc["admission_no"],
                "inpatient_no": vec.padded(s + 1, 8, "Z"),
                "admitted_at": vec.datetimes(t),
                "dept_code": sc["dept_code"],
                "ward": _pick(gen, n, vocab.WARDS),
                "bed_no": vec.text(gen.integers(1, 60, size=n)),
                "admission_route": vec.take(["2", "1", "3"], gen.choice(3, size=n, p=[0.7, 0.25, 0.05])),
                "attending_doctor_code": self._doc(act.s_doc[s]),
                "chief_complaint": _pick(gen, n, vocab.COMPLAINTS),
                "admission_diagnosis_code": sc["_dx_code"],
                "admission_diagnosis_name": sc["_dx_name"],
                "payment_type": _pick(gen, n, *PAYMENT),
            }
        )
        return Rows(cols, t, act.s_pat[s])

    def _t_discharge_summary(self, lo: int, hi: int, gen: np.random.Generator) -> Rows:
        act = self.act
        s = np.arange(lo, hi)
        n = len(s)
        t = act.s_dis[s]
        sc = self._stay_cols(s, gen)
        fee = act.s_fee[s]
        cols = {
            "admission_no": sc["admission_no"],
            "patient_id": vec.padded(act.s_pat[s] + 1, 10, "P"),
            "admitted_at": vec.datetimes(act.s_admit[s]),
            "discharged_at": vec.datetimes(t),
            "dept_code": sc["dept_code"],
            "los_days": vec.text(t // DAY - act.s_admit[s] // DAY),
            "discharge_diagnosis_code": sc["_dx_code"],
            "discharge_diagnosis_name": sc["_dx_name"],
            "discharge_disposition": vec.take(
                ["1", "2", "3", "4", "5"], gen.choice(5, size=n, p=[0.93, 0.03, 0.02, 0.015, 0.005])
            ),
            "total_fee": vec.money(fee),
            "self_pay_fee": vec.money(fee * gen.integers(10, 40, size=n) // 100),
            "treatment_summary": _pick(gen, n, vocab.TREATMENT),
            "discharge_advice": _pick(gen, n, vocab.DISCHARGE_ADVICE),
            "attending_doctor_code": self._doc(act.s_doc[s]),
        }
        return Rows(cols, t, act.s_pat[s])

    def _t_inpatient_order(self, lo: int, hi: int, gen: np.random.Generator) -> Rows:
        act = self.act
        s = self.order_stay[lo:hi]
        n = hi - lo
        t = self.order_time[lo:hi]
        drug = gen.random(n) < 0.6
        d = gen.integers(0, len(vocab.DRUGS), size=n)
        o = gen.integers(0, len(vocab.ORDERS), size=n)
        long_ = gen.random(n) < 0.4
        start = t + gen.integers(0, 3600, size=n)
        stop = np.where(long_, np.maximum(act.s_dis[s], start + 60), start + gen.integers(60, 1800, size=n))
        none = pa.scalar(None, pa.string())
        dn = vec.take([x[1] for x in vocab.DRUGS], d)
        cols = {
            "order_no": vec.padded(np.arange(lo, hi) + 1, 10, "YZ"),
            "admission_no": vec.padded(s + 1, 10, "ZY"),
            "patient_id": vec.padded(act.s_pat[s] + 1, 10, "P"),
            "order_type": vec.take(["2", "1"], long_.astype(np.int64)),
            "order_category": pc.if_else(
                pa.array(drug), pa.scalar("1"), vec.take([x[0] for x in vocab.ORDERS], o)
            ),
            "order_content": pc.if_else(pa.array(drug), dn, vec.take([x[1] for x in vocab.ORDERS], o)),
            "item_code": pc.if_else(
                pa.array(drug),
                vec.take([x[0] for x in vocab.DRUGS], d),
                vec.take([x[2] for x in vocab.ORDERS], o),
            ),
            "dose": pc.if_else(
                pa.array(drug), vec.decimal(np.array([x[4] for x in vocab.DRUGS], float)[d], 2), none
            ),
            "dose_unit": pc.if_else(pa.array(drug), vec.take([x[5] for x in vocab.DRUGS], d), none),
            "frequency": pc.if_else(pa.array(drug), vec.take([x[6] for x in vocab.DRUGS], d), none),
            "route": pc.if_else(pa.array(drug), vec.take([x[7] for x in vocab.DRUGS], d), none),
            "ordered_at": vec.datetimes(t),
            "start_at": vec.datetimes(start),
            "stop_at": vec.datetimes(stop),
            "doctor_code": self._doc(act.s_doc[s]),
            "dept_code": self._dept(act.s_dept[s])[0],
        }
        return Rows(cols, t, act.s_pat[s])

    def _t_medical_record_front_page(self, lo: int, hi: int, gen: np.random.Generator) -> Rows:
        act = self.act
        s = np.arange(lo, hi)
        n = len(s)
        t = act.s_dis[s]
        cols = self._patient_cols(
            act.s_pat[s],
            act.s_admit[s],
            {
                "patient_id": "patient_id",
                "name": "name",
                "sex": "sex",
                "birth_date": "birth_date",
                "age": "age",
                "id_number": "id_number",
            },
        )
        sc = self._stay_cols(s, gen)
        fee = act.s_fee[s]
        k = gen.integers(0, 4, size=n)
        others = self._random_icd(int(k.sum()), gen)
        offsets = np.concatenate([[0], np.cumsum(k)]).astype(np.int32)
        lists = pa.ListArray.from_arrays(pa.array(offsets), vec.take(self.icd_codes, others))
        other_codes = pc.binary_join(lists, "|")
        other_codes = pc.if_else(pc.equal(other_codes, ""), pa.scalar(None, pa.string()), other_codes)
        surgical = np.isin(s, self.surgery_stay)
        proc = gen.integers(0, len(vocab.PROCEDURES), size=n) if n else np.zeros(0, np.int64)
        none = pa.scalar(None, pa.string())
        person = act.p_person[act.s_pat[s]]
        age = (self.month.start_day - self.pop.birth[person]) / 365.2425
        cols.update(
            {
                "admission_no": sc["admission_no"],
                "medical_record_no": vec.padded(act.s_pat[s] + 1, 8, "BA"),
                "admission_times": vec.text(1 + np.minimum(gen.geometric(0.6, size=n) - 1, 20)),
                "ethnicity": vec.take(["01", "03", "08"], gen.choice(3, size=n, p=[0.95, 0.03, 0.02])),
                "marital_status": vec.take(["10", "20"], (age >= 25).astype(np.int64)),
                "payment_type": _pick(gen, n, *PAYMENT),
                "admission_route": vec.take(["2", "1", "3"], gen.choice(3, size=n, p=[0.7, 0.25, 0.05])),
                "admitted_at": vec.datetimes(act.s_admit[s]),
                "admission_dept_code": sc["dept_code"],
                "discharged_at": vec.datetimes(t),
                "discharge_dept_code": sc["dept_code"],
                "los_days": vec.text(t // DAY - act.s_admit[s] // DAY),
                "main_diagnosis_code": sc["_dx_code"],
                "main_diagnosis_name": sc["_dx_name"],
                "other_diagnosis_codes": other_codes,
                "main_procedure_code": pc.if_else(
                    pa.array(surgical), vec.take([p[0] for p in vocab.PROCEDURES], proc), none
                ),
                "main_procedure_name": pc.if_else(
                    pa.array(surgical), vec.take([p[1] for p in vocab.PROCEDURES], proc), none
                ),
                "discharge_disposition": vec.take(
                    ["1", "2", "3", "4"], gen.choice(4, size=n, p=[0.94, 0.03, 0.02, 0.01])
                ),
                "abo_blood_type": vec.take(
                    ["1", "2", "3", "4", "5"], gen.choice(5, size=n, p=[0.28, 0.24, 0.33, 0.09, 0.06])
                ),
                "total_fee": vec.money(fee),
                "self_pay_fee": vec.money(fee * gen.integers(10, 40, size=n) // 100),
                "attending_doctor_code": self._doc(act.s_doc[s]),
                "coder_code": vec.padded(gen.integers(1, 10, size=n), 3, "BM"),
            }
        )
        return Rows(cols, t, act.s_pat[s])

    def _t_surgery(self, lo: int, hi: int, gen: np.random.Generator) -> Rows:
        act = self.act
        s = self.surgery_stay[lo:hi]
        n = len(s)
        a, d = act.s_admit[s], act.s_dis[s]
        start = a + ((d - a) * gen.uniform(0.1, 0.5, size=n)).astype(np.int64)
        start = np.where(s == 0, a + 3 * 3600, start)
        end = np.minimum(start + gen.integers(1800, 5 * 3600, size=n), d - 60)
        end = np.maximum(end, start + 60)
        proc = gen.integers(0, len(vocab.PROCEDURES), size=n)
        code, _ = self._icd(act.s_icd[s])
        cols = {
            "surgery_no": vec.padded(np.arange(lo, hi) + 1, 10, "SS"),
            "admission_no": vec.padded(s + 1, 10, "ZY"),
            "patient_id": vec.padded(act.s_pat[s] + 1, 10, "P"),
            "procedure_code": vec.take([p[0] for p in vocab.PROCEDURES], proc),
            "procedure_name": vec.take([p[1] for p in vocab.PROCEDURES], proc),
            "surgery_level": vec.take([p[2] for p in vocab.PROCEDURES], proc),
            "pre_op_diagnosis_code": code,
            "post_op_diagnosis_code": code,
            "started_at": vec.datetimes(start),
            "ended_at": vec.datetimes(end),
            "surgeon_code": self._doc(act.s_doc[s] + 3),
            "anesthesia_method": _pick(gen, n, vocab.ANESTHESIA),
            "blood_loss_ml": vec.text(gen.integers(5, 800, size=n)),
            "dept_code": self._dept(act.s_dept[s])[0],
        }
        return Rows(cols, start, act.s_pat[s])

    def _record_no(self, idx: np.ndarray) -> pa.Array:
        return vec.padded(idx + 1, 10, "DA" + (self.plan.district_code or "000000"))

    def _t_health_record(self, lo: int, hi: int, gen: np.random.Generator) -> Rows:
        pop = self.pop
        person = self.hr_person[lo:hi]
        n = len(person)
        birth = pop.birth[person].astype(np.int64)
        earliest = np.maximum(birth, residents.day_number(date(2009, 1, 1)))
        created = earliest + (
            gen.random(n) * np.maximum(self.month.start_day + self.month.days - 1 - earliest, 0)
        ).astype(np.int64)
        event = (
            self.month.start
            + gen.integers(0, self.month.days, size=n) * DAY
            + gen.integers(8 * 3600, 17 * 3600, size=n)
        )
        home = pop.home[person]
        dcodes = [lexicon.DISTRICTS[d][0] for d in lexicon.DISTRICTS] + [
            lexicon.METRO[c][1][0] for c in lexicon.METRO
        ]
        cols = {
            "record_no": self._record_no(np.arange(lo, hi)),
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
            "responsible_doctor_code": self._doc(gen.integers(0, 1000, size=n)),
        }
        return Rows(cols, event, None)

    def _followup(
        self, record: np.ndarray, day: np.ndarray, lo: int, hi: int, gen: np.random.Generator, prefix: str
    ) -> tuple[dict[str, pa.Array], np.ndarray]:
        r, d = record[lo:hi], day[lo:hi]
        n = len(r)
        event = d * DAY + gen.integers(8 * 3600, 17 * 3600, size=n)
        cols = {
            "followup_no": vec.padded(np.arange(lo, hi) + 1, 10, prefix),
            "record_no": self._record_no(r),
            "id_number": self.pop.id_number.take(pa.array(self.hr_person[r])),
            "followup_date": vec.dates(d),
            "followup_mode": vec.take(["1", "2", "3"], gen.choice(3, size=n, p=[0.6, 0.15, 0.25])),
            "medication_compliance": vec.take(["1", "2", "3"], gen.choice(3, size=n, p=[0.8, 0.15, 0.05])),
            "followup_classification": vec.take(
                ["1", "2", "3", "4"], gen.choice(4, size=n, p=[0.75, 0.2, 0.03, 0.02])
            ),
            "next_followup_date": vec.dates(d + 90),
            "doctor_code": self._doc(gen.integers(0, 1000, size=n)),
            "height_cm": vec.decimal(gen.normal(165, 8, size=n).clip(140, 195), 1),
            "weight_kg": vec.decimal(gen.normal(66, 11, size=n).clip(38, 130), 1),
            "bmi": vec.decimal(gen.normal(24, 3, size=n).clip(16, 40), 1),
            "systolic": vec.text(gen.normal(138, 15, size=n).clip(90, 200).astype(np.int64)),
            "diastolic": vec.text(gen.normal(84, 10, size=n).clip(55, 120).astype(np.int64)),
        }
        return cols, event

    def _t_hypertension_followup(self, lo: int, hi: int, gen: np.random.Generator) -> Rows:
        cols, event = self._followup(self.fu_hyp_record, self.fu_hyp_day, lo, hi, gen, "GX")
        n = hi - lo
        cols["heart_rate"] = vec.text(gen.normal(76, 9, size=n).clip(50, 120).astype(np.int64))
        cols["daily_smoking"] = vec.text(np.where(gen.random(n) < 0.25, gen.integers(1, 20, size=n), 0))
        cols["daily_drinking"] = vec.decimal(
            np.where(gen.random(n) < 0.2, gen.uniform(0.5, 4, size=n), 0.0), 1
        )
        return Rows(cols, event, None)

    def _t_diabetes_followup(self, lo: int, hi: int, gen: np.random.Generator) -> Rows:
        cols, event = self._followup(self.fu_dia_record, self.fu_dia_day, lo, hi, gen, "TN")
        n = hi - lo
        cols["fasting_glucose"] = vec.decimal(gen.normal(7.4, 1.6, size=n).clip(3.5, 20), 1)
        cols["hba1c"] = vec.decimal(gen.normal(7.1, 1.0, size=n).clip(4.5, 14), 1)
        cols["insulin_daily_units"] = vec.decimal(
            np.where(gen.random(n) < 0.2, gen.integers(8, 40, size=n), 0).astype(float), 0
        )
        return Rows(cols, event, None)


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
            return unit._dept(gen.integers(0, 1000, size=n))[0]
        if f.code_system == "icd10":
            return vec.take(unit.icd_codes, unit._random_icd(n, gen))
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
