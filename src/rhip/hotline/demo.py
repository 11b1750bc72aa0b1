"""The synthetic city's hotline month and the `rhip demo` step.

`plan_month(month, scale)` makes the month's calls and 12345 orders, calibrated to the month's own
seed figures when a seed has that month, else to 2025-03, times the scale. Rounding rule: each call
category and each order source is `round_half_up(scale × seed figure)` on its own; 受理咨询电话 is the
sum of the rounded categories (so it may differ by a few from round(scale × seed total)), and 自接工单
equals the rounded 医疗投诉 because every complaint call opens one. The calls are written as a FreeSWITCH
CDR file and the 12345 orders as CSV files, then imported through the same services as real ones;
电话预约 calls book through booking under the agent role where an open slot exists; orders move through
their states; the SLA job runs at month end; the assistant replays questions from the evaluation set.
"""

from __future__ import annotations

import csv
import io
import json
import random
import time as timer
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from rich.console import Console
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip import clock
from rhip.clock import SHANGHAI
from rhip.config import Settings
from rhip.db.engine import Database
from rhip.errors import RhipError
from rhip.hotline import cdr, seeds, service as svc, sla, stats
from rhip.hotline.models import Call, WorkOrder
from rhip.registry import data as reg_data, idnumber
from rhip.security.roles import Role
from rhip.security.service import Principal

CALIBRATION_MONTH = "2025-03"
AGENT = Principal(subject="demo-agent", role=Role.agent)
AREAS = ("320102", "320104", "320105", "320106", "320111", "320113", "320114", "320115", "320116")
# hours of the day calls arrive (12320 answers 24 hours; most calls in office hours)
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 1, 2, 6, 12, 14, 13, 10, 7, 9, 12, 12, 10, 8, 6, 5, 4, 3, 2, 1]
TITLES_12345 = (
    "反映医院挂号难",
    "咨询新冠疫苗接种点",
    "投诉医院服务态度",
    "咨询医保报销政策",
    "反映社区卫生服务中心开放时间",
    "咨询出生医学证明办理",
    "反映医院停车难",
    "咨询健康证办理",
)


def scaled(n: int, scale: float) -> int:
    """round_half_up(scale × n): the demo's rounding rule for every seed figure."""
    return int((Decimal(n) * Decimal(str(scale))).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def target(month: str, scale: float) -> tuple[dict[str, int], dict[str, int]]:
    """The month's calls per category and orders per source the synthetic city makes."""
    seed = seeds.committed().get(month) or seeds.committed()[CALIBRATION_MONTH]
    calls = {c: scaled(n, scale) for c, n in seed.calls.items()}
    orders = {s: scaled(n, scale) for s, n in seed.orders.items() if s != "wo_self"}
    orders["wo_self"] = calls.get("complaint", 0)
    return calls, orders


@dataclass
class Planned:
    """The month's files: CDR text and the city's and province's 12345 order files."""

    cdr_text: str
    orders: dict[str, str]
    calls: dict[str, int]


def _day_weights(month: str) -> list[tuple[date, float]]:
    start, _end, days = stats.month_range(month)
    first = start.date()
    return [
        (first + timedelta(days=i), 1.0 if sla.is_workday(first + timedelta(days=i)) else 0.55)
        for i in range(days)
    ]


def _moment(rng: random.Random, days: list[tuple[date, float]]) -> datetime:
    day = rng.choices([d for d, _w in days], weights=[w for _d, w in days])[0]
    hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
    return datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)), tzinfo=SHANGHAI)


def _person(rng: random.Random) -> str:
    born = date(rng.randint(1945, 2005), rng.randint(1, 12), rng.randint(1, 28))
    return idnumber.make_id(rng.choice(AREAS), born, rng.randrange(1000))


def plan_month(month: str, scale: float, *, seed: int = 12320) -> Planned:
    """The month's CDR file and 12345 order files at a scale (deterministic for a month and seed)."""
    rng = random.Random(f"{seed}-{month}")
    calls, orders = target(month, scale)
    days = _day_weights(month)
    menu = {v: k for k, v in cdr.ivr_menu().items()}
    lines: list[str] = []
    for category, n in calls.items():
        for i in range(n):
            start = _moment(rng, days)
            wait = rng.randint(3, 40)
            talk = 0 if category == "ivr" else rng.randint(60, 900 if category != "crisis" else 2400)
            ivr_secs = rng.randint(20, 120) if category == "ivr" else 0
            end = start + timedelta(seconds=wait + talk + ivr_secs)
            key = menu.get(category, "0")
            row = {
                "caller_id_name": "",
                "caller_id_number": f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
                "destination_number": "12320",
                "context": "public",
                "start_stamp": start.strftime("%Y-%m-%d %H:%M:%S"),
                "answer_stamp": ""
                if category == "ivr"
                else (start + timedelta(seconds=wait)).strftime("%Y-%m-%d %H:%M:%S"),
                "end_stamp": end.strftime("%Y-%m-%d %H:%M:%S"),
                "duration": str(wait + talk + ivr_secs),
                "billsec": str(talk),
                "hangup_cause": "NORMAL_CLEARING",
                "uuid": f"{month}-{category}-{i:06d}-{rng.randrange(16**8):08x}",
                "accountcode": key,
                "read_codec": "PCMA",
                "write_codec": "PCMA",
                "rhip_ivr_path": f"{key}-{rng.randint(1, 3)}" if category not in ("manual",) else "0",
                "rhip_category": category,
                "rhip_agent": "" if category == "ivr" else f"A{rng.randint(1, 40):03d}",
                "rhip_id_number": _person(rng) if category == "phone_booking" else "",
            }
            lines.append(cdr.write_line(row))
    rng.shuffle(lines)
    hospitals = [i.code for i in reg_data.institutions() if i.kind == "hospital" and i.city == "南京市"]
    files: dict[str, str] = {}
    for source, n in orders.items():
        if source == "wo_self":
            continue
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(svc.ORDER_FILE_COLUMNS)
        limit = sla.limit_of(svc.SOURCES[source][2]).working_days or 5
        for i in range(n):
            t = _moment(rng, days)
            due = sla.add_working_days(t, limit)
            w.writerow(
                [
                    f"{'SJ' if source == 'wo_city_12345' else 'SH'}{month.replace('-', '')}{i:05d}",
                    t.strftime("%Y-%m-%d %H:%M:%S"),
                    due.strftime("%Y-%m-%d %H:%M:%S"),
                    rng.choice(TITLES_12345),
                    "市民来电反映，请承办单位核实处理并答复。",
                    rng.choice(hospitals) if hospitals and rng.random() < 0.7 else "",
                ]
            )
        files[source] = buf.getvalue()
    return Planned(cdr_text="".join(lines), orders=files, calls=calls)


def _book_phone_calls(session: Session, month: str) -> tuple[int, int]:
    """Book for the month's 电话预约 calls through the booking service (agent role); (booked, not booked)."""
    from rhip.booking import service as booking

    start, end, _days = stats.month_range(month)
    q = select(Call).where(
        Call.category == "phone_booking",
        Call.started_at >= start,
        Call.started_at < end,
        Call.appointment_id.is_(None),
        Call.outcome == "answered",
    )
    booked = failed = 0
    for call in session.scalars(q.order_by(Call.started_at)).all():
        t = call.started_at
        with clock.frozen(t):
            slots = booking.find_slots(
                session,
                start_from=t + timedelta(hours=12),
                start_to=t + timedelta(days=7),
                free_only=True,
                limit=40,
            )
            open_slots = [s for s in slots if booking.availability(s, at=t).public_open]
            if not open_slots or not call.id_number:
                call.outcome = "not_booked"
                failed += 1
                continue
            slot = open_slots[call.id % len(open_slots)]
            agent = Principal(subject=call.agent or AGENT.subject, role=Role.agent)
            try:
                with session.begin_nested():
                    svc.book_for_caller(
                        session,
                        call_id=call.id,
                        slot_id=slot.id,
                        id_number=call.id_number,
                        name=None,
                        actor=agent,
                    )
                booked += 1
            except RhipError:
                call.outcome = "not_booked"
                failed += 1
    return booked, failed


def _work_orders(session: Session, month: str) -> dict[str, int]:
    """Move the month's orders through their states as the centre and the institutions would."""
    rng = random.Random(f"orders-{month}")
    start, end, _days = stats.month_range(month)
    hospitals = [i.code for i in reg_data.institutions() if i.kind == "hospital" and i.city == "南京市"]
    orders = session.scalars(
        select(WorkOrder)
        .where(WorkOrder.received_at >= start, WorkOrder.received_at < end)
        .order_by(WorkOrder.id)
    ).all()
    done = {"closed": 0, "replied": 0}
    for o in orders:
        r = rng.random()
        t = o.received_at + timedelta(hours=rng.randint(1, 30))
        with clock.frozen(min(t, end - timedelta(seconds=1))):
            if o.source == "crisis":
                svc.act(session, order_id=o.id, action="handle", actor=AGENT)
                svc.act(
                    session,
                    order_id=o.id,
                    action="reply",
                    actor=AGENT,
                    note="24 小时内已回访，来电者情况稳定",
                )
                svc.act(session, order_id=o.id, action="close", actor=AGENT)
                done["closed"] += 1
                continue
            if r < 0.15:
                continue  # still waiting to be dispatched
            if o.state == "new":
                svc.act(
                    session,
                    order_id=o.id,
                    action="assign",
                    actor=AGENT,
                    institution_code=rng.choice(hospitals),
                )
            staff = Principal(
                subject=f"staff-{o.institution_code}", role=Role.doctor, institution_code=o.institution_code
            )
            if r < 0.3:
                continue
            svc.act(session, order_id=o.id, action="accept", actor=staff)
            if r < 0.45:
                continue
            svc.act(
                session, order_id=o.id, action="reply", actor=staff, note="已核实并与来电人沟通，问题已处理。"
            )
            done["replied"] += 1
            if r < 0.6:
                continue
            svc.callback(
                session,
                order_id=o.id,
                satisfaction=rng.choices([5, 4, 3, 2, 1], [50, 30, 10, 6, 4])[0],
                note="",
                actor=AGENT,
            )
            svc.act(session, order_id=o.id, action="close", actor=AGENT)
            done["closed"] += 1
    return done


def _scale(synth_dir: Path) -> float:
    manifest = synth_dir / "manifest.json"
    if manifest.is_file():
        return float(json.loads(manifest.read_text(encoding="utf-8")).get("scale", 0.01))
    return 0.01


def _month(synth_dir: Path) -> str:
    manifest = synth_dir / "manifest.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text(encoding="utf-8")).get("month")
        if m:
            return str(m)
    return synth_dir.name if len(synth_dir.name) == 7 and synth_dir.name[4] == "-" else CALIBRATION_MONTH


def replay_questions(session: Session, *, month: str, limit: int) -> dict[str, int]:
    """Replay evaluation questions through the assistant during the month (conversations are recorded)."""
    from rhip.hotline import assistant, evalset

    rng = random.Random(f"assistant-{month}")
    days = _day_weights(month)
    counts: dict[str, int] = {}
    items = evalset.load()
    for item in rng.sample(items, min(limit, len(items))):
        with clock.frozen(_moment(rng, days)):
            reply = assistant.chat(
                session, message=item.question, conversation=None, actor=None, settings=None
            )
        key = "crisis" if reply.crisis else ("handoff" if reply.handed_off else "answered")
        counts[key] = counts.get(key, 0) + 1
    return counts


def run(*, settings: Settings, synth_dir: Path, console: Console) -> list[tuple[str, str]]:
    """Demo step: the month's calls and 12345 orders imported, worked, the SLA job, the assistant replayed."""
    month, scale = _month(synth_dir), _scale(synth_dir)
    started = timer.perf_counter()
    plan = plan_month(month, scale)
    out = synth_dir / "hotline"
    out.mkdir(parents=True, exist_ok=True)
    (out / "Master.csv").write_text(plan.cdr_text, encoding="utf-8")
    for source, text in plan.orders.items():
        (out / f"{source}.csv").write_text(text, encoding="utf-8")
    db = Database.from_settings(settings)
    try:
        with db.session() as s, s.begin():
            report = svc.import_cdr(s, data=plan.cdr_text.encode("utf-8"), actor=AGENT)
            for source, text in plan.orders.items():
                svc.import_orders(s, source=source, data=text.encode("utf-8"), actor=AGENT)
        with db.session() as s, s.begin():
            booked, not_booked = _book_phone_calls(s, month)
        with db.session() as s, s.begin():
            worked = _work_orders(s, month)
            _start, end, _days = stats.month_range(month)
            changed = svc.run_sla(s, at=end)
        with db.session() as s, s.begin():
            replayed = replay_questions(s, month=month, limit=300)
        with db.session() as s, s.begin():
            fig = stats.month_figures(s, month=month)
            paragraph = stats.paragraph(fig)
    finally:
        db.dispose()
    seconds = timer.perf_counter() - started
    console.print(f"12320 热线：{paragraph}")
    return [
        (
            "12320 热线",
            f"{month}：导入话单 {report.imported} 条（错误 {len(report.errors)} 行），"
            f"受理咨询电话 {fig.total} 个，"
            f"电话预约成功 {booked} 个、未约成 {not_booked} 个；工单 市 {fig.orders['wo_city_12345']} / "
            f"省 {fig.orders['wo_province_12345']} / 自接 {fig.orders['wo_self']} 件，"
            f"答复 {worked['replied']}、"
            f"办结 {worked['closed']} 件；SLA 超时 {changed['breach']} 件；"
            f"宁宁会话 {sum(replayed.values())} 次（转人工 {replayed.get('handoff', 0)}、"
            f"危机转介 {replayed.get('crisis', 0)}）；用时 {seconds:.1f} 秒",
        )
    ]
