"""Settings, migrations, the lake and DuckDB adapter, logging, the layer contracts."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import inspect

from rhip import clock, logging as rlog
from rhip.config import Settings
from rhip.db.engine import current_revision, make_engine, upgrade
from rhip.lake import Duck, Lake, Sql
from rhip.lake.sql import ident

REPO = Path(__file__).resolve().parents[2]


def test_settings_defaults_are_embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RHIP_DATABASE_URL", raising=False)
    s = Settings(data_dir=tmp_path)
    assert s.resolved_database_url == f"sqlite:///{(tmp_path / 'rhip.db').resolve()}"
    assert s.resolved_lake_dir == (tmp_path / "lake").resolve()
    key = s.resolved_secret_key
    assert len(key) > 40 and Settings(data_dir=tmp_path).resolved_secret_key == key
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RHIP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RHIP_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("RHIP_TOKEN_TTL_MINUTES", "5")
    s = Settings()
    assert (
        s.data_dir == tmp_path
        and s.resolved_database_url.startswith("postgresql")
        and s.token_ttl_minutes == 5
    )
    assert not s.is_sqlite


def test_migrations_idempotent(settings: Settings) -> None:
    url = settings.resolved_database_url
    upgrade(url)
    upgrade(url)
    head = current_revision(url)
    assert head is not None
    engine = make_engine(url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"users", "api_keys", "audit_events", "institutions", "districts"} <= tables


def test_migrations_match_the_models(settings: Settings) -> None:
    """Every domain's migrations build exactly the tables its models declare (types included)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from rhip.db.base import Base
    from rhip.db.models_registry import import_all_models

    import_all_models()
    assert {"institutions", "booking_slots", "intake_batches", "quality_record_usage"} <= set(
        Base.metadata.tables
    )
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diffs == []


def test_lake_write_and_duckdb_query(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    assert lake.tables() == [] and lake.count("visits") == 0
    batch = pa.table(
        {"org_code": ["H001", "H001", "H002"], "month": ["2025-03"] * 3, "fee": [1.5, 2.0, 3.25]}
    )
    v0 = lake.write("visits", batch, partition_by=["month"])
    v1 = lake.write("visits", batch.slice(0, 1), partition_by=["month"])
    assert (v0, v1) == (0, 1)
    assert lake.tables() == ["visits"] and lake.count("visits") == 4
    duck = Duck(lake)
    rows = duck.rows(
        Sql("SELECT org_code, sum(fee) FROM visits WHERE org_code = $org GROUP BY 1", {"org": "H001"})
    )
    assert rows == [("H001", 5.0)]
    lake.write("visits", batch, partition_by=["month"])
    assert duck.count("visits") == 7, "the adapter must see new versions"
    duck.close()


def test_sql_identifiers_are_checked() -> None:
    assert ident("visits") == '"visits"'
    for bad in ["visits; DROP TABLE x", "a b", "x'--", ""]:
        with pytest.raises(ValueError):
            ident(bad)
    with pytest.raises(ValueError):
        Lake(Path("/tmp")).path("../etc")


def test_json_logging(capsys: pytest.CaptureFixture[str]) -> None:
    rlog.configure("INFO", as_json=True)
    rlog.get("rhip.test").info("上传完成", extra={"batch": 7})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "上传完成" and record["batch"] == 7 and record["level"] == "info"
    rlog.configure("WARNING", as_json=False)
    logging.getLogger().setLevel("INFO")


def test_clock_freezes_only_inside_block() -> None:
    at = datetime(2025, 3, 31, 16, 0, tzinfo=UTC)
    with clock.frozen(at):
        assert clock.now() == at
        assert clock.local_now().hour == 0 and clock.local_now().day == 1
    assert clock.now() != at
    with pytest.raises(ValueError), clock.frozen(datetime(2025, 1, 1)):
        pass


def test_layer_contracts_hold() -> None:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run([exe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 1 kept, 0 broken" in result.stdout
