"""SQL text plus bound parameters: the only way analytics SQL is built (no values in f-strings)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Sql:
    """A statement and its named parameters ($name placeholders in DuckDB)."""

    text: str
    params: dict[str, Any] = field(default_factory=dict)


def ident(name: str) -> str:
    """Quote a table or column name after checking it is a plain identifier."""
    if not _IDENT.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return f'"{name}"'


# The de-duplication rule (DESIGN §6): of the stored versions of one record (institution + table + business
# key) the latest 数据更新时间 wins, then the later ingest, then the later row of the same file.
CURRENT_ORDER = "updated_at DESC, _ingested_at DESC, _row DESC"


def ranked_versions_sql(source: str, columns: str, where: str) -> str:
    """SQL text: the rows of `source` passing `where`, each numbered `_rn` within its record (org_code,
    _key), 1 for the current version. The one builder of "the current record" over the lake's tables."""
    return (
        f"SELECT {columns}, row_number() OVER (PARTITION BY org_code, _key ORDER BY {CURRENT_ORDER}) AS _rn "
        f"FROM {source} WHERE {where}"
    )
