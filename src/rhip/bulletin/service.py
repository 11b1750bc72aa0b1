"""Assembling an issue: ask every provider for its sections of the month, in order."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import date

from sqlalchemy.orm import Session

from rhip import months
from rhip.bulletin import providers as prov
from rhip.bulletin.sections import Bulletin, Section, parse_section
from rhip.errors import Invalid
from rhip.lake.store import Lake
from rhip.logging import get as get_logger

log = get_logger(__name__)

# The 2025年第3期 was 总第157期 (seed 001); issues are monthly and carry the previous month's statistics.
ANCHOR_ISSUE = (2025, 3)
ANCHOR_TOTAL = 157
PUBLISH_DAY = 25
LAYOUTS = ("2018", "2020", "2022", "2025")  # the eras of the seeds' table layouts


def masthead(month: str) -> Bulletin:
    """An empty issue for a statistics month: 期号, 总期号 and date of the issue published the month after."""
    y, m = months.parse(month)
    iy, im = (y + 1, 1) if m == 12 else (y, m + 1)
    total = ANCHOR_TOTAL + (iy * 12 + im) - (ANCHOR_ISSUE[0] * 12 + ANCHOR_ISSUE[1])
    published = date(iy, im, PUBLISH_DAY)
    return Bulletin(
        month=f"{y:04d}-{m:02d}",
        issue_year=iy,
        issue_no=im,
        issue_total=total,
        published_on=f"{published.year}年{published.month}月{published.day}日",
    )


def build(
    *,
    session: Session,
    lake: Lake,
    month: str,
    modules: list[str] | None = None,
    strict: bool = False,
    progress: Callable[[str], None] | None = None,
    layout: str | None = None,
) -> Bulletin:
    """The issue for a month: every provider's sections, sorted; failures noted (raised if strict).

    `layout` asks for the tables in the layout of one era of the bulletin ("2018", "2020", "2022", "2025");
    it is passed to the providers that take a `layout` argument.
    """
    if layout is not None and layout not in LAYOUTS:
        raise Invalid(f"未知的表格版式：{layout}（可选：{'、'.join(LAYOUTS)}）", code="bad-layout")
    bulletin = masthead(month)
    sections: list[Section] = []
    for name in modules if modules is not None else prov.provider_modules():
        if progress:
            progress(name)
        try:
            fn = prov.load(name)
            extra = {"layout": layout} if layout and "layout" in inspect.signature(fn).parameters else {}
            raw = fn(session=session, lake=lake, month=bulletin.month, **extra)
            sections.extend(parse_section(s, source=name) for s in raw)
        except Exception as exc:
            if strict:
                raise
            detail = getattr(exc, "detail", None) or f"{type(exc).__name__}: {exc}"
            bulletin.errors.append(f"{name}：{detail}")
            log.exception("bulletin provider %s failed for %s", name, bulletin.month)
    sections.sort(key=lambda s: (s.order, s.key))
    bulletin.sections = sections
    return bulletin
