"""Intake's rollups rebuilt from the lake on one process and on a two-process cluster: the same rows as
the commit path kept, replaced in one transaction; a worker killed mid-job changes nothing in the result; a
failing job leaves the old rollups whole."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.intake import clustercmd, rebuild
from rhip.lake.cluster import ClusterError, Job
from rhip.lake.store import Lake
from tests.scale.conftest import MONTH, rollups

_ROLLUPS = ("intake_activity", "intake_realtime_days", "intake_people_months")


def _sorted(r: rebuild.Rebuilt) -> tuple[list[Any], ...]:
    def key(frame: pl.DataFrame) -> list[Any]:
        return sorted(
            tuple(sorted((k, round(v, 2) if isinstance(v, float) else v) for k, v in d.items()))
            for d in frame.to_dicts()
        )

    return key(r.activity), key(r.days), key(r.people)


def test_rebuild_gives_the_commit_paths_rollups(lake: Lake, db: Database, local_cluster: Any) -> None:
    before = rollups(db)
    assert before["intake_activity"] and before["intake_realtime_days"] and before["intake_people_first"]
    here = rebuild.compute(Job(None), lake=lake, months=[MONTH], pending=[])
    there = rebuild.compute(Job(local_cluster), lake=lake, months=[MONTH], pending=[])
    assert _sorted(here) == _sorted(there)
    with db.session() as s, s.begin():
        assert rebuild.mismatches(s, there) == dict.fromkeys(_ROLLUPS, 0)
    statements: list[tuple[str, bool]] = []

    def seen(conn: Any, cursor: Any, sql: str, params: Any, context: Any, executemany: bool) -> None:
        statements.append((sql, executemany))

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        with db.session() as s, s.begin():
            rebuild.replace(s, there)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert rollups(db) == before
    # the rows went through the staging tables (COPY / the driver's executemany, below SQLAlchemy): every
    # INSERT into a rollup table SQLAlchemy sent is one INSERT ... SELECT, none a client-side row list
    inserts = [(q, many) for q, many in statements if q.lstrip().upper().startswith("INSERT INTO INTAKE_")]
    assert {q.split()[2] for q, _ in inserts} >= {"intake_activity", "intake_people_months"}
    assert all(" SELECT " in q and not many for q, many in inserts), inserts
    # every month at once, from an emptied rollup
    everything = rebuild.compute(Job(local_cluster), lake=lake, months=None, pending=[])
    with db.session() as s, s.begin():
        rebuild.replace(s, rebuild.Rebuilt(months=None, tables=[]))
    assert rollups(db)["intake_activity"] == []
    with db.session() as s, s.begin():
        rebuild.replace(s, everything)
    assert rollups(db) == before


def test_mismatches_count_the_rows_that_differ(lake: Lake, db: Database) -> None:
    got = rebuild.compute(Job(None), lake=lake, months=[MONTH], pending=[])
    person = got.people.row(0, named=True)
    changed = got.people.with_columns(
        pl.when(pl.col("person") == person["person"]).then(pl.col("n") + 1).otherwise(pl.col("n")).alias("n")
    )
    with db.session() as s, s.begin():
        diff = rebuild.mismatches(s, rebuild.Rebuilt([MONTH], got.tables, got.activity, got.days, changed))
    n = changed.filter(pl.col("person") == person["person"]).height
    # each changed row is missing on one side and extra on the other
    assert diff == {"intake_activity": 0, "intake_realtime_days": 0, "intake_people_months": 2 * n}


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
    good.people = pl.concat([good.people, good.people.head(1)])  # the same primary key twice
    with pytest.raises(IntegrityError), db.session() as s, s.begin():
        rebuild.replace(s, good)
    assert rollups(db) == before


def test_demo_step_rebuilds_and_checks_the_month(
    settings: Settings, lake: Lake, db: Database, synth_month: Path, local_cluster: Any
) -> None:
    from rich.console import Console

    before = rollups(db)
    on_cluster = settings.model_copy(update={"dask_scheduler": local_cluster.scheduler.address})
    for s, where in ((settings, "本进程"), (on_cluster, "集群")):
        rows = clustercmd.run(settings=s, synth_dir=synth_month, console=Console(quiet=True))
        assert rows[0][0] == "数据湖作业" and where in rows[0][1], rows
        assert "与提交时维护的汇总表一致" in rows[0][1], rows
    assert rollups(db) == before  # a check: nothing replaced
