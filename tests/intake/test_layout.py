"""Lake layout: event-year partitions (not one file per month of a decades-long register), `_month` kept,
compaction (`rhip intake compact`) merging small files without changing what is read, old month-partitioned
tables still written the old way."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from deltalake import write_deltalake

from rhip.config import Settings
from rhip.db.engine import Database, upgrade
from rhip.intake import pipeline, reading, service, store
from rhip.lake import Duck, Lake, Sql
from rhip.registry import service as registry
from tests.intake.conftest import make_row

SECRET = "layout-test-secret-0123456789-abcdefghijklmnop"
YEARS = (1985, 1996, 2003, 2012, 2024)


def _ready(tmp_path: Path) -> tuple[Settings, Database, Lake]:
    settings = Settings(data_dir=tmp_path / "var", secret_key=SECRET)
    upgrade(settings.resolved_database_url)
    db = Database.from_settings(settings)
    with db.session() as s, s.begin():
        registry.ensure_loaded(s)
    return settings, db, Lake(settings.resolved_lake_dir)


def _records(inst: str, batch: int) -> pl.DataFrame:
    """Health records (基本信息) created over four decades: 12 months of each of five years."""
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
    ds = reading.get_dataset("health_record")
    return reading.frame_of(ds, pl.DataFrame(rows).to_arrow())


def _visible(db: Database, lake: Lake) -> list[tuple[str, str]]:
    with db.session() as s:
        sql = service.visible_sql(s, "health_record")
    d = Duck(lake)
    try:
        return sorted(
            (str(r[0]), str(r[1]))
            for r in d.rows(Sql(f"SELECT record_no, _month FROM ({sql.text})", sql.params))
        )
    finally:
        d.close()


def test_year_partitions_keep_month_and_compact(tmp_path: Path, inst: str) -> None:
    settings, db, lake = _ready(tmp_path)
    for b in range(3):
        got = service.ingest(
            db, lake, institution_code=inst, submitted_by="t", frames={"health_record": _records(inst, b)}
        )
        assert got.outcome.total().accepted == 60
    dt = lake.dataset("ods_health_record")
    assert list(dt.metadata().partition_columns) == ["_year"]
    # one file per event year per batch (5 × 3), where month partitions gave 60 × 3
    assert store.file_count(lake, "ods_health_record") == len(YEARS) * 3
    seen = _visible(db, lake)
    assert len(seen) == 180
    # `_month` is still the event month, 'YYYY-MM'
    assert {m for _r, m in seen} == {f"{y}-{m:02d}" for y in YEARS for m in range(1, 13)}
    assert all(r.split("-")[1] == m[:4] and int(r.split("-")[2]) == int(m[5:]) for r, m in seen)

    env = {**os.environ, "RHIP_DATA_DIR": str(settings.data_dir), "RHIP_SECRET_KEY": SECRET}
    env.pop("RHIP_DATABASE_URL", None)
    r = subprocess.run(
        [sys.executable, "-m", "rhip.cli", "intake", "compact"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "ods_health_record" in r.stdout
    assert store.file_count(lake, "ods_health_record") == len(YEARS)
    assert store.file_count(lake, store.KEYS_TABLE) < len(YEARS) * 3
    assert _visible(db, lake) == seen
    # dedup still sees everything stored: the same records again are duplicates only
    again = service.ingest(
        db, lake, institution_code=inst, submitted_by="t", frames={"health_record": _records(inst, 0)}
    )
    assert (again.outcome.total().accepted, again.outcome.total().duplicate) == (0, 60)
    db.dispose()


def test_month_partitioned_table_keeps_its_layout(tmp_path: Path, inst: str) -> None:
    """A lake written before the year layout (partitioned by `_month`) is appended to as it is."""
    _settings, db, lake = _ready(tmp_path)
    first = service.ingest(
        db, lake, institution_code=inst, submitted_by="t", frames={"health_record": _records(inst, 0)}
    )
    data = pl.from_arrow(lake.dataset("ods_health_record").to_pyarrow_table())
    assert isinstance(data, pl.DataFrame)
    old = lake.root / "old"
    write_deltalake(str(old), data.drop("_year").to_arrow(), partition_by=["_month"])
    (lake.root / "ods_health_record").rename(lake.root / "gone")
    old.rename(lake.root / "ods_health_record")
    store._handles.clear()
    got = service.ingest(
        db, lake, institution_code=inst, submitted_by="t", frames={"health_record": _records(inst, 1)}
    )
    assert got.outcome.total().accepted == 60 and first.batch_id != got.batch_id
    dt = lake.dataset("ods_health_record")
    assert list(dt.metadata().partition_columns) == ["_month"]
    assert "_year" not in {f.name for f in dt.schema().fields}
    assert len(_visible(db, lake)) == 120
    db.dispose()


@pytest.mark.parametrize("n", [1, 3])
def test_compaction_keeps_pending_rows_removable(tmp_path: Path, inst: str, n: int) -> None:
    """Rows of a batch whose receipt never committed can be removed after their files were merged."""
    _settings, db, lake = _ready(tmp_path)
    for b in range(n):
        service.ingest(
            db, lake, institution_code=inst, submitted_by="t", frames={"health_record": _records(inst, b)}
        )
    frame = _records(inst, 99)
    out = pipeline.process(
        lake,
        {"health_record": frame},
        institution_code=inst,
        batch_id="Bpending0000000001",
        now_utc=datetime.now(UTC),
    )
    assert out.tables["health_record"].accepted == 60
    assert lake.count("ods_health_record") == 60 * (n + 1)
    store.compact(lake)
    removed = store.remove_batch(lake, batch_id="Bpending0000000001", tables=out.lake_tables)
    assert removed == 120  # 60 records and their 60 index rows
    assert lake.count("ods_health_record") == 60 * n
    db.dispose()


def test_bad_later_file_leaves_nothing_of_the_batch(tmp_path: Path, inst: str) -> None:
    """Tables are committed while later files are still read: a malformed later file aborts them all."""
    from rhip.errors import Invalid
    from tests.intake.conftest import csv_text

    _settings, db, lake = _ready(tmp_path)
    good = tmp_path / "patient_info.csv"
    good.write_text(
        csv_text([make_row("patient_info", org_code=inst, patient_id=f"K{i}") for i in range(50)]),
        encoding="utf-8",
    )
    bad = tmp_path / "admission.csv"
    rows = [make_row("admission", org_code=inst, admission_no=f"A{i}", patient_id=f"K{i}") for i in range(50)]
    text = csv_text(rows).splitlines()
    text[30] = text[30] + ",extra,columns"  # row 30 has too many fields
    bad.write_text("\n".join(text) + "\n", encoding="utf-8")
    ups = [reading.Upload(path=good, filename=good.name), reading.Upload(path=bad, filename=bad.name)]
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(Invalid) as err:
        service.ingest(db, lake, institution_code=inst, submitted_by="t", uploads=ups, workdir=work)
    assert err.value.code == "malformed-csv"
    # patient_info (processed first, its commit started before admission.csv was parsed) is gone again
    assert lake.exists("ods_patient_info") and lake.count("ods_patient_info") == 0
    assert not lake.exists("ods_admission") or lake.count("ods_admission") == 0
    assert not lake.exists(store.KEYS_TABLE) or lake.count(store.KEYS_TABLE) == 0
    # and the same files, the bad one fixed, go in whole
    bad.write_text(csv_text(rows), encoding="utf-8")
    got = service.ingest(db, lake, institution_code=inst, submitted_by="t", uploads=ups, workdir=work)
    assert got.outcome.total().accepted == 100
    db.dispose()
