"""Finding section providers without knowing the domains: every `rhip.<domain>.stats` module that defines
`bulletin_sections`, plus any module registered under the `rhip.bulletin_sections` entry-point group.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import rhip

HOOK = "bulletin_sections"
ENTRY_POINT_GROUP = "rhip.bulletin_sections"
Provider = Callable[..., list[Any]]


def provider_modules() -> list[str]:
    """Names of the modules that provide bulletin sections, in a stable order."""
    names: list[str] = []
    for info in pkgutil.iter_modules(rhip.__path__):
        if not info.ispkg:
            continue
        # find the stats module without importing the package (importing rhip.web builds the app), and
        # import only those that name the hook (a domain's services are costly to import for nothing)
        files = [Path(p) / info.name / "stats.py" for p in rhip.__path__]
        if not any(f.is_file() and HOOK in f.read_text(encoding="utf-8") for f in files):
            continue
        name = f"rhip.{info.name}.stats"
        module = importlib.import_module(name)
        if callable(getattr(module, HOOK, None)):
            names.append(name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.module not in names:
            names.append(ep.module)
    return names


def load(name: str) -> Provider:
    """The `bulletin_sections` function of a provider module."""
    module = importlib.import_module(name)
    fn = getattr(module, HOOK)
    if not callable(fn):
        raise TypeError(f"{name}.{HOOK} is not callable")
    return fn  # type: ignore[no-any-return]
