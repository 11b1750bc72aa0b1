"""The synthetic city's monthly report of record-browser (健康档案浏览器) and smart-reminder (智能提示) usage.

Each uploading unit reports how many workstations run each tool (部署数量, a stock: not scaled) and how often
they were called in the month (调用次数, proportional to its visits, so scaled with them). Like the 2018
seed, about a third of the hospitals have not deployed them (未部署); district platforms always have. The
platform imports the file with `rhip quality import-usage` and prints exactly these figures.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rhip.synth import vec

if TYPE_CHECKING:
    from rhip.synth.city import Plan

FILE = "record_usage.csv"
HEADER = ("month", "org_code", "browser_deployed", "browser_calls", "reminder_deployed", "reminder_calls")


def write_record_usage(out: Path, month: str, plans: Sequence[Plan], *, seed: int) -> Path:
    """Write record_usage.csv: one row per unit with its deployments and calls of the month."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    for p in plans:
        gen = vec.rng(seed, "record-usage", p.code)
        district = p.target.kind == "district"
        deployed = district or gen.random() > 0.35
        browser = int(gen.integers(80, 820) if district else gen.integers(2, 600)) if deployed else 0
        reminder = int(browser * gen.uniform(0.6, 1.0)) if deployed else 0
        # a doctor opens the browser for a few per cent of visits; reminders fire on some prescriptions
        browser_calls = int(p.stats_visits * gen.uniform(0.0, 0.08)) if browser else 0
        reminder_calls = int(p.stats_visits * gen.uniform(0.0, 0.25)) if reminder else 0
        w.writerow([month, p.code, browser, browser_calls, reminder, reminder_calls])
    path = out / FILE
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path
