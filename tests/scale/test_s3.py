"""The lake on S3-compatible object storage, against a local server speaking the S3 protocol (moto's, with
signatures checked): intake into it, the recount and the rollup rebuild on it (in this process and on the
two-process cluster) give the local folder's figures; concurrent writers lose no commit; bad keys and a
missing bucket are a clear line on the CLI and problem+json on the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.db.locks import db_lock
from rhip.intake import rebuild
from rhip.lake.cluster import Job
from rhip.lake.store import Lake, LakeUnavailable
from rhip.quality.figures import month_figures
from rhip.quality.verify import differences
from tests.conftest import SECRET
from tests.scale.conftest import BUCKET, MONTH, S3_UNIT, rollups, s3_settings

# the package's fixtures ingest a month into a folder and a unit into the S3 server: minutes on a loaded
# machine, counted in the first test's time
pytestmark = pytest.mark.timeout(1800)


def _unit(rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """The rollup rows of the S3 lake's unit."""
    at = {"intake_people_months": 1}  # the institution code's column (the third in the others)
    return {t: [r for r in rs if r[at.get(t, 2)] == S3_UNIT] for t, rs in rows.items()}


def _figures(db: Database, lake: Lake, job: Job | None = None) -> list[tuple[Any, ...]]:
    with db.session() as s:
        fig = month_figures(s, lake=lake, month=MONTH, recount=job if job is not None else True)
    return [
        (u.code, u.visits, round(u.visit_revenue * 100), u.discharges, u.days)
        for u in fig.units
        if u.code == S3_UNIT
    ]


def test_intake_recount_and_rebuild_on_s3_match_the_local_lake(
    s3_lake: Lake, s3_db: Database, lake: Lake, db: Database, local_cluster: Any
) -> None:
    assert s3_lake.remote and "ods_outpatient_visit" in s3_lake.tables()
    local = _unit(rollups(db))
    assert local["intake_activity"] and local["intake_realtime_days"]
    # intake into S3 kept the same rollups as intake into a folder
    assert rollups(s3_db) == local
    # the month's figures recounted from the S3 lake: here (DuckDB over deltalake's datasets) and on the
    # cluster's workers (the lake and its options travel with the tasks)
    expected = _figures(db, lake)
    assert _figures(s3_db, s3_lake) == expected
    assert _figures(s3_db, s3_lake, Job(local_cluster)) == expected
    with s3_db.session() as s:
        assert differences(s, lake=s3_lake, month=MONTH, job=Job(local_cluster)) == []
    # the rollups rebuilt from the S3 lake on the cluster and swapped in: the local folder's rows
    got = rebuild.compute(Job(local_cluster), lake=s3_lake, months=None, pending=[])
    with s3_db.session() as s, s.begin():
        rebuild.replace(s, rebuild.Rebuilt(months=None, tables=[]))
    assert rollups(s3_db)["intake_activity"] == []
    with s3_db.session() as s, s.begin():
        rebuild.replace(s, got)
    assert rollups(s3_db) == local


_WRITER = """
import json, os, sys
import pyarrow as pa
from rhip.lake.store import Lake
lake = Lake(os.environ["LAKE_URI"], json.loads(os.environ["LAKE_OPTIONS"]))
who = sys.argv[1]
for i in range(int(sys.argv[2])):
    lake.write("race", pa.table({"who": [who], "i": [i]}))
"""


def test_two_writers_to_one_table_lose_no_commit(s3_env: Settings) -> None:
    lake = Lake(f"s3://{BUCKET}/race-{os.getpid()}-{time.time_ns()}", s3_env.lake_storage_options)
    assert lake.storage_options["aws_conditional_put"] == "etag"
    lake.write("race", pa.table({"who": ["start"], "i": [0]}))
    n = 6
    env = {**os.environ, "LAKE_URI": lake.uri, "LAKE_OPTIONS": json.dumps(lake.storage_options)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, who, str(n)], env=env, stderr=subprocess.PIPE)
        for who in ("a", "b")
    ]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()[-2000:]
    dt = lake.dataset("race")
    assert dt.version() == 2 * n  # every commit has a version of its own
    got = sorted(zip(*dt.to_pyarrow_table().to_pydict().values(), strict=True))
    assert got == sorted([("start", 0)] + [(w, i) for w in ("a", "b") for i in range(n)])


def test_db_lock_excludes_other_holders(db: Database) -> None:
    order: list[str] = []
    held = threading.Event()

    def other() -> None:
        held.wait(10)
        with db_lock(db.engine, "intake:TEST"):
            order.append("other")

    t = threading.Thread(target=other)
    t.start()
    with db_lock(db.engine, "intake:TEST"):
        held.set()
        time.sleep(0.5)  # the other thread is waiting for the lock meanwhile
        order.append("first")
    t.join(10)
    assert order == ["first", "other"]


@pytest.mark.parametrize(
    ("over", "cause"),
    [
        ({"lake_s3_secret_access_key": "not-the-secret-0123456789"}, "访问密钥无效或无权访问"),
        ({"lake_s3_access_key_id": "AKIANOTAKNOWNKEY0000"}, "访问密钥无效或无权访问"),
        ({"lake_uri": "s3://no-such-bucket/lake"}, "存储桶不存在"),
    ],
)
def test_bad_keys_and_missing_bucket_are_clear(
    s3_env: Settings,
    s3_lake: Lake,
    s3_server: dict[str, str],
    synth_month: Path,
    over: dict[str, str],
    cause: str,
) -> None:
    from typer.testing import CliRunner

    from rhip.cli import app

    bad = s3_settings(s3_env, s3_server, **{"lake_uri": s3_env.lake_uri, **over})
    with pytest.raises(LakeUnavailable, match=cause) as info:
        Lake.from_settings(bad).tables()
    assert s3_server["secret"] not in str(info.value)
    env = {
        "RHIP_DATA_DIR": str(bad.data_dir),
        "RHIP_SECRET_KEY": SECRET,
        "RHIP_LAKE_URI": str(bad.lake_uri),
        "RHIP_LAKE_S3_ENDPOINT": s3_server["endpoint"],
        "RHIP_LAKE_S3_ACCESS_KEY_ID": over.get("lake_s3_access_key_id", s3_server["key"]),
        "RHIP_LAKE_S3_SECRET_ACCESS_KEY": over.get("lake_s3_secret_access_key", s3_server["secret"]),
        "RHIP_LAKE_S3_ALLOW_HTTP": "true",
        "COLUMNS": "200",
    }
    if bad.database_url:
        env["RHIP_DATABASE_URL"] = bad.database_url
    for args in (["quality", "recount", "--month", MONTH], ["intake", "rebuild-rollups", "--month", MONTH]):
        run = CliRunner().invoke(app, args, env=env)
        assert run.exit_code == 2, (args, run.output, run.exception)
        assert "数据湖" in run.output and cause in run.output, run.output
        assert "Traceback" not in run.output and s3_server["secret"] not in run.output

    from fastapi.testclient import TestClient

    from rhip.security.service import issue_token
    from rhip.web.app import create_app

    upload = synth_month / "uploads" / "H005" / "outpatient_visit.csv"
    token = issue_token(SECRET, subject="s3-test", role="uploader", institution_code="H005")
    with TestClient(create_app(bad), raise_server_exceptions=False) as c:
        r = c.post(
            "/api/v1/intake/batches",
            params={"filename": upload.name, "table": "outpatient_visit"},
            content=upload.read_bytes(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
        )
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == "lake-unavailable" and cause in problem["detail"]
    assert s3_server["secret"] not in r.text
