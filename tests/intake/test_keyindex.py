"""The key index's file list kept in memory (`keyindex._listing`) selects exactly the files deltalake's own
pruning selects: after new batches (brought forward from their commits' JSON), after a compaction (remove
and add actions) and when listed afresh."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from deltalake import DeltaTable

from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.intake import keyindex, reading, service, store
from rhip.lake import Lake
from rhip.registry import service as registry
from tests.intake.conftest import make_row

SECRET = "keyindex-test-secret-0123456789-abcdefghijklmn"
YEARS = (1985, 1996, 2003)


def _records(inst: str, batch: int) -> pl.DataFrame:
    rows = [
        make_row(
            "health_record",
            org_code=inst,
            record_no=f"R{batch}-{y}-{m}",
            birth_date="1950-01-01",
            created_at=f"{y}-{m:02d}-15",
        )
        for y in YEARS
        for m in range(1, 13)
    ]
    return reading.frame_of(reading.get_dataset("health_record"), pl.DataFrame(rows).to_arrow())


def _filters(inst: str, inst2: str) -> list[list[tuple[str, str, Any]]]:
    mine = [("table", "=", "health_record"), ("org_code", "=", inst)]
    return [
        mine,
        [("table", "=", "health_record"), ("org_code", "=", inst2)],
        [*mine, ("year", "in", ["1985", "2003"])],
        [*mine, ("key", ">=", "R1-1996-1"), ("key", "<=", "R1-1996-9")],
        [*mine, ("year", "in", ["1996"]), ("key", ">=", "R0-1996-10"), ("key", "<=", "R0-1996-12")],
        [("table", "=", "patient_info"), ("org_code", "=", inst)],
    ]


def _same_as_deltalake(lake: Lake, inst: str, inst2: str) -> list[int]:
    index = keyindex.open_index(lake)
    dt = DeltaTable(str(lake.path(store.KEYS_TABLE)))
    sizes = []
    for f in _filters(inst, inst2):
        want = sorted(u.removeprefix("file://") for u in dt.file_uris(file_pruning_predicate=f))
        assert sorted(index.files(f)) == want, f
        sizes.append(len(want))
    return sizes


def test_listing_selects_what_deltalake_selects(tmp_path: Path, inst: str, inst2: str) -> None:
    settings = Settings(data_dir=tmp_path / "var", secret_key=SECRET)
    upgrade(settings.resolved_database_url)
    db = Database.from_settings(settings)
    with db.session() as s, s.begin():
        registry.ensure_loaded(s)
    lake = Lake(settings.resolved_lake_dir)
    for b in range(3):
        for org in (inst, inst2):
            service.ingest(
                db, lake, institution_code=org, submitted_by="t", frames={"health_record": _records(org, b)}
            )
            sizes = _same_as_deltalake(lake, inst, inst2)
    # the key ranges prune: one batch's file of one year, out of 3 batches x 3 years
    assert sizes[:4] == [9, 9, 6, 1]
    assert store.compact(lake, tables=[store.KEYS_TABLE], min_files=2)  # removes and adds files
    assert _same_as_deltalake(lake, inst, inst2)[:2] == [3, 3]
    keyindex._LISTED.clear()  # listed afresh from deltalake's add actions
    _same_as_deltalake(lake, inst, inst2)
    # dedup reads the same: everything sent again is a duplicate
    again = service.ingest(
        db, lake, institution_code=inst, submitted_by="t", frames={"health_record": _records(inst, 1)}
    )
    assert (again.outcome.total().accepted, again.outcome.total().duplicate) == (0, 36)
    db.dispose()
