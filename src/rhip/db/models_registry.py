"""Imports every domain's models so Alembic and tests see the whole schema."""

from __future__ import annotations

import importlib

MODEL_MODULES = [
    "rhip.security.models",
    "rhip.registry.models",
    "rhip.intake.models",
    "rhip.booking.models",
    "rhip.quality.models",
    "rhip.identity.models",
]


def import_all_models() -> None:
    """Import each module that defines tables (missing ones are skipped while being built)."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
