"""The synthetic city's MCH upload: one district MCH institute sends the records of the month before the demo
month as the MCH catalogue tables through intake (validated, de-duplicated, stored in the lake, applied to
the registry in intake's commit by `uploads.absorb_stored`). Dated the month before, so the demo month's
calibrated district table and the last complete report year stay as calibrated; keys start with SYN."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import polars as pl

from rhip import clock
from rhip.db.engine import Database
from rhip.intake import service as intake
from rhip.lake.store import Lake
from rhip.mch.synth_plan import PREFIX, People
from rhip.registry import catalogue

INSTITUTE = "F320102"  # 南京市玄武区妇幼保健所


def frame(table: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A catalogue table's records as intake reads a file: text in catalogue order, with file and row."""
    names = catalogue.get(table).field_names
    data: dict[str, Any] = {"_file": [0] * len(rows), "_row": list(range(1, len(rows) + 1))}
    for n in names:
        data[n] = [None if r.get(n) is None else str(r[n]) for r in rows]
    schema = {"_file": pl.Int32, "_row": pl.Int64, **dict.fromkeys(names, pl.String)}
    return pl.DataFrame(data, schema=schema)


def month_records(month: str, *, seed: int = 42) -> dict[str, list[dict[str, Any]]]:
    """The institute's records of the month before `month`: women registered with their first visits, one
    delivery of a woman registered earlier with her newborn's record and newborn visit, and one visit dated
    before its woman's 建册 (refused by the registry: a problem line)."""
    rng = random.Random(f"mch-upload-{month}-{seed}")
    y, m = (int(x) for x in month.split("-"))
    first = date(y, m, 1) - timedelta(days=1)
    first = first.replace(day=1)
    stamp = f"{clock.now():%Y%m%d%H%M%S}"
    people = People(rng)
    sent = f"{first + timedelta(days=27):%Y-%m-%d} 18:00:00"
    common = {"org_code": INSTITUTE, "collected_at": sent, "updated_at": sent, "change_flag": "1"}
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in catalogue.names() if t.startswith("mch_")}
    for i in range(6):
        on = first + timedelta(days=rng.randrange(25))
        hb = f"{PREFIX}-U{stamp}-{i}"
        number, _born = people.woman(on)
        out["mch_pregnancy_registration"].append(
            {
                **common,
                "handbook_no": hb,
                "id_number": number,
                "name": people.name(),
                "registered_on": on,
                "gestational_week": rng.randint(6, 12),
                "risk_colour": rng.choice("1112"),
                "case_owner": "王医生",
            }
        )
        out["mch_antenatal_visit"].append(
            {
                **common,
                "visit_no": f"{hb}-V1",
                "handbook_no": hb,
                "visit_date": on,
                "visit_kind": "1",
                "systolic": rng.randint(100, 130),
                "diastolic": rng.randint(60, 85),
            }
        )
    late = out["mch_pregnancy_registration"][0]
    out["mch_antenatal_visit"].append(
        {
            **common,
            "visit_no": f"{late['handbook_no']}-V0",
            "handbook_no": late["handbook_no"],
            "visit_date": late["registered_on"] - timedelta(days=3),
        }
    )
    hb = f"{PREFIX}-U{stamp}-D"
    delivered = first + timedelta(days=10)
    mother, _born = people.woman(delivered)
    out["mch_pregnancy_registration"].append(
        {
            **common,
            "handbook_no": hb,
            "id_number": mother,
            "name": people.name(),
            "registered_on": delivered - timedelta(weeks=30),
            "gestational_week": 9,
        }
    )
    out["mch_delivery"].append(
        {
            **common,
            "handbook_no": hb,
            "delivered_on": delivered,
            "delivery_place": "1",
            "delivery_method": "1",
            "delivery_org_code": "H025",
            "live_births": 1,
        }
    )
    cr = f"{PREFIX}-U{stamp}-C"
    out["mch_child_record"].append(
        {
            **common,
            "child_record_no": cr,
            "name": people.name(),
            "sex": rng.choice("12"),
            "birth_date": delivered,
            "mother_id_number": mother,
            "handbook_no": hb,
            "birth_weight_g": rng.randint(2800, 4000),
            "registered_on": delivered + timedelta(days=2),
        }
    )
    out["mch_child_exam"].append(
        {
            **common,
            "exam_no": f"{cr}-E1",
            "child_record_no": cr,
            "visit_date": delivered + timedelta(days=6),
            "exam_kind": "1",
            "weight_kg": "3.4",
        }
    )
    return {t: rows for t, rows in out.items() if rows}


def upload_month(db: Database, lake: Lake, *, month: str) -> dict[str, Any]:
    """Send the institute's records of the month before `month` through intake: the receipt id, the records
    stored, and the problem lines by rule (the registry's refusals are `mch:<code>`)."""
    frames = {t: frame(t, rows) for t, rows in month_records(month).items()}
    receipt = intake.ingest(db, lake, institution_code=INSTITUTE, submitted_by="synth", frames=frames)
    with db.session() as s, s.begin():
        problems = intake.rule_counts(s, batch_id=receipt.batch_id)
    total = receipt.outcome.total()
    return {"batch_id": receipt.batch_id, "stored": total.accepted + total.updated, "problems": problems}
