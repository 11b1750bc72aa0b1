"""Reading the hotline paragraph of a bulletin (the seeds) into figures, and the figures committed from them.

Usage: ``python -m rhip.hotline.seeds [SEEDS_DIR]`` (default ``../shared/seeds``) writes
``data/seed_figures.yaml``; the synthetic city and the tests read that file.

The paragraph reads “…共受理咨询电话 N 个，其中 分类 n 个、…，受理市 12345 工单 n 件，省 12345
工单 n 件，自接工单 n 件。” Line breaks fall anywhere, even inside words, so white space is removed
first. The categories should sum to the total: when they do not, and one figure's digits end with a
number that makes them sum exactly, the reader takes that number and says why (the 2022-08 issue prints
心理危机干预 “376334”, where only 334 makes the six categories sum to 263,069 — the tail of another
figure was joined to it). Otherwise the gap is reported.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from rhip.hotline import cdr

DATA = Path(__file__).with_name("data")
SEED_FILE = DATA / "seed_figures.yaml"
ORDER_NAMES = {"市12345工单": "wo_city_12345", "省12345工单": "wo_province_12345", "自接工单": "wo_self"}


@dataclass
class SeedFigures:
    """One month's hotline figures as a bulletin printed them (after the reader's corrections)."""

    month: str
    total: int
    calls: dict[str, int]
    orders: dict[str, int]
    province: list[tuple[str, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def categories_sum(self) -> int:
        """The sum of the call categories."""
        return sum(self.calls.values())


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _correct(calls: dict[str, int], total: int, printed: dict[str, str]) -> list[str]:
    """Fix a mis-joined figure when one exact reading makes the categories sum to the total."""
    gap = sum(calls.values()) - total
    if gap == 0:
        return []
    fixes = []
    for code, digits in printed.items():
        for k in range(1, len(digits)):
            tail = int(digits[k:])
            if calls[code] - tail == gap and digits[k] != "0":
                fixes.append((code, tail, digits))
    if len(fixes) == 1:
        code, tail, digits = fixes[0]
        calls[code] = tail
        name = cdr.CALL_LABELS.get(code, code)
        return [
            f"{name}原文为“{digits}”，与其他分类之和为 {total + gap:,}，与合计 {total:,} 不符；"
            f"只有取末尾的 {tail} 才使各分类之和等于合计，判断为排版时误将其他数字与之相连，取 {tail}"
        ]
    return [f"各分类之和 {total + gap:,} 与合计 {total:,} 相差 {gap:+,}，原文如此，未作更正"]


def parse_paragraph(text: str, *, month: str) -> SeedFigures:
    """The figures of a month's hotline paragraph (and the province sentence when present)."""
    flat = _flat(text)
    head = re.search(r"共受理咨询电话(\d+)个，其中(.+?)，受理市", flat)
    if head is None:
        raise ValueError(f"{month}: 找不到“共受理咨询电话……其中……”")
    total = int(head.group(1))
    calls: dict[str, int] = {}
    printed: dict[str, str] = {}
    for part in head.group(2).split("、"):
        m = re.fullmatch(r"(.+?)(\d+)(个|通)?", part)
        if m is None:
            raise ValueError(f"{month}: 无法读取“{part}”")
        code = cdr.resolve_category(m.group(1))
        if code is None:
            raise ValueError(f"{month}: 未知分类“{m.group(1)}”")
        calls[code], printed[code] = int(m.group(2)), m.group(2)
    orders = {}
    for name, number in re.findall(r"(市12345工单|省12345工单|自接工单)(\d+)件", flat):
        orders[ORDER_NAMES[name]] = int(number)
    notes = _correct(calls, total, printed)
    figures = SeedFigures(month=month, total=total, calls=calls, orders=orders, notes=notes)
    prov = re.search(r"全省12320共接听电话(\d+)人次，(?:其中|各市电话量统计为：)(.+?)。", flat)
    if prov:
        for city, n in re.findall(r"([^、，：\d]+?)市?(\d+)(?:人次)?", prov.group(2)):
            figures.province.append((city.removesuffix("市"), int(n)))
        listed = sum(n for _c, n in figures.province)
        if listed != int(prov.group(1)):
            figures.notes.append(
                f"全省合计 {int(prov.group(1)):,}，所列各市之和 {listed:,}（原文只列出部分城市）"
            )
    return figures


def read_seed_file(path: Path) -> SeedFigures | None:
    """The hotline figures of one seed issue, or None when it has no hotline paragraph."""
    text = path.read_text(encoding="utf-8")
    m = re.search(r"(\d{4})\s*年\s*(\d{1,2})\s*月数据统计", text)
    start = text.find("共受理咨询电话")
    if m is None or start < 0:
        return None
    month = f"{int(m.group(1)):04d}-{int(m.group(2)):02d}"
    return parse_paragraph(text[max(0, start - 40) : start + 1200], month=month)


@cache
def committed() -> dict[str, SeedFigures]:
    """The figures committed in data/seed_figures.yaml, by month."""
    rows = yaml.safe_load(SEED_FILE.read_text(encoding="utf-8"))
    return {
        r["month"]: SeedFigures(
            month=r["month"],
            total=r["total"],
            calls=dict(r["calls"]),
            orders=dict(r["orders"]),
            province=[(c, n) for c, n in r.get("province", [])],
            notes=list(r.get("notes", [])),
        )
        for r in rows
    }


def main(argv: list[str]) -> None:
    """Write data/seed_figures.yaml from the seeds folder."""
    folder = Path(argv[0]) if argv else Path("../shared/seeds")
    out: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.txt")):
        fig = read_seed_file(path)
        if fig is None:
            continue
        out.append(
            {
                "month": fig.month,
                "total": fig.total,
                "calls": fig.calls,
                "orders": fig.orders,
                "province": [list(p) for p in fig.province],
                "notes": fig.notes,
            }
        )
    out.sort(key=lambda r: str(r["month"]))
    header = "# 由 python -m rhip.hotline.seeds 从各期简报的热线段落读出（勿手改）。\n"
    SEED_FILE.write_text(header + yaml.safe_dump(out, allow_unicode=True, sort_keys=False), encoding="utf-8")
    for r in out:
        print(r["month"], r["total"], "；".join(r["notes"]))


if __name__ == "__main__":
    main(sys.argv[1:])
