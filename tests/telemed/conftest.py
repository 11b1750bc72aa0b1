"""Telemedicine fixtures: a migrated database per backend, a frozen clock, connected institutions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session

from rhip import clock
from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.telemed import service as svc
from rhip.telemed.models import Connection

T0 = datetime(2022, 8, 10, 9, 0, tzinfo=clock.SHANGHAI)
REQUESTER = "C32011501"  # a community centre of 江宁区
HUB_IMAGING = "H020"  # 南京鼓楼医院 runs the imaging and consultation centres
PID = "320102198001011238"


@pytest.fixture(scope="session")
def tdb(settings: Settings) -> Iterator[Database]:
    """The backend's database with every migration applied."""
    upgrade(settings.resolved_database_url)
    database = Database.from_settings(settings)
    with database.session() as s, s.begin():
        from rhip.registry import service as registry

        registry.ensure_loaded(s)
    yield database
    database.dispose()


@pytest.fixture()
def ts(tdb: Database) -> Iterator[Session]:
    """A session; tests open transactions with `with ts.begin():`."""
    with tdb.session() as s:
        yield s


@pytest.fixture()
def frozen() -> Iterator[datetime]:
    """Time frozen at T0."""
    with clock.frozen(T0):
        yield T0


@pytest.fixture()
def connected(ts: Session) -> Iterator[str]:
    """REQUESTER connected to every centre (removed afterwards unless a test's data needs it)."""
    with ts.begin():
        ts.execute(delete(Connection).where(Connection.site_key == REQUESTER))
        for code in svc.CENTRE_CODES:
            svc.connect(ts, centre_code=code, institution_code=REQUESTER, connected_on=date(2020, 1, 1))
    yield REQUESTER


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Orthanc started for the test session (Debian's package; CI installs it) and stopped after."""
    from rhip.telemed import pacs

    server = pacs.orthanc_in(tmp_path_factory.mktemp("orthanc"))
    server.start()
    client = server.client()
    yield client
    client.close()
    server.stop()
    assert server.process is not None and server.process.poll() is not None


@pytest.fixture()
def app_pacs(app_: Any, orthanc: Any) -> Iterator[Any]:
    """The app pointed at the test Orthanc for one test."""
    settings = app_.state.settings
    before = settings.orthanc_url
    settings.orthanc_url = orthanc.url
    yield orthanc
    settings.orthanc_url = before
