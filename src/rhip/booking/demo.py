"""A synthetic month of booking activity, calibrated to the 2025-03 bulletin table at a scale, run
through the real booking service (schedules, release, tranches, bookings, cancellations, check-ins,
no-shows), then the month's bulletin tables computed back from the appointments table.

`run(settings=, synth_dir=, console=)` is the `rhip demo` step (cli.DEMO_STEPS)."""

from __future__ import annotations

import csv
import json
import math
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable

from rhip import clock, months
from rhip.booking import (
    calendar as cal,
    common,
    entry,
    jobs as booking_jobs,
    pgbatch,
    referrals as booking_referrals,
    schedules as rota,
    service as svc,
    stats,
)
from rhip.booking.rules import split_capacity
from rhip.clock import SHANGHAI
from rhip.config import Settings
from rhip.db.engine import Database
from rhip.errors import RhipError
from rhip.registry import data as reg_data, idnumber
from rhip.security.roles import Role
from rhip.security.service import Principal

DATA = Path(__file__).with_name("data")
COLUMNS = ("online_12320", "quick", "in_clinic", "third_party")
# 2025-03 线上预约情况: the online column split by platform, the third-party column by platform
ONLINE_SPLIT = {"jkn_app": 7657, "wechat_12320": 5581, "web_12320": 271}
THIRD_SPLIT = {"wdnj_app": 5493}
BASELINE_BEFORE_2025_03 = 37_314_248  # 总预约挂号量 at the end of 2025-02 (bulletin 2025-03)
COMMUNITY_SHARE = 0.02  # of online bookings made instead by family doctors (12320 社区预约)
CHECK_IN_RATE = 0.96
CANCEL_RATE = 0.04
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国玉兰志强海燕红梅文博子涵梓萱浩然欣怡"
AREAS = ["320102", "320104", "320105", "320106", "320111", "320113", "320114", "320115", "320116", "320117"]
METRO_AREAS = ["340202", "340503", "321102", "321002", "341103", "341702", "320802"]
DEPT_BY_WORD = [
    ("口腔", "12"),
    ("儿童", "07"),
    ("妇幼", "05"),
    ("眼科", "10"),
    ("皮肤", "13"),
    ("肿瘤", "19"),
    ("中医", "50"),
    ("中西医", "52"),
    ("职业病", "23"),
]


@dataclass
class Plan:
    """One synthetic booking to make."""

    key: str
    hospital: str
    department: str
    column: str
    channel: str
    day: date
    at: datetime
    person: str
    name: str
    cancel: bool = False


def calibration(month: str = "2025-03") -> list[dict[str, Any]]:
    """The bulletin's per-hospital booking table (resolved to registry codes)."""
    path = DATA / f"calibration_{month}.csv"
    if not path.exists():
        path = DATA / "calibration_2025-03.csv"
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    rows = []
    for r in csv.DictReader(lines):
        rows.append({"name": r["name"], "code": r["code"], **{c: int(r[c]) for c in COLUMNS}})
    return rows


def _largest_remainder(weights: dict[Any, float], total: int) -> dict[Any, int]:
    """Integers proportional to weights that sum to exactly `total`."""
    s = sum(weights.values())
    if total <= 0 or s <= 0:
        return dict.fromkeys(weights, 0)
    raw = {k: w * total / s for k, w in weights.items()}
    out = {k: math.floor(v) for k, v in raw.items()}
    short = total - sum(out.values())
    for k in sorted(raw, key=lambda k: raw[k] - out[k], reverse=True)[:short]:
        out[k] += 1
    return out


def targets(month: str, scale: float) -> dict[tuple[str, str], int]:
    """Bookings to make per (hospital, column): each column's total is round(total × scale)."""
    rows = calibration(month)
    out: dict[tuple[str, str], int] = {}
    for column in COLUMNS:
        weights = {r["code"]: float(r[column]) for r in rows}
        total = round(sum(weights.values()) * scale)
        for code, n in _largest_remainder(weights, total).items():
            if n:
                out[(code, column)] = n
    return out


def _department(code: str) -> str:
    inst = reg_data.get(code)
    name = inst.name if inst else ""
    for word, dept in DEPT_BY_WORD:
        if word in name:
            return dept
    return "03"


def _person(rng: random.Random, seen: set[str]) -> tuple[str, str]:
    while True:
        area = rng.choice(METRO_AREAS if rng.random() < 0.3 else AREAS)
        born = date(rng.randint(1940, 2020), rng.randint(1, 12), rng.randint(1, 28))
        pid = idnumber.make_id(area, born, rng.randint(0, 999))
        if pid not in seen:
            seen.add(pid)
            return pid, rng.choice(SURNAMES) + rng.choice(GIVEN) + (
                rng.choice(GIVEN) if rng.random() < 0.7 else ""
            )


def plan_month(month: str, scale: float, seed: int = 42) -> list[Plan]:
    """Every synthetic booking of the month, in the order they are made."""
    rng = random.Random(seed)
    start, end = months.time_bounds(month, SHANGHAI)
    days = cal.working_days(start.date(), (end - timedelta(days=1)).date())
    late_days = [d for d in days if d.day >= 15]
    seen: set[str] = set()
    plans: list[Plan] = []
    tgt = targets(month, scale)
    online_total = sum(n for (_h, c), n in tgt.items() if c == "online_12320")
    community = round(online_total * COMMUNITY_SHARE)
    tertiary_online = [
        (h, n)
        for (h, c), n in tgt.items()
        if c == "online_12320" and reg_data.get(h) and reg_data.get(h).tertiary  # type: ignore[union-attr]
    ]
    moved: Counter[str] = Counter()
    for h, n in sorted(tertiary_online, key=lambda x: -x[1]):
        take = min(n - 1, community - sum(moved.values()))
        if take > 0:
            moved[h] = take
    platforms = _largest_remainder(
        {k: float(v) for k, v in ONLINE_SPLIT.items()}, online_total - sum(moved.values())
    )
    online_channels = [c for c, n in platforms.items() for _ in range(n)]
    rng.shuffle(online_channels)
    centres = [i.code for i in reg_data.institutions() if i.kind == "community_health_centre"]
    i = 0
    for (hosp, column), n in sorted(tgt.items()):
        n_community = moved[hosp] if column == "online_12320" else 0
        dept = _department(hosp)
        for k in range(n):
            if column == "online_12320" and k < n_community:
                col, channel = "community", rng.choice(centres)
            elif column == "online_12320":
                col, channel = column, online_channels.pop()
            else:
                col = column
                channel = {"quick": "quick_12320", "in_clinic": "in_clinic", "third_party": "wdnj_app"}[
                    column
                ]
            day = rng.choice(late_days if col == "community" else days)
            first = datetime.combine(day, datetime.min.time(), SHANGHAI) + timedelta(hours=7)
            if col == "community":  # the family-doctor week: after the family release, before the public one
                lo = datetime.combine(day - timedelta(days=14), datetime.min.time(), SHANGHAI) + timedelta(
                    hours=9
                )
                hi = lo + timedelta(days=6)
            elif col == "in_clinic":  # booked in the doctor's room at an earlier visit, before the
                # unused in-clinic places flow to the public (rule clinic_reflow_hours, 24 h)
                lo, hi = first - timedelta(days=14), first - timedelta(hours=26)
            else:
                lo = datetime.combine(day - timedelta(days=7), datetime.min.time(), SHANGHAI) + timedelta(
                    hours=8
                )
                hi = first
            lo = max(lo, start)
            at = lo + timedelta(seconds=rng.randint(0, max(int((hi - lo).total_seconds()), 1)))
            pid, name = _person(rng, seen)
            plans.append(
                Plan(
                    key=f"demo-{month}-{i}",
                    hospital=hosp,
                    department=dept,
                    column=col,
                    channel=channel,
                    day=day,
                    at=at,
                    person=pid,
                    name=name,
                    cancel=col != "in_clinic" and rng.random() < CANCEL_RATE,
                )
            )
            i += 1
    plans.sort(key=lambda p: (p.at, p.key))
    return plans


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
