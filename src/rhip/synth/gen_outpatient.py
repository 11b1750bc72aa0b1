"""Outpatient rows of a unit: patients, registrations, visits, diagnoses, prescriptions, fees."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rhip.synth import lexicon, rowkit as rk, vec, vocab
from rhip.synth.city import DAY

if TYPE_CHECKING:
    from rhip.synth.tables import Unit


def patient_info(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of patient_info."""
    act, pop = u.act, u.pop
    pat = np.arange(lo, hi)
    n = len(pat)
    person = act.p_person[pat]
    event = act.p_first[pat]
    cols = u.patient_cols(
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
    age = (u.month.start_day - pop.birth[person]) / 365.2425
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
    since = np.maximum(pop.birth[person].astype(np.int64) * DAY, event - gen.integers(0, 3000, size=n) * DAY)
    cols["registered_at"] = vec.datetimes(
        np.minimum(since + gen.integers(8 * 3600, 17 * 3600, size=n), event)
    )
    return rk.Rows(cols, event, pat)


def visit_cols(u: Unit, v: np.ndarray, gen: np.random.Generator) -> dict[str, pa.Array]:
    """Columns every outpatient table takes from its visit."""
    act = u.act
    dept, dname = u.dept(act.v_dept[v])
    return {
        "visit_type": vec.text(act.v_type[v]),
        "dept_code": dept,
        "dept_name": dname,
        "doctor_code": u.doc(act.v_doc[v]),
        "doctor_name": act.doctor_names.take(pa.array(act.v_doc[v] % len(act.doctor_names))),
    }


def outpatient_registration(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of outpatient_registration."""
    act = u.act
    v = np.arange(lo, hi)
    n = len(v)
    vt = act.v_time[v]
    day_start = (vt // DAY) * DAY
    reg = np.maximum(vt - gen.integers(60, 1800, size=n), day_start)
    cols = u.patient_cols(
        act.v_pat[v], vt, {"patient_id": "patient_id", "patient_name": "name", "id_number": "id_number"}
    )
    cols.update(visit_cols(u, v, gen))
    cols["registration_no"] = vec.padded(v + 1, 10, "GH")
    cols["registered_at"] = vec.datetimes(reg)
    cols["visit_date"] = vec.dates(vt // DAY)
    booked = gen.random(n) < 0.45
    cols["appointment_no"] = pc.if_else(
        pa.array(booked), vec.padded(v + 1, 10, "YY"), pa.scalar(None, pa.string())
    )
    cols["channel"] = pc.if_else(
        pa.array(booked), rk.pick(gen, n, vocab.CHANNELS), pa.scalar(None, pa.string())
    )
    fee = np.where(
        u.plan.record.tertiary,
        gen.choice([1000, 1500, 2500, 5000], size=n),
        gen.choice([500, 1000], size=n),
    )
    cols["registration_fee"] = vec.money(fee)
    return rk.Rows(cols, reg, act.v_pat[v])


def outpatient_visit(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of outpatient_visit."""
    act = u.act
    v = np.arange(lo, hi)
    n = len(v)
    vt = act.v_time[v]
    cols = u.patient_cols(
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
    cols.update(visit_cols(u, v, gen))
    cols["visit_no"] = vec.padded(v + 1, 10, "MZ")
    cols["registration_no"] = vec.padded(v + 1, 10, "GH")
    cols["visit_time"] = vec.datetimes(vt)
    cols["first_visit"] = vec.take(["1", "0"], (gen.random(n) < 0.6).astype(np.int64))
    cols["chief_complaint"] = rk.pick(gen, n, vocab.COMPLAINTS)
    code, name = u.icd(act.v_icd[v])
    cols["main_diagnosis_code"], cols["main_diagnosis_name"] = code, name
    cols["payment_type"] = rk.pick(gen, n, *rk.PAYMENT)
    fee = act.v_fee[v]
    cols["fee_total"] = vec.money(fee)
    cols["fee_drug"] = vec.money(fee * 45 // 100)
    cols["fee_exam"] = vec.money(fee * 15 // 100)
    cols["fee_lab"] = vec.money(fee * 15 // 100)
    return rk.Rows(cols, vt, act.v_pat[v])


def diagnosis(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of diagnosis."""
    act = u.act
    kind, parent, seq = u.dx_kind[lo:hi], u.dx_parent[lo:hi], u.dx_seq[lo:hi]
    n = hi - lo
    out = kind == 0
    vp = np.where(out, parent, 0)
    sp = np.where(out, 0, parent)
    t = np.where(
        out,
        rk.at(act.v_time, vp) + gen.integers(120, 1200, size=n),
        np.where(
            kind == 1,
            rk.at(act.s_admit, sp) + gen.integers(600, 3600, size=n),
            rk.at(act.s_dis, sp) - gen.integers(1800, 7200, size=n),
        ),
    )
    t = np.where(out, t, np.maximum(t, rk.at(act.s_admit, sp) + 60))
    pat = np.where(out, rk.at(act.v_pat, vp), rk.at(act.s_pat, sp))
    main = seq == 1
    icd_main = np.where(out, rk.at(act.v_icd, vp), rk.at(act.s_icd, sp))
    icd = np.where(main, icd_main, u.random_icd(n, gen))
    code, name = u.icd(icd)
    none = pa.scalar(None, pa.string())
    dept_idx = np.where(out, rk.at(act.v_dept, vp), rk.at(act.s_dept, sp))
    dept, _ = u.dept(dept_idx)
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
        "doctor_code": u.doc(np.where(out, rk.at(act.v_doc, vp), rk.at(act.s_doc, sp))),
    }
    return rk.Rows(cols, t, pat)


def prescription(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of prescription."""
    act = u.act
    v = u.pres_visit[lo:hi]
    n = hi - lo
    cat = u.pres_cat[lo:hi]
    t = u.pres_time[lo:hi]
    dept, _ = u.dept(act.v_dept[v])
    herbal = np.where(cat == 3, gen.choice([7, 14], size=n), 0)
    cols = {
        "prescription_no": vec.padded(np.arange(lo, hi) + 1, 10, "CF"),
        "visit_no": vec.padded(v + 1, 10, "MZ"),
        "patient_id": vec.padded(act.v_pat[v] + 1, 10, "P"),
        "prescription_category": vec.text(cat),
        "dept_code": dept,
        "doctor_code": u.doc(act.v_doc[v]),
        "issued_at": vec.datetimes(t),
        "diagnosis_code": vec.take(u.icd_codes, act.v_icd[v]),
        "herbal_doses": pc.if_else(pa.array(cat == 3), vec.text(herbal), pa.scalar(None, pa.string())),
        "total_amount": vec.money(u.pres_amount[lo:hi]),
    }
    return rk.Rows(cols, t, act.v_pat[v])


def prescription_item(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of prescription_item."""
    p = u.item_pres[lo:hi]
    n = hi - lo
    cat = u.pres_cat[p]
    groups = {
        1: [i for i, d in enumerate(vocab.DRUGS) if d[0].startswith("X")],
        2: [i for i, d in enumerate(vocab.DRUGS) if d[0].startswith("Z")],
        3: [i for i, d in enumerate(vocab.DRUGS) if d[0].startswith("T")],
    }
    drug = np.zeros(n, np.int64)
    for c, members in groups.items():
        m = cat == c
        drug[m] = np.array(members)[gen.integers(0, len(members), size=int(m.sum()))]
    t = u.pres_time[p]
    qty = np.where(cat == 3, gen.integers(50, 300, size=n), gen.integers(1, 4, size=n))
    price = np.array([d[9] for d in vocab.DRUGS])[drug]

    def col(j: int) -> pa.Array:
        """Column j of the drug list for these rows."""
        return vec.take([str(d[j]) for d in vocab.DRUGS], drug)

    cols = {
        "prescription_no": vec.padded(p + 1, 10, "CF"),
        "item_seq": vec.text(u.item_seq[lo:hi] + 1),
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
    return rk.Rows(cols, t, u.act.v_pat[u.pres_visit[p]])


def fee_settlement(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of fee_settlement."""
    act = u.act
    n_v = len(act.v_time)
    i = np.arange(lo, hi)
    out = i < n_v
    v = np.where(out, i, 0)
    s = np.where(out, 0, i - n_v)
    t = np.where(
        out,
        rk.at(act.v_time, v) + gen.integers(600, 5400, size=len(i)),
        rk.at(act.s_dis, s) + gen.integers(600, 7200, size=len(i)),
    )
    total = np.where(out, rk.at(act.v_fee, v), rk.at(act.s_fee, s))
    fund = total * gen.integers(30, 70, size=len(i)) // 100
    account = (total - fund) * gen.integers(0, 60, size=len(i)) // 100
    pat = np.where(out, rk.at(act.v_pat, v), rk.at(act.s_pat, s))
    none = pa.scalar(None, pa.string())
    cols = {
        "settlement_no": vec.padded(i + 1, 10, "JS"),
        "settlement_type": vec.take(["2", "1"], out.astype(np.int64)),
        "visit_no": pc.if_else(pa.array(out), vec.padded(v + 1, 10, "MZ"), none),
        "admission_no": pc.if_else(pa.array(~out), vec.padded(s + 1, 10, "ZY"), none),
        "patient_id": vec.padded(pat + 1, 10, "P"),
        "settled_at": vec.datetimes(t),
        "payment_type": rk.pick(gen, len(i), *rk.PAYMENT),
        "total_amount": vec.money(total),
        "fund_amount": vec.money(fund),
        "account_amount": vec.money(account),
        "self_amount": vec.money(total - fund - account),
        "operator_code": vec.padded(gen.integers(1, 60, size=len(i)), 3, "SF"),
    }
    return rk.Rows(cols, t, pat)


def allergy(u: Unit, lo: int, hi: int, gen: np.random.Generator) -> rk.Rows:
    """Rows lo..hi of allergy (过敏史 recorded at a few visits)."""
    act = u.act
    v = u.allergy_visit[lo:hi]
    n = len(v)
    t = act.v_time[v] + gen.integers(60, 900, size=n)
    w = np.asarray(vocab.ALLERGY_WEIGHTS)
    a = gen.choice(len(vocab.ALLERGIES), size=n, p=w / w.sum())
    code = vec.take([x[1] for x in vocab.ALLERGIES], a)
    cols = {
        "allergy_no": vec.padded(np.arange(lo, hi) + 1, 10, "GM"),
        "patient_id": vec.padded(act.v_pat[v] + 1, 10, "P"),
        "visit_no": vec.padded(v + 1, 10, "MZ"),
        "allergen_type": vec.take([x[0] for x in vocab.ALLERGIES], a),
        "allergen_code": pc.if_else(pc.equal(code, ""), pa.scalar(None, pa.string()), code),
        "allergen_name": vec.take([x[2] for x in vocab.ALLERGIES], a),
        "reaction": vec.take([x[3] for x in vocab.ALLERGIES], a),
        "severity": vec.take([x[4] for x in vocab.ALLERGIES], a),
        "recorded_at": vec.datetimes(t),
        "recorder_code": u.doc(act.v_doc[v]),
    }
    return rk.Rows(cols, t, act.v_pat[v])


TABLES = {
    "allergy": allergy,
    "patient_info": patient_info,
    "outpatient_registration": outpatient_registration,
    "outpatient_visit": outpatient_visit,
    "diagnosis": diagnosis,
    "prescription": prescription,
    "prescription_item": prescription_item,
    "fee_settlement": fee_settlement,
}
