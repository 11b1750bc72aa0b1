"""SQLite's WAL is checkpointed by a background thread, not by the commit that crosses 1,000 pages."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text

from rhip.db.engine import CHECKPOINT_SECONDS, WAL_PAGES, Database


def test_background_checkpoint_moves_the_wal_into_the_database(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'wal.db'}")
    try:
        with db.engine.begin() as c:
            assert c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WAL_PAGES
            c.execute(text("CREATE TABLE t (x TEXT)"))
            c.execute(text("INSERT INTO t VALUES (:x)"), [{"x": "y" * 2000} for _ in range(2500)])
        before = (tmp_path / "wal.db").stat().st_size
        assert (tmp_path / "wal.db-wal").stat().st_size > 4_000_000  # 2,500 pages: past SQLite's default
        deadline = time.monotonic() + 20 * CHECKPOINT_SECONDS
        while (tmp_path / "wal.db").stat().st_size < 4_000_000 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert before < 4_000_000 <= (tmp_path / "wal.db").stat().st_size  # copied in by the thread
    finally:
        db.dispose()
