"""The demo step: the month's terminals, terminal transactions and card issuance (synth.py, calibrated to
the 2018-03 / 2020-05 bulletins × scale) posted through the self-service services, then the bulletin's
tables computed back from the database.

`run(settings=, synth_dir=, console=)` is the `rhip demo` step (cli.DEMO_STEPS)."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path

from rich.console import Console

from rhip.clock import SHANGHAI
from rhip.config import Settings
from rhip.db.engine import Database
from rhip.security.roles import Role
from rhip.security.service import Principal
from rhip.selfservice import demo_book, service as svc, stats, synth

SYSTEM = Principal(subject="demo", role=Role.admin)


def _scale(synth_dir: Path) -> float:
    for name in ("manifest.json", "ground_truth.json", "summary.json"):
        path = synth_dir / name
        if path.exists():
            try:
                value = json.loads(path.read_text(encoding="utf-8")).get("scale")
            except (ValueError, AttributeError):
                continue
            if isinstance(value, int | float) and value > 0:
                return float(value)
    return 0.01


def post_plan(db: Database, plan: synth.Plan, *, book_limit: int | None = None) -> dict[str, int]:
    """Install the plan's terminals and post its transactions and window cards (idempotent: a second run
    posts nothing new). Successful registrations (the first `book_limit`, all when None) book a slot
    through the booking service on the 自助机 channel (demo_book); the other transactions go in one
    executemany."""
    done = {"terminals": 0, "transactions": 0, "booked": 0, "reported": 0, "cards": 0}
    with db.session() as s, s.begin():
        done["terminals"] = svc.create_terminals(
            s,
            specs=[
                {
                    "institution_code": p.institution_code,
                    "code": p.code,
                    "location": "门诊大厅",
                    "model": "自助智能医疗服务终端",
                    "installed_on": p.installed_on,
                    "status": "fault" if p.faulty else "active",
                }
                for p in plan.terminals
            ],
        )
        known = {
            t.code: svc.TerminalRef(t.id, t.code, t.institution_code, t.status) for t in svc.get_terminals(s)
        }
    booked, posted = demo_book.book_registrations(db, plan, known, limit=book_limit)
    done["booked"], done["reported"] = booked.booked, booked.reported
    with db.session() as s, s.begin():
        items = [
            (
                known[x.terminal],
                svc.TxnIn(
                    txn_no=x.txn_no,
                    kind=x.kind,
                    occurred_at=x.at,
                    amount_fen=x.amount_fen,
                    pay_method=x.pay_method,
                    outcome=x.outcome,
                    error_code="E-DEVICE" if x.outcome == "failed" else None,
                    duration_ms=x.duration_ms,
                    pages=x.pages,
                    card_no=x.card_no,
                ),
            )
            for x in plan.txns
            if (x.terminal, x.txn_no) not in posted
        ]
        done["transactions"] = svc.post_many(s, items=items) + booked.booked
        start = stats.first_day(plan.month)
        stamp = plan.month.replace("-", "")
        for code, n in plan.window_cards.items():
            cards = [(f"{stamp}W{code}{i:06d}", _at(start, i, n)) for i in range(n)]
            done["cards"] += svc.issue_cards(s, institution_code=code, cards=cards)
        svc.set_card_baseline(
            s,
            before_month=plan.month,
            cards=plan.baseline_cards,
            source=f"合成：2018-03 简报总开卡量 11221280 − 当月 194334，× 规模 {plan.scale}",
        )
    return done


def _at(start: date, i: int, n: int) -> datetime:
    """Window cards spread evenly over the month's first 28 days, 08:00–16:00 Beijing time."""
    day = start + timedelta(days=(i * 28) // max(n, 1))
    return datetime(day.year, day.month, day.day, 8, tzinfo=SHANGHAI) + timedelta(minutes=(i * 37) % 480)


def run(*, settings: Settings, synth_dir: Path, console: Console) -> list[tuple[str, str]]:
    """The demo step; returns summary rows (Chinese)."""
    month = synth_dir.name if re.fullmatch(r"\d{4}-\d{2}", synth_dir.name) else "2018-03"
    scale = _scale(synth_dir)
    plan = synth.plan_month(month, scale)
    db = Database.from_settings(settings)
    try:
        done = post_plan(db, plan, book_limit=demo_book.DEMO_BOOKED)
        with db.session() as s, s.begin():
            terminal = stats.table_2018(s, month=month) if stats.layout_of(month) == "2018" else None
            terminal = terminal or stats.table_2020(s, month=month)
            cards = stats.card_table(s, month=month)
    finally:
        db.dispose()
    total = terminal["rows"][-1]
    basis = "2020-05" if month == "2020-05" else "2018-03"
    return [
        (
            "自助终端",
            f"新装 {done['terminals']} 台、提交交易 {done['transactions']} 笔（按 {basis} 简报 × {scale}），"
            f"其中当日挂号经预约服务（自助机渠道）占号 {done['booked']} 笔、其余按医院系统上报记录"
            + (f"（无号可占 {done['reported']} 笔）" if done["reported"] else "")
            + "；"
            f"投放合计 {total[1] if total[1] != '' else total[2]} 台",
        ),
        ("开卡量", f"窗口开卡 {done['cards']} 张；当月合计 {cards['rows'][-1][2]}；{cards['notes'][0]}"),
    ]
