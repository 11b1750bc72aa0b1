"""Named locks held through the database, for work that spans several transactions and processes (intake's
per-institution lock when the lake is on object storage and the writers may be on several machines).

PostgreSQL: a session-level advisory lock on a connection of its own (in autocommit, so no transaction stays
open while the lock is held); the server releases it when the connection ends, so a killed process never
leaves it behind. SQLite: every process using the database runs on the machine that holds its file, so an
exclusive `flock` on a file beside it serialises them the same way, and the kernel releases it when the
process dies (a lock row would need a stale-holder check instead).
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text


def lock_key(name: str) -> int:
    """The signed 64-bit advisory-lock key of a lock name."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@contextmanager
def db_lock(engine: Engine, name: str) -> Iterator[None]:
    """Hold the named lock for the block, waiting for any other holder (any process, any machine)."""
    if engine.dialect.name == "postgresql":
        key = lock_key(name)
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        return
    database = engine.url.database
    folder = (
        Path(f"{database}.locks")
        if database and database != ":memory:"
        else Path(tempfile.gettempdir()) / "rhip-locks"
    )
    with file_lock(folder, name):
        yield


@contextmanager
def file_lock(folder: Path, name: str) -> Iterator[None]:
    """An exclusive lock on `<folder>/<name>.lock` (processes of one machine; released when one dies)."""
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    with (folder / f"{safe}.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
