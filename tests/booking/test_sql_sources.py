"""The PL/pgSQL functions are source files (src/rhip/booking/sql/); each migration that creates or changes
one runs its own snapshot (migrations/versions/sql/NNNN_name.sql), so a migration's effect never changes
after it is written and no migration patches another's text."""

from __future__ import annotations

import re
from pathlib import Path

import rhip.booking
import rhip.db

SOURCES = Path(rhip.booking.__file__).with_name("sql")
VERSIONS = Path(rhip.db.__file__).with_name("migrations") / "versions"
SNAPSHOTS = VERSIONS / "sql"


def _snapshots(function: str) -> list[Path]:
    return sorted(p for p in SNAPSHOTS.glob("*.sql") if p.name.split("_", 1)[1] == f"{function}.sql")


def test_each_source_is_its_latest_snapshot() -> None:
    sources = sorted(SOURCES.glob("*.sql"))
    assert {p.stem for p in sources} >= {"rhip_book", "rhip_book_many", "rhip_book_locked"}
    for source in sources:
        snaps = _snapshots(source.stem)
        assert snaps, f"no migration snapshots {source.name}"
        assert snaps[-1].read_text(encoding="utf-8") == source.read_text(encoding="utf-8"), (
            f"{source.name} changed after {snaps[-1].name}: add a migration that snapshots it"
        )
        assert re.search(rf"FUNCTION {source.stem}\(", source.read_text(encoding="utf-8"))


def test_every_snapshot_is_run_by_its_own_migration_and_none_is_patched() -> None:
    migrations = {p.name[:4]: p.read_text(encoding="utf-8") for p in VERSIONS.glob("[0-9]*.py")}
    for snap in SNAPSHOTS.glob("*.sql"):
        assert f'"{snap.name}"' in migrations[snap.name[:4]], (
            f"{snap.name} is not read by migration {snap.name[:4]}"
        )
    for name, text in migrations.items():
        assert ".replace(" not in text and "exec_module" not in text, (
            f"migration {name} patches another's SQL"
        )
