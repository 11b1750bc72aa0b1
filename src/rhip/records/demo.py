"""The records step of `rhip demo`: absorb the month's intake batches into the serving store, then serve
record views and reminders as doctors of other institutions would — refused without
consent, allowed after the resident's grant or one-time code, a few emergencies — and print the counts."""

from __future__ import annotations

import random
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from sqlalchemy import distinct, select
from sqlalchemy.orm import aliased

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.identity import service as identity
from rhip.intake import service as intake
from rhip.lake.store import Lake
from rhip.records import audit, consent, reminders, service, store
from rhip.records.models import RecordEntry
from rhip.registry import data as registry_data
from rhip.security.roles import Role
from rhip.security.service import Principal

PEOPLE = 150  # residents whose records doctors open
ALLERGIC = 10  # of them, patients with a recorded allergy (过敏史)
ORDERS: list[tuple[str, str | None]] = [("胸部CT平扫", "CT"), ("血常规", None), ("肝功能", None)]


def build(db: Database, lake: Lake, console: Console) -> int:
    """Absorb every committed batch not yet in the store (with a progress bar)."""
    with db.session() as s, s.begin():
        batches = intake.committed_batch_ids(s)
    written = 0
    chunk = 50
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("健康档案入库", total=len(batches))
        for i in range(0, len(batches), chunk):
            with db.session() as s, s.begin():
                written += store.absorb(s, lake, batches[i : i + chunk])
            bar.advance(task, min(chunk, len(batches) - i))
    return written


def _people(db: Database, n: int, rng: random.Random) -> list[tuple[str, str, set[str]]]:
    """(person id, ID number, institutions holding records) for residents with records."""
    with db.session() as s, s.begin():
        # a few patients with a recorded allergy first (the demo shows the allergy reminder), then any
        other = aliased(RecordEntry)
        allergic = s.scalars(
            select(distinct(other.id_number))
            .join(
                RecordEntry,
                (RecordEntry.institution_code == other.institution_code)
                & (RecordEntry.patient_key == other.patient_key),
            )
            .where(RecordEntry.kind == "allergy", other.id_number.is_not(None))
            .limit(ALLERGIC)
        ).all()
        ids = list(allergic) + list(
            s.scalars(
                select(distinct(RecordEntry.id_number)).where(RecordEntry.id_number.is_not(None)).limit(n * 4)
            ).all()
        )
        ids = list(dict.fromkeys(ids))
        out = []
        for idn in ids:
            found = identity.find_persons(s, id_number=idn)
            if found:
                p = identity.get_person(s, person_id=found[0])
                out.append((p.id, str(idn), {r.institution_code for r in p.records}))
            if len(out) >= n:
                break
    head, rest = out[: len(allergic)], out[len(allergic) :]
    rng.shuffle(rest)
    return head + rest


def run(*, settings: Settings, synth_dir: Path, console: Console) -> list[tuple[str, str]]:
    """Demo step: build the records, serve views and reminders, verify the audit chain; summary rows.

    Views go through the same service calls as the API's routes (a domain may not import the web layer).
    """
    rng = random.Random(20250301)
    db = Database.from_settings(settings)
    lake = Lake.from_settings(settings)
    started = time.perf_counter()
    counts = {"refused": 0, "views": 0, "reminders": 0, "codes": 0, "emergencies": 0, "allergy": 0}
    try:
        written = build(db, lake, console)
        built = time.perf_counter() - started
        hospitals = [i.code for i in registry_data.institutions() if i.kind == "hospital"]
        for k, (person, idn, held) in enumerate(_people(db, PEOPLE, rng)):
            outsider = next((h for h in rng.sample(hospitals, len(hospitals)) if h not in held), None)
            if outsider is not None:
                _serve(db, k, person, idn, outsider, settings.secret_key or "demo", counts, rng)
        with db.session() as s, s.begin():
            chain = audit.verify(s)
    finally:
        db.dispose()
    seconds = time.perf_counter() - started
    ok = "完好" if chain.broken_at is None else f"在第 {chain.broken_at} 条断开"
    console.print(
        f"健康档案：入库 {written:,} 条（{built:.1f} 秒）；医生调阅 {counts['views']} 次、未授权被拒 "
        f"{counts['refused']} 次、授权码 {counts['codes']} 次、紧急调阅 {counts['emergencies']} 次、"
        f"智能提示 {counts['reminders']} 次（含过敏提醒 {counts['allergy']} 条）；"
        f"审计链 {chain.checked} 条{ok}"
    )
    summary = (
        f"{written:,} 条入库；调阅 {counts['views']} 次（拒绝 {counts['refused']}），"
        f"智能提示 {counts['reminders']} 次；审计链{ok}（{seconds:.1f} 秒）"
    )
    return [("健康档案调阅", summary)]


def _serve(
    db: Database,
    k: int,
    person: str,
    idn: str,
    outsider: str,
    secret: str,
    counts: dict[str, int],
    rng: random.Random,
) -> None:
    """One resident's record opened by a doctor of another hospital: refused, then allowed."""
    doc = Principal(subject=f"demo-dr-{outsider}", role=Role.doctor, institution_code=outsider)
    me = Principal(subject=idn, role=Role.resident)
    with db.session() as s, s.begin():
        if not service.check_access(s, principal=doc, person_id=person, action="view").allowed:
            counts["refused"] += 1
    with db.session() as s, s.begin():
        if k % 10 == 9:  # an emergency with a stated reason
            consent.emergency(s, principal=doc, person_id=person, reason="急诊抢救，患者意识不清")
            counts["emergencies"] += 1
        elif k % 3 == 0:  # the resident reads a one-time code at the visit
            code, _row = consent.new_code(s, principal=me, secret=secret)
            consent.redeem(s, principal=doc, person_id=person, code=code, secret=secret)
            counts["codes"] += 1
        else:
            consent.grant(s, principal=me, institution_code=outsider, doctor=None, days=30)
    with db.session() as s, s.begin():
        access = service.check_access(s, principal=doc, person_id=person, action="view")
        if access.allowed:
            service.timeline(s, access=access)
            counts["views"] += 1
            a2 = service.check_access(s, principal=doc, person_id=person, action="reminders")
            found = reminders.compute(s, access=a2, orders=[reminders.Order(*rng.choice(ORDERS))])
            counts["reminders"] += 1
            counts["allergy"] += sum(r.category == "allergy" for r in found)
