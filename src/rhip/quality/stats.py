"""The quality domain's bulletin provider hook: the data-collection sections of a month.

The work is split by responsibility (import each module directly): `rollupread` reads intake's rollups,
`recount` recounts the same from the lake (`figsql` builds the SQL over intake's lake tables, `lakeread` runs
it through DuckDB), `units` names the reporting units, `figures` assembles the per-unit figures of
docs/metrics.md, `usage` holds the reported record-browser and smart-reminder usage, `layouts` and `eras`
turn the figures into the bulletin's tables (in the layout of each era of the seeds) and `sections` into its
sections.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from rhip.lake.store import Lake
from rhip.quality.figures import month_figures
from rhip.quality.sections import sections_of


def bulletin_sections(
    *, session: Session, lake: Lake, month: str, layout: str | None = None
) -> list[dict[str, Any]]:
    """The data-collection part of the bulletin for a month (the bulletin's provider hook).

    `layout` ("2018", "2020", "2022" or "2025") prints the tables as that era's bulletin did; by default the
    era the month belongs to.
    """
    return sections_of(month_figures(session, lake=lake, month=month), layout=layout)
