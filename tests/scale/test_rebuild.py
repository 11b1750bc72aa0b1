"""Intake's rollups rebuilt from the lake on one process and on a two-process cluster: the same rows as
the commit path kept, replaced in one transaction; a worker killed mid-job changes nothing in the result; a
failing job leaves the old rollups whole."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.intake import clustercmd, rebuild
from rhip.lake.cluster import ClusterError, Job
from rhip.lake.store import Lake
from tests.scale.conftest import MONTH, rollups


def _sorted(r: rebuild.Rebuilt) -> tuple[list[Any], ...]:
    def key(rows: list[dict[str, Any]]) -> list[Any]:
        return sorted(
            tuple(sorted((k, round(v, 2) if isinstance(v, float) else v) for k, v in d.items())) for d in rows
        )

    return key(r.activity), key(r.days), key(r.people)


def test_rebuild_gives_the_commit_paths_rollups(lake: Lake, db: Database, local_cluster: Any) -> None:
    before = rollups(db)
    assert before["intake_activity"] and before["intake_realtime_days"] and before["intake_people_first"]
    here = rebuild.compute(Job(None), lake=lake, months=[MONTH], pending=[])
    there = rebuild.compute(Job(local_cluster), lake=lake, months=[MONTH], pending=[])
    assert _sorted(here) == _sorted(there)
    with db.session() as s, s.begin():
        rebuild.replace(s, there)
    assert rollups(db) == before
    # every month at once, from an emptied rollup
    everything = rebuild.compute(Job(local_cluster), lake=lake, months=None, pending=[])
    with db.session() as s, s.begin():
        rebuild.replace(s, rebuild.Rebuilt(months=None, tables=[]))
    assert rollups(db)["intake_activity"] == []
    with db.session() as s, s.begin():
        rebuild.replace(s, everything)
    assert rollups(db) == before


def test_worker_killed_mid_job_still_gives_the_same_rows(
    lake: Lake, db: Database, local_cluster: Any
) -> None:
    expected = _sorted(rebuild.compute(Job(None), lake=lake, months=None, pending=[]))
    pids = local_cluster.run(os.getpid)
    victim = sorted(pids.values())[0]
    killed: list[int] = []

    def kill_once(done: int, total: int) -> None:
        # after the first task: the dead worker's finished results are lost too and must be recomputed
        if not killed:
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    got = rebuild.compute(Job(local_cluster, kill_once), lake=lake, months=None, pending=[])
    assert killed == [victim]
    assert _sorted(got) == expected
    local_cluster.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next tests
    assert victim not in local_cluster.run(os.getpid).values()


def test_failing_job_leaves_rollups_whole(
    settings: Settings, lake: Lake, db: Database, local_cluster: Any, tmp_path: Path
) -> None:
    before = rollups(db)
    broken = tmp_path / "lake"
    shutil.copytree(lake.root, broken)
    from deltalake import DeltaTable

    for uri in DeltaTable(str(broken / "ods_outpatient_visit")).file_uris():
        Path(uri.removeprefix("file://")).write_bytes(b"PAR1 not a parquet file")
    bad = Settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        lake_dir=broken,
        secret_key=settings.secret_key,
    )
    with pytest.raises(ClusterError, match="集群任务失败"):
        clustercmd.rebuild_rollups(bad, month=MONTH, scheduler=local_cluster.scheduler.address)
    assert rollups(db) == before
    # and a replace failing in its last statement rolls back the deletes before it
    good = rebuild.compute(Job(None), lake=lake, months=[MONTH], pending=[])
    good.people.append(dict(good.people[0]))  # the same primary key twice
    with pytest.raises(IntegrityError), db.session() as s, s.begin():
        rebuild.replace(s, good)
    assert rollups(db) == before
