"""A synthetic month of booking activity, calibrated to the 2025-03 bulletin table at a scale (the plan:
`demo_plan.py`), run through the real booking service (schedules, release, tranches, bookings,
cancellations, check-ins, no-shows), then the month's bulletin tables computed back from the appointments
table; and the coming days' sessions, so the portal has places to book.

`run(settings=, synth_dir=, console=)` is the `rhip demo` step (cli.DEMO_STEPS)."""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable

from rhip import clock, months
from rhip.booking import (
    common,
    entry,
    jobs as booking_jobs,
    pgbatch,
    referrals as booking_referrals,
    schedules as rota,
    service as svc,
    stats,
)
from rhip.booking.demo_plan import COLUMNS, Plan, calibration, plan_month
from rhip.booking.rules import split_capacity
from rhip.clock import SHANGHAI
from rhip.config import Settings
from rhip.db.engine import Database
from rhip.errors import RhipError
from rhip.registry import data as reg_data
from rhip.security.roles import Role
from rhip.security.service import Principal

BASELINE_BEFORE_2025_03 = 37_314_248  # 总预约挂号量 at the end of 2025-02 (bulletin 2025-03)
CHECK_IN_RATE = 0.96


def _actor(p: Plan) -> tuple[Principal, str | None, str | None]:
    """Who books a plan, through which channel, from which tranche."""
    if p.column == "in_clinic":
        return (
            Principal(subject=f"doctor@{p.hospital}", role=Role.doctor, institution_code=p.hospital),
            None,
            None,
        )
    if p.column == "third_party":
        return (
            Principal(subject=f"apikey:{p.channel}", role=Role.uploader, institution_code=f"ch:{p.channel}"),
            None,
            None,
        )
    if p.column == "community":
        return (
            Principal(subject=f"fd@{p.channel}", role=Role.family_doctor, institution_code=p.channel),
            None,
            "family",
        )
    return Principal(subject=p.person, role=Role.resident, name=p.name), p.channel, "public"


def publish(db: Database, plans: list[Plan], month: str) -> int:
    """Publish the schedules the month's bookings need (one morning session per hospital-department-day)."""
    need: dict[tuple[str, str, date], Counter[str]] = defaultdict(Counter)
    for p in plans:
        need[(p.hospital, p.department, p.day)][p.column] += 1
    clinic_share: dict[str, float] = defaultdict(float)
    for (h, _d, _day), c in need.items():
        clinic_share[h] = max(clinic_share[h], c["in_clinic"] / max(sum(c.values()), 1))
    staff = Principal(subject="demo", role=Role.manager)
    start, _end = months.time_bounds(month, SHANGHAI)
    made = 0
    with clock.frozen(start - timedelta(days=21)):
        with db.session() as s, s.begin():
            for h, share in clinic_share.items():
                if share > 0:
                    common.set_rules(
                        s,
                        hospital_code=h,
                        values={"clinic_share_pct": min(60, math.ceil(share * 100) + 10)},
                        actor=staff,
                    )
        for (h, d, day), c in sorted(need.items()):
            rules_clinic = min(60, math.ceil(clinic_share[h] * 100) + 10) if clinic_share[h] > 0 else 0
            inst = reg_data.get(h)
            family = 30 if inst and inst.tertiary else 0
            capacity = 1
            while True:
                caps = split_capacity(capacity, 8, family_pct=family, clinic_pct=rules_clinic)
                pub, fam, cli = (sum(x[i] for x in caps) for i in range(3))
                if (
                    pub >= 1.3 * (c["online_12320"] + c["quick"] + c["third_party"])
                    and fam >= 1.3 * c["community"]
                    and cli >= 1.3 * c["in_clinic"]
                ):
                    break
                capacity += 1
            spec = rota.ScheduleSpec(
                hospital_code=h,
                department_code=d,
                doctor_name="专家门诊",
                doctor_title="主任医师",
                service_date=day,
                session="am",
                slot_minutes=30,
                capacity_per_slot=capacity,
            )
            with db.session() as s, s.begin():
                try:
                    rota.create_schedule(s, spec=spec, actor=staff)
                    made += 1
                except RhipError as exc:
                    if exc.code != "schedule-exists":
                        raise
    return made


def simulate(db: Database, plans: list[Plan], month: str) -> Counter[str]:
    """Make every planned booking at its time, through the service; jobs run as days pass."""
    # the bookings take the APIs' one entry (booking/entry.py), driven by a private event loop
    runner = pgbatch.Blocking()
    try:
        return _simulate(db, plans, month, runner)
    finally:
        runner.close()


def _simulate(db: Database, plans: list[Plan], month: str, runner: pgbatch.Blocking) -> Counter[str]:
    outcome: Counter[str] = Counter()
    rng = random.Random(7)
    staff = Principal(subject="demo", role=Role.manager)
    last_day: date | None = None
    slots_of: dict[tuple[str, str, date], list[int]] = {}
    pending: list[tuple[datetime, int]] = []  # booked places whose patients may come and check in

    def day_passes(t: datetime) -> None:
        """Patients of slots that have started check in (most of them); then the jobs run for `t`."""
        nonlocal pending
        due = sorted(x for x in pending if x[0] + timedelta(minutes=5) <= t)
        pending = [x for x in pending if x[0] + timedelta(minutes=5) > t]
        for starts, appt_id in due:
            if rng.random() >= CHECK_IN_RATE:
                continue
            try:
                with clock.frozen(starts + timedelta(minutes=5)), db.session() as s, s.begin():
                    svc.check_in(s, appointment_id=appt_id, actor=staff)
                outcome["checked_in"] += 1
            except RhipError:
                pass  # cancelled or stopped meanwhile
        with clock.frozen(t), db.session() as s, s.begin():
            jobs = booking_jobs.run_jobs(s)
        outcome["no_shows"] += jobs["no_shows"]
        outcome["suspensions"] += jobs["suspensions"]

    for p in plans:
        day = p.at.astimezone(SHANGHAI).date()
        if day != last_day:
            day_passes(p.at)
            last_day = day
        with clock.frozen(p.at):
            k = (p.hospital, p.department, p.day)
            if k not in slots_of:
                with db.session() as s, s.begin():
                    sched = rota.get_all_schedules(
                        s,
                        hospital_code=p.hospital,
                        department_code=p.department,
                        date_from=p.day,
                        date_to=p.day,
                    )
                    slots_of[k] = [x.id for x in rota.get_slots(s, schedule_id=sched[0].id)] if sched else []
            actor, channel, tranche = _actor(p)
            candidates = slots_of[k][:]
            rng.shuffle(candidates)
            appt_id: int | None = None
            created = False
            for slot_id in candidates:
                try:
                    if p.column == "community":
                        with db.session() as s, s.begin():
                            svc.sign(s, person=p.person, actor=actor)
                            ref = booking_referrals.refer_up(
                                s,
                                person=p.person,
                                person_name=p.name,
                                slot_id=slot_id,
                                reason="家庭医生转诊",
                                actor=actor,
                                idempotency_key=p.key,
                            )
                            appt_id, created = ref.appointment_id, True
                            starts = rota.get_slot(s, slot_id=slot_id).starts_at
                    else:
                        appt_id, created, starts = _book(db, runner, p, slot_id, actor, channel, tranche)
                    outcome["booked" if created else "replayed"] += 1
                    break
                except RhipError as exc:
                    if exc.code == "slot-full":
                        continue
                    replay = exc.code == "idempotency-key-reused" or (
                        p.column == "community" and exc.code == "limit-department"
                    )
                    outcome["replayed" if replay else f"refused:{exc.code}"] += 1
                    break
            else:
                outcome["refused:slot-full"] += 1
            if appt_id is not None and created:
                if p.cancel:
                    try:
                        with db.session() as s, s.begin():
                            svc.cancel(s, appointment_id=appt_id, actor=actor, reason="行程变更")
                        outcome["cancelled"] += 1
                    except RhipError:
                        outcome["cancel-refused"] += 1
                else:
                    pending.append((starts, appt_id))
    _start, end = months.time_bounds(month, SHANGHAI)
    day_passes(end + timedelta(hours=1))
    return outcome


def _book(
    db: Database,
    runner: pgbatch.Blocking,
    p: Plan,
    slot_id: int,
    actor: Principal,
    channel: str | None,
    tranche: str | None,
) -> tuple[int, bool, datetime]:
    """One planned booking: the appointment's id, whether this call made it, and its start."""
    what: dict[str, Any] = dict(
        slot_id=slot_id,
        person=p.person,
        person_name=p.name,
        actor=actor,
        channel=channel,
        tranche=tranche,
        idempotency_key=p.key,
    )
    answer, created = runner.run(entry.book(db, **what))
    assert answer.id is not None and answer.starts_at is not None
    return answer.id, created, answer.starts_at


COMING_DAYS = 14
COMING_HOSPITALS = 6  # the busiest hospitals of the calibration table (the tertiary ones give family places)
COMING_DEPARTMENTS = ("03", "04")  # 内科, 外科


def publish_coming(db: Database, *, today: date, days: int = COMING_DAYS) -> int:
    """Sessions for the coming days through the schedule service, so the portal has places to book.

    The replayed month lies in the past; these are the same schedules a hospital publishes today (both
    sessions of every working day from tomorrow on), released by the hospital's own rules: the public sees
    the first week, signed family doctors the second one as well.
    """
    staff = Principal(subject="demo", role=Role.manager)
    busiest = sorted(calibration(), key=lambda r: -sum(r[c] for c in COLUMNS))
    made = 0
    for row in busiest[:COMING_HOSPITALS]:
        for dept in COMING_DEPARTMENTS:
            template = rota.ScheduleSpec(
                hospital_code=row["code"],
                department_code=dept,
                doctor_name="普通门诊",
                doctor_title="主治医师",
                service_date=today,
                session="am",
                slot_minutes=30,
                capacity_per_slot=4,
            )
            with db.session() as s, s.begin():
                made += len(
                    rota.create_schedules(
                        s,
                        template=template,
                        start=today + timedelta(days=1),
                        end=today + timedelta(days=days),
                        actor=staff,
                    )
                )
    return made


def _scale(synth_dir: Path) -> float:
    """The synthetic city's scale, from its manifest when there is one."""
    for name in ("manifest.json", "ground_truth.json", "summary.json"):
        path = synth_dir / name
        if path.exists():
            try:
                value = json.loads(path.read_text(encoding="utf-8")).get("scale")
                if isinstance(value, int | float) and value > 0:
                    return float(value)
            except (ValueError, AttributeError):
                continue
    return 0.01


def print_tables(console: Console, tables: dict[str, Any]) -> None:
    """Print the month's booking tables."""
    for t in tables["tables"]:
        rt = RichTable(title=t["title"])
        for c in t["columns"]:
            rt.add_column(str(c))
        for row in t["rows"][:40]:
            rt.add_row(*(str(x) for x in row))
        console.print(rt)
        if t.get("note"):
            console.print(t["note"])
    console.print(tables["cumulative_note"])


def run(*, settings: Settings, synth_dir: Path, console: Console) -> list[tuple[str, str]]:
    """The demo step: a calibrated month through the booking service; returns summary rows (Chinese)."""
    month = synth_dir.name if re.fullmatch(r"\d{4}-\d{2}", synth_dir.name) else "2025-03"
    scale = _scale(synth_dir)
    db = Database.from_settings(settings)
    try:
        plans = plan_month(month, scale)
        made = publish(db, plans, month)
        outcome = simulate(db, plans, month)
        baseline = round(BASELINE_BEFORE_2025_03 * scale)
        with db.session() as s, s.begin():
            tables = stats.all_tables(s, month=month, baseline=baseline)
        coming = publish_coming(db, today=clock.local_now().date())
    finally:
        db.dispose()
    print_tables(console, tables)
    by_hospital = tables["tables"][0]["rows"][-1]
    target_total = sum(r[c] for r in calibration(month) for c in COLUMNS)
    refused = sum(n for k, n in outcome.items() if k.startswith("refused"))
    return [
        (
            "预约排班",
            f"发布 {made} 个排班（{month}，规模 {scale}）；未来 {COMING_DAYS} 天 {coming} 个排班可预约",
        ),
        (
            "预约挂号",
            f"预约 {outcome['booked']} 次、重放 {outcome['replayed']} 次、被规则拒绝 {refused} 次、"
            f"取消 {outcome['cancelled']} 次、签到 {outcome['checked_in']} 次、爽约 {outcome['no_shows']} 次",
        ),
        (
            "预约统计",
            f"合计 {by_hospital[-1]}（简报 {target_total} × {scale} = {round(target_total * scale)}）；"
            f"在线 {by_hospital[2]}、快速 {by_hospital[3]}、诊间 {by_hospital[4]}、第三方 {by_hospital[5]}；"
            f"总预约挂号量 {tables['cumulative_total']}",
        ),
    ]
