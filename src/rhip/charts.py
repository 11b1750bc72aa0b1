"""Accessible SVG charts drawn on the server: bars, stacked bars and lines for every dashboard.

Each function returns SVG text (safe to put in a page with `|safe`): `role="img"`, a `<title>` and a
`<desc>` that states every value, so a screen reader reads the same numbers as the table beside it.
No script, no external resource: the pages' Content-Security-Policy allows none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#2f6fb0", "#e07b39", "#3a9a5b", "#c23b3b", "#7d5ba6", "#8c6d3f", "#d16ba5", "#6b7b8c")
FONT = "font-family=\"'WenQuanYi Micro Hei','Noto Sans CJK SC',sans-serif\""


@dataclass(frozen=True)
class Series:
    """One named row of values, one per label."""

    name: str
    values: Sequence[float]


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    mag = 10 ** (len(str(int(v))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * mag >= v:
            return float(step * mag)
    return float(10 * mag)


def _desc(title: str, labels: Sequence[str], series: Sequence[Series], unit: str) -> str:
    parts = []
    for s in series:
        vals = "，".join(f"{lab} {_fmt(v)}{unit}" for lab, v in zip(labels, s.values, strict=True))
        parts.append(f"{s.name}：{vals}" if len(series) > 1 or s.name else vals)
    return f"{title}。" + "；".join(parts)


def _frame(width: int, height: int, title: str, desc: str, body: list[str], legend: Sequence[str]) -> str:
    cid = f"c{abs(hash((title, desc))) % 10**8}"
    items = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="{cid}t {cid}d" {FONT} font-size="12">',
        f'<title id="{cid}t">{escape(title)}</title><desc id="{cid}d">{escape(desc)}</desc>',
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="14" font-weight="bold">'
        f"{escape(title)}</text>",
        *body,
    ]
    if len(legend) > 1:
        x = 60.0
        for i, name in enumerate(legend):
            items.append(
                f'<rect x="{x}" y="{height - 14}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
                f'<text x="{x + 14}" y="{height - 5}">{escape(name)}</text>'
            )
            x += 24 + 13 * len(name)
    items.append("</svg>")
    return "".join(items)


def _axes(width: int, top: float, bottom: float, left: float, vmax: float, unit: str) -> list[str]:
    out = []
    for i in range(5):
        v = vmax * i / 4
        y = bottom - (bottom - top) * i / 4
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#555">'
            f"{_fmt(v)}{escape(unit)}</text>"
        )
    return out


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series] | Sequence[float],
    *,
    unit: str = "",
    stacked: bool = False,
    width: int = 640,
    height: int = 300,
) -> str:
    """Vertical bars (grouped, or stacked when asked), one group per label."""
    ss = _as_series(series)
    labels = [str(x) for x in labels]
    top, left, bottom = 30.0, 70.0, float(height - (46 if len(ss) > 1 else 30))
    totals = [sum(s.values[i] for s in ss) for i in range(len(labels))]
    peak = max(totals if stacked else [v for s in ss for v in s.values] or [0])
    vmax = _nice_max(float(peak))
    body = _axes(width, top, bottom, left, vmax, unit)
    n = max(len(labels), 1)
    slot = (width - 10 - left) / n
    bar_w = slot * 0.8 / (1 if stacked else len(ss))
    for i, lab in enumerate(labels):
        x0 = left + slot * i + slot * 0.1
        base = bottom
        for j, s in enumerate(ss):
            v = float(s.values[i])
            h = (bottom - top) * v / vmax
            x = x0 if stacked else x0 + bar_w * j
            y = base - h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(lab)} {escape(s.name)} '
                f"{_fmt(v)}{escape(unit)}</title></rect>"
            )
            if stacked:
                base = y
        if n <= 16 or i % (n // 16 + 1) == 0:
            body.append(
                f'<text x="{x0 + slot * 0.4:.1f}" y="{bottom + 14}" text-anchor="middle" fill="#333">'
                f"{escape(lab[:8])}</text>"
            )
    return _frame(width, height, title, _desc(title, labels, ss, unit), body, [s.name for s in ss])


def hbar_chart(
    title: str, labels: Sequence[str], values: Sequence[float], *, unit: str = "", width: int = 640
) -> str:
    """Horizontal bars: a ranking (top institutions) with long Chinese names."""
    labels = [str(x) for x in labels]
    row = 22
    height = 40 + row * max(len(labels), 1)
    left = 200.0
    vmax = _nice_max(float(max(values, default=0)))
    body = []
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        y = 28 + row * i
        w = (width - left - 80) * float(v) / vmax
        body.append(
            f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" fill="#333">{escape(lab[:16])}</text>'
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{PALETTE[0]}"/>'
            f'<text x="{left + w + 4:.1f}" y="{y + 14}" fill="#333">{_fmt(float(v))}{escape(unit)}</text>'
        )
    ss = [Series("", list(values))]
    return _frame(width, height, title, _desc(title, labels, ss, unit), body, [])


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series] | Sequence[float],
    *,
    unit: str = "",
    width: int = 640,
    height: int = 300,
) -> str:
    """Lines over an ordered axis (days, months), one per series."""
    ss = _as_series(series)
    labels = [str(x) for x in labels]
    top, left, bottom = 30.0, 70.0, float(height - (46 if len(ss) > 1 else 30))
    vmax = _nice_max(float(max([v for s in ss for v in s.values] or [0])))
    body = _axes(width, top, bottom, left, vmax, unit)
    n = len(labels)
    step = (width - 20 - left) / max(n - 1, 1)
    for j, s in enumerate(ss):
        pts = " ".join(
            f"{left + step * i:.1f},{bottom - (bottom - top) * float(v) / vmax:.1f}"
            for i, v in enumerate(s.values)
        )
        body.append(
            f'<polyline points="{pts}" fill="none" stroke="{PALETTE[j % len(PALETTE)]}" stroke-width="2"/>'
        )
    every = n // 10 + 1
    for i, lab in enumerate(labels):
        if i % every == 0:
            body.append(
                f'<text x="{left + step * i:.1f}" y="{bottom + 14}" text-anchor="middle" fill="#333">'
                f"{escape(lab[-5:])}</text>"
            )
    return _frame(width, height, title, _desc(title, labels, ss, unit), body, [s.name for s in ss])


@dataclass(frozen=True)
class Panel:
    """A chart with the rows of the table printed beside it (web/templates/_charts.html draws both)."""

    svg: str
    head: tuple[str, str]
    rows: list[tuple[str, str]]


def panel(svg: str, head: tuple[str, str], rows: Sequence[tuple[object, float | str]]) -> Panel:
    """A Panel; numbers in the rows are formatted with thousands separators."""
    return Panel(svg, head, [(str(k), v if isinstance(v, str) else _fmt(v)) for k, v in rows])


def _as_series(series: Sequence[Series] | Sequence[float]) -> list[Series]:
    if series and isinstance(series[0], Series):
        return list(series)  # type: ignore[arg-type]
    return [Series("", [float(v) for v in series])]  # type: ignore[arg-type]
