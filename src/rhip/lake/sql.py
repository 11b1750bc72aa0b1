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
