"""Scale tests: a tiny synthetic month ingested through intake into a private lake and database, a
two-process local Dask cluster shared by the whole session, and a real `dask scheduler` + `dask worker`
pair started as subprocesses (the "cluster" case)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.lake.store import Lake
from tests.conftest import SECRET, create_pg_database, drop_pg_database

MONTH = "2025-03"
UNITS = ("D320106", "H005", "H029")  # 鼓楼区 and two hospitals
BIN = Path(sys.executable).parent


@pytest.fixture(scope="package")
def synth_month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic city's 2025-03 at scale 0.001, three units."""
    from rhip.synth import service as synth

    out = tmp_path_factory.mktemp("scale-synth")
    synth.generate(
        month=MONTH, scale=0.001, seed=11, out=out, gbk_share=0.1, console=None, institutions=UNITS
    )
    return out


@pytest.fixture(scope="package")
def settings(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The scale tests' own database and data folder (the rollups must be only this lake's), per backend."""
    data_dir = tmp_path_factory.mktemp(f"rhip-scale-{backend}")
    url = create_pg_database() if backend == "postgres" else None
    yield Settings(data_dir=data_dir, database_url=url, secret_key=SECRET)
    if url:
        drop_pg_database(url)


@pytest.fixture(scope="package")
def db(settings: Settings) -> Iterator[Database]:
    """The migrated database with the registry loaded."""
    from rhip.registry import service as registry

    registry.prepare(settings.resolved_database_url)
    d = Database.from_settings(settings)
    yield d
    d.dispose()


def ingest(db: Database, lake: Lake, synth_dir: Path, work: Path) -> None:
    """Every unit's files through intake as the demo sends them: the month, then the corrections."""
    from rhip.intake import reading, service as intake

    manifest = json.loads((synth_dir / "manifest.json").read_text(encoding="utf-8"))
    files: list[dict[str, Any]] = manifest.get("uploads", manifest.get("files", []))
    for org in UNITS:
        mine = [
            f for f in files if str(f.get("path", "")).startswith("uploads/") and f.get("org_code") == org
        ]
        main = [f for f in mine if not re.search(r"_\d{8}\.[a-z]+$", f["path"])]
        for group in (main, [f for f in mine if f not in main]):
            if group:
                ups = [
                    reading.Upload(
                        path=synth_dir / f["path"],
                        filename=Path(f["path"]).name,
                        table=f.get("table"),
                        encoding=f.get("encoding"),
                    )
                    for f in group
                ]
                intake.ingest(
                    db, lake, institution_code=org, submitted_by="scale-test", uploads=ups, workdir=work
                )


@pytest.fixture(scope="package")
def lake(settings: Settings, db: Database, synth_month: Path) -> Lake:
    """The three units' month in the package's lake (the settings' lake folder, as the CLI finds it)."""
    lake = Lake(settings.resolved_lake_dir)
    work = settings.data_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    ingest(db, lake, synth_month, work)
    return lake


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[Any]:
    """One two-process local cluster (a thread each) for the whole session."""
    from rhip.lake.cluster import local_client

    with local_client(2) as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def scheduler_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `dask scheduler` and one `dask worker` process, as on separate machines; the address."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("dask-logs")
    env = {**os.environ, "RHIP_TASK_THREADS": "1", "POLARS_MAX_THREADS": "1"}
    dask = shutil.which("dask", path=str(BIN)) or str(BIN / "dask")
    procs = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=(logs / "scheduler.log").open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
        )
    ]
    try:
        procs.append(
            subprocess.Popen(
                [dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
                stdout=(logs / "worker.log").open("wb"),
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
        with Client(address, timeout="30s") as c:
            c.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


def rollups(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every non-zero row of intake's rollup tables, sorted (money to the fen)."""
    from sqlalchemy import text

    out: dict[str, list[tuple[Any, ...]]] = {}
    with db.session() as s:
        for table, cols in (
            ("intake_activity", "table_name, month, institution_code, n, round(amount * 100), n_realtime"),
            ("intake_realtime_days", "table_name, month, institution_code, days"),
            ("intake_people_months", "table_name, institution_code, person, month, n"),
            ("intake_people_first", "table_name, month, institution_code, n"),
        ):
            rows = s.execute(text(f"SELECT {cols} FROM {table}")).all()
            out[table] = sorted(tuple(r) for r in rows if any(v not in (0, 0.0) for v in r[3:]))
    return out
