"""Shared pieces of the booking JSON API: who may call what, and the default search window."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import Depends

from rhip.clock import local_now
from rhip.security.deps import require
from rhip.security.roles import Role
from rhip.security.service import Principal

BOOKERS = (Role.resident, Role.agent, Role.doctor, Role.family_doctor, Role.uploader)
STAFF = (Role.doctor, Role.manager, Role.admin)
bookers = require(*BOOKERS)  # the booking route's lean path awaits it directly
Bookers = Annotated[Principal, Depends(bookers)]
Viewers = Annotated[Principal, Depends(require(*BOOKERS, Role.manager, Role.admin))]
Staff = Annotated[Principal, Depends(require(*STAFF))]
Managers = Annotated[Principal, Depends(require(Role.manager, Role.admin))]


def window(date_from: date | None, date_to: date | None) -> tuple[date, date]:
    """The dates a search covers: from today (or date_from) for two weeks (or to date_to)."""
    start = date_from or local_now().date()
    return start, date_to or start + timedelta(days=14)
