"""Intake's rollups against a recount of the lake and a plain model, over random histories of corrections.

Each case sends several batches of one institution through intake: new records in three months, later
versions that change the fee, the person or the month, revocations, re-sends, stale versions, and keys sent
twice in one batch. After every batch the figures read from the rollups must equal the recount from the
lake's records (`quality verify`), and at the end both must equal a plain statement of the rules.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from rhip.quality import figures, verify
from tests.quality.conftest import FMT, Uploader, patient, row, unique

MONTHS = ("2023-04", "2023-05", "2023-06")
KEYS = {"outpatient_visit": "visit_no", "hypertension_followup": "followup_no", "health_record": "record_no"}


def _when(rng: random.Random, month: str) -> datetime:
    y, m = (int(x) for x in month.split("-"))
    return datetime(y, m, rng.randint(1, 28), rng.randint(8, 20), rng.randint(0, 59))


class Model:
    """The records as the rules say they stand: per key, the latest version by 数据更新时间."""

    def __init__(self) -> None:
        self.latest: dict[str, dict[str, str]] = {}

    def offer(self, rec: dict[str, str]) -> None:
        field = KEYS.get(rec["__table"])
        if field is None:
            return
        key = f"{rec['__table']}:{rec[field]}"
        known = self.latest.get(key)
        if known is None or rec["updated_at"] > known["updated_at"]:
            self.latest[key] = rec

    def current(self, table: str) -> list[dict[str, str]]:
        return [r for r in self.latest.values() if r["__table"] == table and r["change_flag"] != "3"]


def _visit(org: str, rng: random.Random, month: str, pid: str) -> dict[str, str]:
    t = _when(rng, month)
    realtime = rng.random() < 0.5
    collected = t + (timedelta(minutes=5) if realtime else timedelta(hours=6))
    return row(
        "outpatient_visit",
        org,
        visit_no=unique("RV"),
        patient_id=pid,
        visit_time=t.strftime(FMT),
        fee_total=f"{rng.randint(1, 50000) / 100:.2f}",
        collected_at=collected.strftime(FMT),
        updated_at=t.strftime(FMT),
    )


def _followup(org: str, rng: random.Random, month: str, person: str) -> dict[str, str]:
    t = _when(rng, month)
    return row(
        "hypertension_followup",
        org,
        followup_no=unique("RF"),
        record_no=person,
        followup_date=t.strftime("%Y-%m-%d"),
        collected_at=(t + timedelta(days=1)).strftime(FMT),
        updated_at=t.strftime(FMT),
    )


def _later(rng: random.Random, rec: dict[str, str], flag: str, **changes: str) -> dict[str, str]:
    """A later version: newer 数据更新时间; a visit's collected within a day of its (new) visit time, as
    intake's rule `late` requires of real-time forms, sometimes within the real-time hour."""
    t = datetime.strptime(rec["updated_at"], FMT) + timedelta(minutes=rng.randint(1, 600))
    out = dict(rec, change_flag=flag, updated_at=t.strftime(FMT), collected_at=t.strftime(FMT), **changes)
    if "visit_time" in out:
        lag = timedelta(minutes=5) if rng.random() < 0.5 else timedelta(hours=6)
        out["collected_at"] = (datetime.strptime(out["visit_time"], FMT) + lag).strftime(FMT)
    return out


def _plus_hour(when: str) -> str:
    return (datetime.strptime(when, FMT) + timedelta(hours=1)).strftime(FMT)


def _tag(table: str, recs: list[dict[str, str]]) -> list[dict[str, str]]:
    return [dict(r, __table=table) for r in recs]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollups_follow_random_corrections(seed: int, db, session, lake) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    org = ("H055", "H056", "H053")[seed - 1]
    up = Uploader(db, lake)
    model = Model()
    people = [unique("RP") for _ in range(6)]
    records = [
        row(
            "health_record",
            org,
            record_no=p,
            created_at=f"{rng.choice(MONTHS)}-0{rng.randint(1, 9)}",
            collected_at="2023-06-30 12:00:00",
            updated_at="2023-06-30 12:00:00",
        )
        for p in people
    ]
    sent: dict[str, list[dict[str, str]]] = {"outpatient_visit": [], "hypertension_followup": []}
    pid = unique("RPAT")
    batches: list[dict[str, list[dict[str, str]]]] = [
        {"health_record": records, "patient_info": [patient(org, pid)]}
    ]
    for _ in range(5):
        visits = [_visit(org, rng, m, pid) for m in MONTHS for _ in range(rng.randint(1, 4))]
        follow = [
            _followup(org, rng, m, rng.choice(people)) for m in MONTHS for _ in range(rng.randint(1, 3))
        ]
        for old in rng.sample(sent["outpatient_visit"], min(4, len(sent["outpatient_visit"]))):
            kind = rng.choice(["fee", "month", "revoke", "resend", "stale", "twice"])
            if kind == "fee":
                visits.append(_later(rng, old, "2", fee_total=f"{rng.randint(1, 9999)}.00"))
            elif kind == "month":  # the visit time was wrong: the record moves to another month
                t = _when(rng, rng.choice(MONTHS)).strftime(FMT)
                visits.append(_later(rng, old, "2", visit_time=t))
            elif kind == "revoke":
                visits.append(_later(rng, old, "3"))
            elif kind == "resend":
                visits.append(dict(old))
            elif kind == "stale":
                visits.append(dict(old, fee_total="1.00", updated_at="2023-01-01 00:00:00"))
            else:  # two later versions in one batch, out of order
                a = _later(rng, old, "2", fee_total="2.00")
                b = _later(rng, a, "2", fee_total="3.00")
                visits += [b, a]
        for old in rng.sample(sent["hypertension_followup"], min(3, len(sent["hypertension_followup"]))):
            kind = rng.choice(["person", "revoke", "month"])
            if kind == "person":  # filed under the wrong person
                follow.append(_later(rng, old, "2", record_no=rng.choice(people)))
            elif kind == "revoke":
                follow.append(_later(rng, old, "3"))
            else:
                d = _when(rng, rng.choice(MONTHS)).strftime("%Y-%m-%d")
                follow.append(_later(rng, old, "2", followup_date=d))
        sent["outpatient_visit"] += visits
        sent["hypertension_followup"] += follow
        batches.append({"outpatient_visit": visits, "hypertension_followup": follow})
    # last, corrections sent alone that move a record to a month the batch touches nothing else in
    first = next(v for v in sent["outpatient_visit"] if v["visit_time"].startswith(MONTHS[0]))
    moved = _later(rng, first, "2", visit_time=_when(rng, MONTHS[2]).strftime(FMT))
    moved["updated_at"] = "2023-12-31 00:00:00"
    batches.append({"outpatient_visit": [moved]})
    person = next(f for f in sent["hypertension_followup"] if f["followup_date"].startswith(MONTHS[0]))
    gone = _later(rng, person, "3")
    gone["updated_at"] = "2023-12-31 00:00:00"
    batches.append({"hypertension_followup": [gone]})
    for batch in batches:
        receipt = up.send(org, batch)
        probs = receipt.outcome.problems
        assert receipt.outcome.total().rejected == 0, (
            None if probs is None else probs.select("rule", "message")
        )
        for table, recs in batch.items():
            for r in _tag(table, recs):
                model.offer(r)
        with session.begin():
            for month in MONTHS:
                assert verify.differences(session, lake=lake, month=month, units=[org]) == [], (seed, month)
    with session.begin():
        for month in MONTHS:
            u = figures.month_figures(session, lake=lake, month=month).get(org)
            visits = [r for r in model.current("outpatient_visit") if r["visit_time"].startswith(month)]
            assert u.visits == len(visits)
            assert round(u.visit_revenue * 100) == sum(round(float(r["fee_total"]) * 100) for r in visits)
            # real-time: collected within an hour after the visit (not before it)
            rt = [r for r in visits if r["visit_time"] <= r["collected_at"] <= _plus_hour(r["visit_time"])]
            assert u.visits_realtime == len(rt)
            managed = {
                r["record_no"]
                for r in model.current("hypertension_followup")
                if r["followup_date"][:7] <= month
            }
            assert u.records_hypertension == len(managed)
            assert u.records_basic == sum(r["created_at"][:7] <= month for r in records)
