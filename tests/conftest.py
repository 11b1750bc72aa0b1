"""Shared fixtures: app and database tests run on SQLite, and also on PostgreSQL when configured."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.security.service import issue_token

PG_URL = os.environ.get("RHIP_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SECRET = "test-secret-key-for-rhip-tests-only-0123456789"
REPO = Path(__file__).resolve().parents[1]
SEEDS = (REPO / ".." / "shared" / "seeds").resolve()


def seed_files() -> list[Path]:
    """The seed bulletins beside the repository: a skip when they are missing, a failure in CI (CI=true),
    where a silent skip would hide that the specification's own tests did not run."""
    files = sorted(SEEDS.glob("*.txt"))
    if not files:
        message = f"seed bulletins not found in {SEEDS}"
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"{message} (CI=true: the seeds are required)")
        pytest.skip(message)
    return files


@pytest.fixture(scope="session")
def seeds() -> Path:
    """The seeds folder (see seed_files)."""
    seed_files()
    return SEEDS


def _pg_admin_url() -> str:
    assert PG_URL
    return PG_URL


def create_pg_database() -> str:
    """A new empty PostgreSQL database for this test session; returns its URL."""
    name = f"rhip_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(_pg_admin_url()).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    """Drop a database made by create_pg_database."""
    name = make_url(url).database
    admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend under test."""
    if request.param == "postgres" and not PG_URL:
        pytest.skip("RHIP_TEST_POSTGRES_URL not set")
    return str(request.param)


@pytest.fixture(scope="session")
def settings(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings for one backend, with a private data folder."""
    data_dir = tmp_path_factory.mktemp(f"rhip-{backend}")
    url = create_pg_database() if backend == "postgres" else None
    yield Settings(data_dir=data_dir, database_url=url, secret_key=SECRET)
    if url:
        drop_pg_database(url)


@pytest.fixture(scope="session")
def app_(settings: Settings):  # type: ignore[no-untyped-def]
    """The application (migrated, registry loaded), shared within a backend."""
    from rhip.web.app import create_app

    return create_app(settings)


@pytest.fixture()
def client(app_) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """An HTTP client for the app, standing for a browser on the site's own pages (same-origin fetches:
    the CSRF check admits them; tests of cross-site requests set their own headers). Each test is its own
    client address, so one test's failed sign-ins never throttle another's (the throttle keys on it)."""
    address = (f"testclient-{uuid.uuid4().hex[:8]}", 50000)
    with TestClient(
        app_, raise_server_exceptions=False, headers={"Sec-Fetch-Site": "same-origin"}, client=address
    ) as c:
        yield c


@pytest.fixture()
def db(app_) -> Database:  # type: ignore[no-untyped-def]
    """The app's database."""
    return app_.state.db  # type: ignore[no-any-return]


@pytest.fixture()
def session(db: Database) -> Iterator[Session]:
    """A session on the app's database (the test owns transactions)."""
    with db.session() as s:
        yield s


@pytest.fixture()
def token() -> Callable[..., str]:
    """Make a bearer token: token('manager'), token('uploader', institution='H001')."""

    def make(role: str, institution: str | None = None, subject: str = "tester") -> str:
        return issue_token(SECRET, subject=subject, role=role, institution_code=institution)

    return make


@pytest.fixture()
def auth(token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """Authorization headers for a role: auth('admin')."""

    def make(role: str, institution: str | None = None, subject: str = "tester") -> dict[str, str]:
        return {"Authorization": f"Bearer {token(role, institution, subject)}"}

    return make


@pytest.fixture(scope="module")
def live(app_) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The test app served by uvicorn on a free loopback port (same process, so the frozen clock applies)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app_, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
