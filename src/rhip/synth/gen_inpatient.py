"""Lab, exam and inpatient rows of a unit: reports and results, admissions, discharges, orders, surgery."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rhip.synth import rowkit as rk, vec, vocab
from rhip.synth.city import DAY

if TYPE_CHECKING:
    from rhip.synth.tables import Unit


def parent_cols(
    u: Unit, kind: np.ndarray, parent: np.ndarray
) -> tuple[dict[str, pa.Array], np.ndarray, np.ndarray]:
    """Columns a lab or exam report takes from its visit (kind 0) or stay (kind 1); its dept and doctor."""
    act = u.act
    out = kind == 0
    vp = np.where(out, parent, 0)
    sp = np.where(out, 0, parent)
    none = pa.scalar(None, pa.string())
    pat = np.where(out, rk.at(act.v_pat, vp), rk.at(act.s_pat, sp))
    dept_idx = np.where(out, rk.at(act.v_dept, vp), rk.at(act.s_dept, sp))
    doc = np.where(out, rk.at(act.v_doc, vp), rk.at(act.s_doc, sp))
    cols = {
        "visit_no": pc.if_else(pa.array(out), vec.padded(vp + 1, 10, "MZ"), none),
        "admission_no": pc.if_else(pa.array(~out), vec.padded(sp + 1, 10, "ZY"), none),
        "patient_id": vec.padded(pat + 1, 10, "P"),
    }
    return cols, dept_idx, doc


def lab_report(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of lab_report."""
    n = hi - lo
    cols, dept_idx, doc = parent_cols(u, u.lab_kind[lo:hi], u.lab_parent[lo:hi])
    panel = u.lab_panel[lo:hi]
    sampled = u.lab_time[lo:hi]
    received = u.lab_received[lo:hi]
    reported = u.lab_reported[lo:hi]
    cols.update(
        {
            "report_no": vec.padded(np.arange(lo, hi) + 1, 10, "JY"),
            "request_dept_code": u.dept(dept_idx)[0],
            "request_doctor_code": u.doc(doc),
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
    return rk.Rows(cols, reported, pat)


def lab_result(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of lab_result."""
    rep = u.res_report[lo:hi]
    pos = u.res_pos[lo:hi]
    panel = u.lab_panel[rep]
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
    t = u.lab_reported[rep]
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
    kind, parent = u.lab_kind[rep], u.lab_parent[rep]
    pat = np.where(
        kind == 0,
        rk.at(u.act.v_pat, np.where(kind == 0, parent, 0)),
        rk.at(u.act.s_pat, np.where(kind == 0, 0, parent)),
    )
    return rk.Rows(cols, t, pat)


def exam_report(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of exam_report."""
    n = hi - lo
    cols, dept_idx, doc = parent_cols(u, u.exam_kind[lo:hi], u.exam_parent[lo:hi])
    ex = u.exam_item[lo:hi]
    t0 = u.exam_time[lo:hi]
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
            "request_dept_code": u.dept(dept_idx)[0],
            "exam_time": vec.datetimes(t0),
            "reported_at": vec.datetimes(reported),
            "findings": conclusion,
            "conclusion": conclusion,
            "positive_flag": vec.take(["0", "1"], positive.astype(np.int64)),
            "image_count": vec.text(images),
            "reporter_code": u.doc(doc + 7),
            "reviewer_code": u.doc(doc + 13),
        }
    )
    pat = np.asarray(pc.cast(pc.utf8_slice_codeunits(cols["patient_id"], 1), pa.int64())) - 1
    return rk.Rows(cols, reported, pat)


def stay_cols(u: Unit, s: np.ndarray, gen: np.random.Generator) -> dict[str, pa.Array]:
    """Columns every inpatient table takes from its stay."""
    act = u.act
    dept, _ = u.dept(act.s_dept[s])
    code, name = u.icd(act.s_icd[s])
    return {
        "admission_no": vec.padded(s + 1, 10, "ZY"),
        "dept_code": dept,
        "_dx_code": code,
        "_dx_name": name,
    }


def admission(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of admission."""
    act = u.act
    s = np.arange(lo, hi)
    n = len(s)
    t = act.s_admit[s]
    cols = u.patient_cols(
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
    sc = stay_cols(u, s, gen)
    cols.update(
        {
            "admission_no": sc["admission_no"],
            "inpatient_no": vec.padded(s + 1, 8, "Z"),
            "admitted_at": vec.datetimes(t),
            "dept_code": sc["dept_code"],
            "ward": rk.pick(gen, n, vocab.WARDS),
            "bed_no": vec.text(gen.integers(1, 60, size=n)),
            "admission_route": vec.take(["2", "1", "3"], gen.choice(3, size=n, p=[0.7, 0.25, 0.05])),
            "attending_doctor_code": u.doc(act.s_doc[s]),
            "chief_complaint": rk.pick(gen, n, vocab.COMPLAINTS),
            "admission_diagnosis_code": sc["_dx_code"],
            "admission_diagnosis_name": sc["_dx_name"],
            "payment_type": rk.pick(gen, n, *rk.PAYMENT),
        }
    )
    return rk.Rows(cols, t, act.s_pat[s])


def discharge_summary(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of discharge_summary."""
    act = u.act
    s = np.arange(lo, hi)
    n = len(s)
    t = act.s_dis[s]
    sc = stay_cols(u, s, gen)
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
        "treatment_summary": rk.pick(gen, n, vocab.TREATMENT),
        "discharge_advice": rk.pick(gen, n, vocab.DISCHARGE_ADVICE),
        "attending_doctor_code": u.doc(act.s_doc[s]),
    }
    return rk.Rows(cols, t, act.s_pat[s])


def inpatient_order(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of inpatient_order."""
    act = u.act
    s = u.order_stay[lo:hi]
    n = hi - lo
    t = u.order_time[lo:hi]
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
        "doctor_code": u.doc(act.s_doc[s]),
        "dept_code": u.dept(act.s_dept[s])[0],
    }
    return rk.Rows(cols, t, act.s_pat[s])


def medical_record_front_page(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of medical_record_front_page."""
    act = u.act
    s = np.arange(lo, hi)
    n = len(s)
    t = act.s_dis[s]
    cols = u.patient_cols(
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
    sc = stay_cols(u, s, gen)
    fee = act.s_fee[s]
    k = gen.integers(0, 4, size=n)
    others = u.random_icd(int(k.sum()), gen)
    offsets = np.concatenate([[0], np.cumsum(k)]).astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), vec.take(u.icd_codes, others))
    other_codes = pc.binary_join(lists, "|")
    other_codes = pc.if_else(pc.equal(other_codes, ""), pa.scalar(None, pa.string()), other_codes)
    surgical = np.isin(s, u.surgery_stay)
    proc = gen.integers(0, len(vocab.PROCEDURES), size=n) if n else np.zeros(0, np.int64)
    none = pa.scalar(None, pa.string())
    person = act.p_person[act.s_pat[s]]
    age = (u.month.start_day - u.pop.birth[person]) / 365.2425
    cols.update(
        {
            "admission_no": sc["admission_no"],
            "medical_record_no": vec.padded(act.s_pat[s] + 1, 8, "BA"),
            "admission_times": vec.text(1 + np.minimum(gen.geometric(0.6, size=n) - 1, 20)),
            "ethnicity": vec.take(["01", "03", "08"], gen.choice(3, size=n, p=[0.95, 0.03, 0.02])),
            "marital_status": vec.take(["10", "20"], (age >= 25).astype(np.int64)),
            "payment_type": rk.pick(gen, n, *rk.PAYMENT),
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
            "attending_doctor_code": u.doc(act.s_doc[s]),
            "coder_code": vec.padded(gen.integers(1, 10, size=n), 3, "BM"),
        }
    )
    return rk.Rows(cols, t, act.s_pat[s])


def surgery(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of surgery."""
    act = u.act
    s = u.surgery_stay[lo:hi]
    n = len(s)
    a, d = act.s_admit[s], act.s_dis[s]
    start = a + ((d - a) * gen.uniform(0.1, 0.5, size=n)).astype(np.int64)
    start = np.where(s == 0, a + 3 * 3600, start)
    end = np.minimum(start + gen.integers(1800, 5 * 3600, size=n), d - 60)
    end = np.maximum(end, start + 60)
    proc = gen.integers(0, len(vocab.PROCEDURES), size=n)
    code, _ = u.icd(act.s_icd[s])
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
        "surgeon_code": u.doc(act.s_doc[s] + 3),
        "anesthesia_method": rk.pick(gen, n, vocab.ANESTHESIA),
        "blood_loss_ml": vec.text(gen.integers(5, 800, size=n)),
        "dept_code": u.dept(act.s_dept[s])[0],
    }
    return rk.Rows(cols, start, act.s_pat[s])


TABLES = {
    "lab_report": lab_report,
    "lab_result": lab_result,
    "exam_report": exam_report,
    "admission": admission,
    "discharge_summary": discharge_summary,
    "inpatient_order": inpatient_order,
    "medical_record_front_page": medical_record_front_page,
    "surgery": surgery,
}
