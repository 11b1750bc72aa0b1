"""Identity fixtures: a migrated database per backend; each test uses its own institution codes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from rhip.config import Settings
from rhip.db.engine import Database, upgrade


@pytest.fixture(scope="session")
def idb(settings: Settings) -> Iterator[Database]:
    """The backend's database with every migration applied."""
    upgrade(settings.resolved_database_url)
    database = Database.from_settings(settings)
    yield database
    database.dispose()


@pytest.fixture()
def ids(idb: Database) -> Iterator[Session]:
    """A session; tests open transactions with `with ids.begin():`."""
    with idb.session() as s:
        yield s


@pytest.fixture()
def inst() -> str:
    """An institution code unique to the test (tests share one database per backend)."""
    return "T" + uuid.uuid4().hex[:8].upper()


FIELDS = ("id_number", "name", "birth_date", "sex", "phone", "district")


def fields(**kw: object) -> dict[str, object]:
    """The six identity fields, None unless given."""
    return {k: kw.get(k) for k in FIELDS}
