"""Several server processes starting at once on a new database (`rhip serve --workers N`): one migrates and
loads the registry, the others wait for it and start on the result; none dies on a duplicate key."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from rhip.registry.models import Institution
from tests.conftest import PG_URL, create_pg_database, drop_pg_database


def _start(url: str, data_dir: str) -> None:
    from rhip.config import Settings
    from rhip.web.app import create_app

    create_app(Settings(database_url=url, data_dir=Path(data_dir)))


@pytest.mark.parametrize("backend_name", ["sqlite", "postgres"])
def test_workers_starting_together_on_a_new_database(backend_name: str, tmp_path: Path) -> None:
    if backend_name == "postgres" and not PG_URL:
        pytest.skip("RHIP_TEST_POSTGRES_URL not set")
    url = create_pg_database() if backend_name == "postgres" else f"sqlite:///{tmp_path / 'rhip.db'}"
    try:
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_start, args=(url, str(tmp_path / f"w{i}"))) for i in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=240)
        assert [p.exitcode for p in procs] == [0, 0, 0]
        engine = create_engine(url)
        with engine.connect() as conn:
            assert (conn.scalar(select(func.count()).select_from(Institution)) or 0) > 100
        engine.dispose()
    finally:
        if backend_name == "postgres":
            drop_pg_database(url)
        elif os.path.exists(tmp_path / "rhip.db"):
            os.remove(tmp_path / "rhip.db")
