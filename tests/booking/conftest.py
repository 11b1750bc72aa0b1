"""Booking fixtures: a migrated database per backend, unique residents, schedules at a frozen time."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from rhip import clock
from rhip.booking import pgbatch, service as svc
from rhip.booking.models import Schedule
from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.registry.idnumber import make_id
from rhip.security.roles import Role
from rhip.security.service import Principal

# Monday 3 March 2025, 09:00 in Nanjing: public release (7 days, 08:00) of 10 March has just happened
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=clock.SHANGHAI)
TERTIARY = "H020"  # 南京鼓楼医院 (三级)
SECONDARY = "H029"  # 南京市胸科医院 (二级)
STAFF = Principal(subject="staff", role=Role.manager)
AREAS = ["320102", "320104", "320105", "320106", "320111", "320113", "320114", "320115", "340202"]
_rng = random.Random()
_issued: set[str] = set()


@pytest.fixture(scope="session")
def bdb(settings: Settings) -> Iterator[Database]:
    """The backend's database with every migration applied."""
    upgrade(settings.resolved_database_url)
    database = Database.from_settings(settings)
    yield database
    database.dispose()


@pytest.fixture()
def bs(bdb: Database) -> Iterator[Session]:
    """A session; tests open transactions with `with bs.begin():`."""
    with bdb.session() as s:
        yield s


def new_person() -> str:
    """A valid resident ID number never handed out before in this test session."""
    while True:
        born = date(_rng.randint(1950, 2004), _rng.randint(1, 12), _rng.randint(1, 28))
        pid = make_id(_rng.choice(AREAS), born, _rng.randint(0, 999))
        if pid not in _issued:
            _issued.add(pid)
            return pid


@pytest.fixture()
def person() -> Callable[[], str]:
    """Factory of fresh resident ID numbers."""
    return new_person


def resident(pid: str) -> Principal:
    """A resident principal for an ID number."""
    return Principal(subject=pid, role=Role.resident)


@pytest.fixture()
def frozen() -> Iterator[datetime]:
    """Time frozen at T0."""
    with clock.frozen(T0):
        yield T0


def schedule(
    session: Session,
    *,
    day: date = date(2025, 3, 10),
    hospital_code: str = TERTIARY,
    department_code: str = "03.04",
    sess: str = "am",
    slot_minutes: int = 30,
    capacity: int = 10,
    doctor: str | None = None,
) -> Schedule:
    """Publish a schedule (in its own transaction) with a unique doctor name."""
    spec = svc.ScheduleSpec(
        hospital_code=hospital_code,
        department_code=department_code,
        doctor_name=doctor or f"医生{uuid.uuid4().hex[:8]}",
        doctor_title="主任医师",
        service_date=day,
        session=sess,
        slot_minutes=slot_minutes,
        capacity_per_slot=capacity,
    )
    with session.begin():
        sched = svc.create_schedule(session, spec=spec, actor=STAFF)
    session.expunge(sched)  # a detached snapshot: a later rollback must not expire it
    return sched


@pytest.fixture()
def batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch pgbatch sends to PostgreSQL from now on (a spy: the call still goes)."""
    sizes: list[int] = []
    execute = pgbatch._execute

    async def spy(conn: Any, entries: Any) -> Any:
        sizes.append(len(entries))
        return await execute(conn, entries)

    monkeypatch.setattr(pgbatch, "_execute", spy)
    return sizes
