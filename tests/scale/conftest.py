"""Scale tests: a tiny synthetic month ingested through intake into a private lake and database, a
two-process local Dask cluster shared by the whole session, a real `dask scheduler` + `dask worker`
pair started as subprocesses (the "cluster" case), and an S3 server (moto's, a process of its own) with
the same month ingested into a lake on it."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.lake.cluster import WORKER_ENV
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


def ingest(db: Database, lake: Lake, synth_dir: Path, work: Path, units: tuple[str, ...] = UNITS) -> None:
    """The units' files through intake as the demo sends them: the month, then the corrections."""
    from rhip.intake import reading, service as intake

    manifest = json.loads((synth_dir / "manifest.json").read_text(encoding="utf-8"))
    files: list[dict[str, Any]] = manifest.get("uploads", manifest.get("files", []))
    for org in units:
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
    env = {**os.environ, **WORKER_ENV}
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


BUCKET = "rhip-lake"
S3_UNIT = "H029"  # the unit ingested into the S3 lake


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A local server speaking the S3 protocol (moto's, in a process of its own) that checks signatures:
    an IAM user with an access key allowed s3:*, and the lake's bucket. The endpoint and the key."""
    import boto3

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "server.log"
    # the first requests (the IAM user, its policy and key) are let in unsigned; every later one must be
    # signed with a key the server knows, so a wrong key is refused as a real store refuses it
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "4"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120  # moto imports slowly on a loaded machine
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the S3 server did not start: see {log}") from None
                time.sleep(0.1)
        iam = boto3.client(
            "iam",
            endpoint_url=url,
            aws_access_key_id="boot",
            aws_secret_access_key="boot",
            region_name="us-east-1",
        )
        iam.create_user(UserName="rhip")
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="rhip", PolicyName="lake", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="rhip")["AccessKey"]
        s3 = boto3.client(
            "s3",
            endpoint_url=url,
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket=BUCKET)
        yield {"endpoint": url, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def s3_settings(base: Settings, server: dict[str, str], **over: Any) -> Settings:
    """`base` with its lake on the S3 server (`over` changes the bucket, prefix or keys)."""
    fields: dict[str, Any] = {
        "data_dir": base.data_dir,
        "database_url": base.database_url,
        "secret_key": base.secret_key,
        "lake_uri": f"s3://{BUCKET}/lake",
        "lake_s3_endpoint": server["endpoint"],
        "lake_s3_access_key_id": server["key"],
        "lake_s3_secret_access_key": server["secret"],
        "lake_s3_allow_http": True,
    }
    return Settings(**{**fields, **over})


@pytest.fixture(scope="package")
def s3_env(
    backend: str, tmp_path_factory: pytest.TempPathFactory, s3_server: dict[str, str]
) -> Iterator[Settings]:
    """Settings of a database of its own (the rollups must be only this lake's) and a lake on S3."""
    data_dir = tmp_path_factory.mktemp(f"rhip-s3-{backend}")
    url = create_pg_database() if backend == "postgres" else None
    base = Settings(data_dir=data_dir, database_url=url, secret_key=SECRET)
    yield s3_settings(base, s3_server, lake_uri=f"s3://{BUCKET}/{backend}")
    if url:
        drop_pg_database(url)


@pytest.fixture(scope="package")
def s3_db(s3_env: Settings) -> Iterator[Database]:
    """The S3 case's migrated database with the registry loaded."""
    from rhip.registry import service as registry

    registry.prepare(s3_env.resolved_database_url)
    d = Database.from_settings(s3_env)
    yield d
    d.dispose()


@pytest.fixture(scope="package")
def s3_lake(s3_env: Settings, s3_db: Database, synth_month: Path) -> Lake:
    """One unit's month ingested through intake into the lake on S3 (every request goes through the S3
    server, which makes intake several times slower than on a folder: one unit is enough to compare)."""
    lake = Lake.from_settings(s3_env)
    work = s3_env.data_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    ingest(s3_db, lake, synth_month, work, units=(S3_UNIT,))
    return lake
