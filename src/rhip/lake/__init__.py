"""The analytical store: Delta tables under one root, read with DuckDB through SQL builders."""

from rhip.lake.duck import Duck
from rhip.lake.sql import Sql
from rhip.lake.store import Lake

__all__ = ["Duck", "Lake", "Sql"]
