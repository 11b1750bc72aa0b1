"""Hotline fixtures: the app's migrated database, a session, principals."""

from __future__ import annotations

import pytest

from rhip.security.roles import Role
from rhip.security.service import Principal

AGENT = Principal(subject="agent-01", role=Role.agent)
MANAGER = Principal(subject="mgr", role=Role.manager)


@pytest.fixture()
def agent() -> Principal:
    """A hotline agent."""
    return AGENT


def staff(code: str) -> Principal:
    """A member of an institution's staff (doctor role bound to the institution)."""
    return Principal(subject=f"staff-{code}", role=Role.doctor, institution_code=code)
