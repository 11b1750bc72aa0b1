"""The synthetic city's terminals, terminal transactions and card issuance, calibrated to the bulletins.

Calibration: the 2020-05 terminal table for the month 2020-05, the 2018-03 table for every other month;
card issuance always from the 2018-03 开卡量 table. At scale s:

- 投放台数 is the seed's figure itself (machines are not volume: scaled to 1 % a hospital with 45 machines
  would keep none and its transactions no terminal); the seed's zeros stay zeros (installed, unused);
- every count (发卡, 挂号, 缴费, 取单, 开卡) is round_half_up(seed × s), row by row;
- every amount in fen is round_half_up(seed fen × s), except that an amount whose count rounds to 0 is 0
  (no transaction can carry it; this includes the 2020-05 seed's 南京市口腔医院, 0 registrations
  with 171,500.00 yuan);
- 合计 rows are the sums of the rows (the seeds' printed 合计 differ from their rows' sums in three
  places: 2018-03 投放台数 1,077 vs 1,076; 2020-05 投放台数 1,502 vs 1,512 and 缴费金额 …463.20 vs …463.23);
- window-issued cards = round(开卡 × s) − round(terminal 发卡 × s), so the 开卡量 table is exact too;
- 总开卡量 before the month = round((11,221,280 − 194,334) × s).

About 1 % extra failed transactions (not counted by the bulletin) and one faulty terminal in fifty make the
dashboard's fault figures non-trivial.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from rhip.clock import SHANGHAI
from rhip.registry import data as reg_data

DATA = Path(__file__).with_name("data")
CARDS_TO_DATE_2018_03 = 11_221_280
CARDS_2018_03 = 194_334
BASELINE_BEFORE = CARDS_TO_DATE_2018_03 - CARDS_2018_03
FAILED_SHARE = 0.01


def scaled(n: int, scale: float) -> int:
    """round_half_up(n × scale), exact (Decimal)."""
    return int((Decimal(n) * Decimal(str(scale))).to_integral_value(ROUND_HALF_UP))


def _fen(text: str) -> int:
    return int(Decimal(text.strip()) * 100)


@dataclass
class SeedRow:
    """One row of a seed's terminal table: an institution (or a district's community terminals)."""

    block: str  # hospital, district
    name: str
    terminals: int
    cards: int
    reg: int
    reg_fen: int
    pay: int
    pay_fen: int
    prints: int
    codes: list[str] = field(default_factory=list)  # institutions the row's terminals stand at

    def at_scale(self, s: float) -> SeedRow:
        """The row's figures at scale s, by the module's rounding rule."""
        reg, pay = scaled(self.reg, s), scaled(self.pay, s)
        return SeedRow(
            self.block,
            self.name,
            self.terminals,
            scaled(self.cards, s),
            reg,
            scaled(self.reg_fen, s) if reg else 0,
            pay,
            scaled(self.pay_fen, s) if pay else 0,
            scaled(self.prints, s),
            list(self.codes),
        )


def _inst(name: str) -> str:
    inst = reg_data.resolve_name(name)
    if inst is None:
        raise ValueError(f"seed institution not in the registry: {name}")
    return inst.code


def _community(district: str) -> list[str]:
    return [
        i.code
        for i in reg_data.institutions()
        if i.district == district and i.kind == "community_health_centre" and i.left_on is None
    ]


def seed_terminal_rows(month: str) -> list[SeedRow]:
    """The terminal table the month is calibrated to (2020-05 for 2020-05, else 2018-03)."""
    rows: list[SeedRow] = []
    if month == "2020-05":
        with (DATA / "terminals_2020_05.csv").open(encoding="utf-8") as f:
            for r in csv.DictReader(f):
                hosp = r["块"] == "医疗单位"
                rows.append(
                    SeedRow(
                        "hospital" if hosp else "district",
                        r["单位"],
                        int(r["投放台数"]),
                        0,
                        int(r["挂号"]),
                        _fen(r["挂号金额"]),
                        int(r["缴费"]),
                        _fen(r["缴费金额"]),
                        0,
                        [_inst(r["单位"])] if hosp else _community(r["单位"]),
                    )
                )
        return rows
    with (DATA / "terminals_2018_03.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            rows.append(
                SeedRow(
                    "hospital",
                    r["单位"],
                    int(r["投放台数"]),
                    int(r["发卡"]),
                    int(r["挂号"]),
                    _fen(r["挂号金额"]),
                    int(r["缴费"]),
                    _fen(r["缴费金额"]),
                    int(r["取单"]),
                    [_inst(r["单位"])],
                )
            )
    return rows


def seed_card_rows() -> list[tuple[str, str, int]]:
    """The 2018-03 开卡量 table: (seed name, institution code, cards)."""
    with (DATA / "cards_2018_03.csv").open(encoding="utf-8") as f:
        return [(r["单位"], _inst(r["单位"]), int(r["合计"])) for r in csv.DictReader(f)]


# ------------------------------------------------------------------ the month's plan


@dataclass
class PlannedTerminal:
    """A terminal to install."""

    code: str
    institution_code: str
    installed_on: date
    faulty: bool


@dataclass
class PlannedTxn:
    """A transaction one terminal will post."""

    terminal: str
    txn_no: str
    kind: str
    at: datetime
    amount_fen: int | None = None
    pay_method: str | None = None
    outcome: str = "ok"
    pages: int | None = None
    card_no: str | None = None
    duration_ms: int = 30_000


@dataclass
class Plan:
    """Everything the demo posts for a month."""

    month: str
    scale: float
    terminals: list[PlannedTerminal]
    txns: list[PlannedTxn]
    window_cards: dict[str, int]  # institution -> cards issued at windows
    baseline_cards: int


def _split(total: int, n: int, rng: random.Random) -> list[int]:
    """`total` split into n non-negative integers with random weights, summing exactly to total."""
    if n <= 0:
        return []
    weights = [rng.uniform(0.5, 1.5) for _ in range(n)]
    w = sum(weights)
    parts = [int(total * x / w) for x in weights]
    for i in range(total - sum(parts)):
        parts[i % n] += 1
    return parts


def _times(month: str, n: int, rng: random.Random) -> list[datetime]:
    y, m = (int(x) for x in month.split("-"))
    first = date(y, m, 1)
    days = ((first.replace(day=28) + timedelta(days=4)).replace(day=1) - first).days
    out = []
    for _ in range(n):
        d = first + timedelta(days=rng.randrange(days))
        secs = rng.randrange(7 * 3600 + 1800, 17 * 3600 + 1800)
        out.append(datetime(d.year, d.month, d.day, tzinfo=SHANGHAI) + timedelta(seconds=secs))
    return sorted(out)


def plan_month(month: str, scale: float, *, seed: int = 42) -> Plan:
    """The month's terminals, transactions and window card issuance at a scale (deterministic by seed)."""
    rng = random.Random(f"{seed}:{month}:{scale}")
    y, m = (int(x) for x in month.split("-"))
    terminals: list[PlannedTerminal] = []
    txns: list[PlannedTxn] = []
    per_inst: dict[str, int] = defaultdict(int)
    terminal_cards: dict[str, int] = defaultdict(int)
    stamp = month.replace("-", "")
    for row in (r.at_scale(scale) for r in seed_terminal_rows(month)):
        if not row.codes:
            continue
        mine: list[PlannedTerminal] = []
        for k in range(row.terminals):
            inst = row.codes[k % len(row.codes)]
            per_inst[inst] += 1
            mine.append(
                PlannedTerminal(
                    code=f"T{inst}-{per_inst[inst]:04d}",
                    institution_code=inst,
                    installed_on=date(y, m, 1) - timedelta(days=rng.randrange(30, 900)),
                    faulty=rng.random() < 0.02,
                )
            )
        terminals.extend(mine)
        if not mine:
            continue
        for kind, count, fen in (
            ("register", row.reg, row.reg_fen),
            ("payment", row.pay, row.pay_fen),
            ("print", row.prints, None),
            ("issue_card", row.cards, None),
        ):
            amounts = _split(fen, count, rng) if fen is not None else [None] * count
            for i, (at, amount) in enumerate(zip(_times(month, count, rng), amounts, strict=True)):
                term = mine[min(int(rng.paretovariate(1.2)) - 1, len(mine) - 1)] if len(mine) > 1 else mine[0]
                txn = PlannedTxn(term.code, f"{stamp}{kind[:2].upper()}{i:07d}", kind, at, amount)
                txn.duration_ms = rng.randrange(15_000, 150_000)
                if kind == "payment":
                    txn.pay_method = "insurance" if rng.random() < 0.6 else "self"
                elif kind == "print":
                    txn.pages = 1
                elif kind == "issue_card":
                    txn.card_no = f"{stamp}{term.institution_code}{i:06d}"
                    terminal_cards[term.institution_code] += 1
                txns.append(txn)
                if rng.random() < FAILED_SHARE and kind != "issue_card":
                    failed = PlannedTxn(term.code, f"{stamp}{kind[:2].upper()}F{i:06d}", kind, at, amount)
                    failed.outcome, failed.pay_method, failed.pages = "failed", txn.pay_method, txn.pages
                    txns.append(failed)
    window: dict[str, int] = {}
    for _name, code, cards in seed_card_rows():
        window[code] = max(0, scaled(cards, scale) - terminal_cards.get(code, 0))
    return Plan(month, scale, terminals, txns, window, scaled(BASELINE_BEFORE, scale))
