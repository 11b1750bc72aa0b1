"""The quality domain's monthly figures and its bulletin sections (the bulletin's provider hook).

The work is split by responsibility: `rollupread` reads intake's rollups, `recount` recounts the same from
the lake (`figsql` builds the SQL over intake's lake tables, `lakeread` runs it through DuckDB), `figures`
assembles the per-unit figures of docs/metrics.md, `usage` holds the reported
record-browser and smart-reminder usage, `layouts` and `eras` turn the figures into the bulletin's tables
(in the layout of each era of the seeds) and `sections` into its sections. This module keeps the names the
rest of the code uses.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from rhip.lake.store import Lake
from rhip.quality.figsql import REALTIME_LAG, limit_sql
from rhip.quality.figures import (
    RECORD_TABLES,
    MonthFigures,
    OrgFigures,
    Unit,
    UnitFigures,
    active_days,
    month_bounds,
    month_figures,
    month_label,
    org_figures,
    realtime_tables,
    required_tables,
    units,
    visit_history,
)
from rhip.quality.lakeread import LakeReader, data_table
from rhip.quality.layouts import (
    COLUMNS_2025,
    SUPPLEMENT_COLUMNS,
    collection_row,
    cumulative_text,
    summary_paragraphs,
    supplement_row,
    thousands,
)
from rhip.quality.recount import pending_batches
from rhip.quality.sections import sections_of

__all__ = [
    "COLUMNS_2025",
    "REALTIME_LAG",
    "RECORD_TABLES",
    "SUPPLEMENT_COLUMNS",
    "LakeReader",
    "MonthFigures",
    "OrgFigures",
    "Unit",
    "UnitFigures",
    "active_days",
    "bulletin_sections",
    "collection_row",
    "cumulative_text",
    "data_table",
    "limit_sql",
    "month_bounds",
    "month_figures",
    "month_label",
    "org_figures",
    "pending_batches",
    "realtime_tables",
    "required_tables",
    "sections_of",
    "summary_paragraphs",
    "supplement_row",
    "thousands",
    "units",
    "visit_history",
]


def bulletin_sections(
    *, session: Session, lake: Lake, month: str, layout: str | None = None
) -> list[dict[str, Any]]:
    """The data-collection part of the bulletin for a month (the bulletin's provider hook).

    `layout` ("2018", "2020", "2022" or "2025") prints the tables as that era's bulletin did; by default the
    era the month belongs to.
    """
    return sections_of(month_figures(session, lake=lake, month=month), layout=layout)
