"""Records fixtures: a person's records uploaded through intake by two institutions, linked by the EMPI and
absorbed into the serving store; tokens for the resident, doctors of both institutions and an outsider."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from rhip.clock import local_now
from rhip.db.engine import Database
from rhip.identity import service as identity
from rhip.intake import service as intake
from rhip.intake.reading import frame_of
from rhip.lake.store import Lake
from rhip.records import service as records
from rhip.registry import catalogue, data as registry_data
from rhip.registry.idnumber import make_id
from tests.factories import sample_value

_seq = itertools.count(1)
FMT = "%Y-%m-%d %H:%M:%S"


def key(prefix: str) -> str:
    """A business key no other test uses."""
    return f"{prefix}{next(_seq):05d}{random.randrange(10**6):06d}"


def rec(table: str, org: str, when: str | None = None, **values: str) -> dict[str, str]:
    """A valid record of a catalogue table (required fields filled), collected minutes after `when`."""
    ds = catalogue.get(table)
    out = {f.name: sample_value(f) for f in ds.fields if f.required}
    base = datetime.strptime(when, FMT) if when else local_now().replace(tzinfo=None) - timedelta(hours=1)
    stamp = (base + timedelta(minutes=5)).strftime(FMT)
    out.update({"org_code": org, "change_flag": "1", "collected_at": stamp, "updated_at": stamp})
    out.update(values)
    return out


def ago(days: float) -> str:
    """A local time string some days ago."""
    return (local_now() - timedelta(days=days)).strftime(FMT)


def send(db: Database, lake: Lake, org: str, rows: dict[str, list[dict[str, str]]]) -> str:
    """One intake batch through the real service; returns its batch id."""
    frames = {}
    for table, recs in rows.items():
        ds = catalogue.get(table)
        df = pl.DataFrame(
            [{f: r.get(f) for f in ds.field_names} for r in recs],
            schema=dict.fromkeys(ds.field_names, pl.String),
        )
        frames[table] = frame_of(ds, df.to_arrow())
    receipt = intake.ingest(db, lake, institution_code=org, submitted_by="records-test", frames=frames)
    problems = receipt.outcome.problems
    assert receipt.outcome.total().rejected == 0, (
        None if problems is None else [d.get("rule", d) for d in problems.to_dicts()[:3]]
    )
    return receipt.batch_id


@dataclass
class City:
    """Two institutions' records of one person (and of another person), in the store."""

    person: str
    other: str
    id_number: str
    org_a: str
    org_b: str
    org_c: str
    pid_a: str
    pid_b: str
    lab_ct_b: str
    batches: list[str]


@pytest.fixture()
def lake(tmp_path: Path) -> Lake:
    """A private lake."""
    return Lake(tmp_path / "lake")


@pytest.fixture()
def city(db: Database, lake: Lake) -> City:
    """Person P at institutions A and B (a CT 5 days ago at B, a blood test with a high value 2 days ago at
    A, a hypertension follow-up overdue), person Q at C only."""
    insts = registry_data.institutions()
    hospitals = [i.code for i in insts if i.kind == "hospital"]
    org_a, org_b = hospitals[0], hospitals[1]
    org_c = next(i.code for i in insts if i.kind == "community_health_centre")
    # each test its own people: a fresh birth date and sequence (the EMPI links equal ID numbers)
    born = date(1940, 1, 1) + timedelta(days=random.randrange(60 * 365))
    idn = make_id("320102", born, random.randrange(0, 499) * 2 + 1)
    idq = make_id("320104", born + timedelta(days=1), random.randrange(1, 499) * 2)
    pid_a, pid_b, pid_q = key("PA"), key("PB"), key("PQ")

    def patient(org: str, pid: str, idnum: str, name: str) -> dict[str, str]:
        return rec(
            "patient_info",
            org,
            patient_id=pid,
            name=name,
            id_number=idnum,
            sex="1",
            birth_date=idnum[6:10] + "-" + idnum[10:12] + "-" + idnum[12:14],
        )

    visit_a = key("VA")
    lab_a = key("LA")
    rows_a = {
        "patient_info": [patient(org_a, pid_a, idn, "王建国")],
        "outpatient_visit": [
            rec(
                "outpatient_visit",
                org_a,
                visit_no=visit_a,
                patient_id=pid_a,
                when=ago(2),
                visit_time=ago(2),
                dept_name="心内科",
                main_diagnosis_name="高血压",
            )
        ],
        "lab_report": [
            rec(
                "lab_report",
                org_a,
                report_no=lab_a,
                patient_id=pid_a,
                visit_no=visit_a,
                panel_name="血常规",
                when=ago(2),
                reported_at=ago(2),
            )
        ],
        "lab_result": [
            rec(
                "lab_result",
                org_a,
                report_no=lab_a,
                item_code="HGB",
                item_name="血红蛋白",
                result_value="172",
                unit="g/L",
                reference_range="130-175",
                abnormal_flag="N",
                when=ago(2),
                reported_at=ago(2),
            ),
            rec(
                "lab_result",
                org_a,
                report_no=lab_a,
                item_code="WBC",
                item_name="白细胞",
                result_value="31.0",
                unit="10^9/L",
                reference_range="3.5-9.5",
                abnormal_flag="HH",
                when=ago(2),
                reported_at=ago(2),
            ),
        ],
    }
    visit_b = key("VB")
    ct_b = key("EB")
    rows_b = {
        "patient_info": [patient(org_b, pid_b, idn, "王建国")],
        "outpatient_visit": [
            rec(
                "outpatient_visit",
                org_b,
                visit_no=visit_b,
                patient_id=pid_b,
                when=ago(5),
                visit_time=ago(5),
                dept_name="呼吸科",
            )
        ],
        "exam_report": [
            rec(
                "exam_report",
                org_b,
                report_no=ct_b,
                patient_id=pid_b,
                visit_no=visit_b,
                modality="CT",
                exam_item_name="胸部CT平扫",
                when=ago(5),
                reported_at=ago(5),
                conclusion="两肺未见明显异常",
            )
        ],
    }
    hr = key("HR")
    rows_c = {
        "patient_info": [patient(org_c, pid_q, idq, "李静")],
        "health_record": [
            rec(
                "health_record",
                org_c,
                record_no=hr,
                id_number=idn,
                name="王建国",
                created_at=(local_now() - timedelta(days=400)).strftime("%Y-%m-%d"),
            )
        ],
        "hypertension_followup": [
            rec(
                "hypertension_followup",
                org_c,
                followup_no=key("HF"),
                record_no=hr,
                id_number=idn,
                followup_date=(local_now() - timedelta(days=120)).strftime("%Y-%m-%d"),
                next_followup_date=(local_now() - timedelta(days=30)).strftime("%Y-%m-%d"),
                systolic="150",
                diastolic="95",
                followup_classification="2",
            )
        ],
    }
    batches = [send(db, lake, org_a, rows_a), send(db, lake, org_b, rows_b), send(db, lake, org_c, rows_c)]
    with db.session() as s, s.begin():
        links = [
            identity.link_record(
                s,
                institution_code=o,
                local_id=p,
                id_number=i,
                name=nm,
                birth_date=date(int(i[6:10]), int(i[10:12]), int(i[12:14])),
                sex="1",
                phone=None,
                district=None,
                source="test",
            )
            for o, p, i, nm in (
                (org_a, pid_a, idn, "王建国"),
                (org_b, pid_b, idn, "王建国"),
                (org_c, pid_q, idq, "李静"),
            )
        ]
        assert links[0].person_id == links[1].person_id != links[2].person_id
        # intake absorbed each batch into the serving store at its commit: a rebuild finds nothing to do
        assert records.absorb_batches(s, lake, batches) == 0
    return City(links[0].person_id, links[2].person_id, idn, org_a, org_b, org_c, pid_a, pid_b, ct_b, batches)


@pytest.fixture()
def as_(auth: Callable[..., dict[str, str]]) -> Callable[..., dict[str, str]]:
    """Headers: as_('doctor', 'H001', 'dr-li')."""

    def make(role: str, institution: str | None = None, subject: str = "tester") -> dict[str, str]:
        return auth(role, institution, subject)

    return make
