"""Engine and session factory; migrations run through `upgrade()`."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from rhip.config import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
POOL_SIZE = 24  # pooled connections per process = the web app's thread-pool size


# WAL checkpoints off the request path: SQLite's default lets the commit that crosses 1,000 WAL pages
# copy them into the database file (and fsync it) — that one request in ~100 was the incremental link's
# p99. A background thread per process checkpoints (PASSIVE: never blocks readers or the writer) every
# CHECKPOINT_SECONDS; the request connections checkpoint themselves only if the WAL passes WAL_PAGES
# (the thread fell behind), and the WAL file is cut back to WAL_KEEP_BYTES after each restart.
CHECKPOINT_SECONDS = 1.0
WAL_PAGES = 16_384  # 64 MB of 4 KB pages: the WAL's bound
WAL_KEEP_BYTES = 64 * 1024 * 1024


def libpq_url(url: str) -> str:
    """A SQLAlchemy database URL as psycopg's own connect takes it (the batchers' async connections)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
    cur.execute(f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}")
    cur.close()


class _Checkpointer:
    """The background PASSIVE checkpoint of one SQLite file, on a connection of its own: started by a
    process's first new connection (a forked worker starts its own), stopped when the engine is disposed
    (the next connection starts it again)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pid = -1
        self.stopped = threading.Event()

    def ensure(self, *_args: Any) -> None:
        with self.lock:
            if self.pid == os.getpid() and self.thread is not None and self.thread.is_alive():
                return
            self.pid, self.stopped = os.getpid(), threading.Event()
            self.thread = threading.Thread(
                target=self._run, args=(self.stopped,), name="sqlite-checkpoint", daemon=True
            )
            self.thread.start()

    def stop(self, *_args: Any) -> None:
        self.stopped.set()

    def _run(self, stopped: threading.Event) -> None:
        wal = Path(self.path + "-wal")
        try:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        except sqlite3.Error:
            return
        try:
            while not stopped.wait(CHECKPOINT_SECONDS):
                if wal.exists() and wal.stat().st_size > 0:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except (sqlite3.Error, OSError):
            pass  # the file went away (a test's temporary database); the commits' own bound still holds
        finally:
            conn.close()


def private_file(path: Path) -> None:
    """Create the file (and missing parent folders) readable by its owner only: 0600 in 0700."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for suffix in ("-wal", "-shm"):  # SQLite's companions take the database file's mode
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.chmod(0o600)


def make_engine(url: str) -> Engine:
    """An engine for the URL, with SQLite tuned for concurrent readers and one writer."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            private_file(Path(path))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        if path and path != ":memory:":
            checkpointer = _Checkpointer(path)
            event.listen(engine, "connect", checkpointer.ensure)
            event.listen(engine, "engine_disposed", checkpointer.stop)
        return engine
    # POOL_SIZE per process, and the web app runs at most POOL_SIZE sync routes at once (its thread pool,
    # see web/app.py), so a connection is never opened and closed per request (overflow connections
    # would be: each costs PostgreSQL a new backend); the overflow is for a route that opens a second
    # session. Two workers stay well under PostgreSQL's default 100 connections; sessions close
    # before the response is sent. No pre-ping: it would add a round trip to every request; stale
    # connections are recycled after an hour instead.
    return create_engine(url, pool_size=POOL_SIZE, max_overflow=8, pool_timeout=30, pool_recycle=3600)


class Database:
    """One engine and its session factory; entry points open `with db.session() as s, s.begin():`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """The database the settings name."""
        return cls(settings.resolved_database_url)

    def session(self) -> Session:
        """A new session; the caller owns the transaction."""
        return self.sessionmaker()

    def sessions(self) -> Iterator[Session]:
        """Yield one session (for FastAPI dependencies)."""
        with self.sessionmaker() as s:
            yield s

    def dispose(self) -> None:
        """Close every pooled connection (and stop SQLite's background checkpoint)."""
        self.engine.dispose()


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the package's migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the schema to `revision` (idempotent); each domain's migrations are their own branch."""
    command.upgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """The schema revisions (one per domain branch), comma-separated, or None when empty."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()
    return ",".join(sorted(heads)) or None


def dialect_insert(session: Session, table: Any) -> Any:
    """An INSERT with the dialect's ON CONFLICT clauses (PostgreSQL or SQLite) for upserts."""
    from sqlalchemy.dialects import postgresql, sqlite

    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
