"""The month's figures recounted on one process, a two-process local cluster and a scheduler + worker
pair: the same counts, and the same figures as intake's rollups."""

from __future__ import annotations

from typing import Any

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.lake.cluster import Job
from rhip.lake.store import Lake
from rhip.quality import figures
from rhip.quality.verify import differences
from tests.scale.conftest import MONTH


def _counts(db: Database, lake: Lake, job: Job | bool) -> Any:
    with db.session() as s, s.begin():
        fig = figures.month_figures(s, lake=lake, month=MONTH, recount=job)
        hist = figures.visit_history(s, lake=lake, month=MONTH, months=13, recount=job)
    return [(u.code, u.visits, round(u.visit_revenue * 100), u.discharges, u.days) for u in fig.units], hist


def test_same_counts_in_process_local_cluster_and_scheduler(
    lake: Lake, db: Database, local_cluster: Any, scheduler_pair: str
) -> None:
    from distributed import Client

    one = _counts(db, lake, True)
    assert sum(v for _c, v, *_ in one[0]) > 0  # the month has visits to count
    job1 = Job(None)
    assert _counts(db, lake, job1) == one
    assert job1.total > 1  # the in-process job ran the per-range tasks too
    two = Job(local_cluster)
    assert two.workers == 2
    assert _counts(db, lake, two) == one
    with Client(scheduler_pair) as c:
        assert _counts(db, lake, Job(c)) == one


def test_recount_on_two_workers_agrees_with_rollups(
    settings: Settings, lake: Lake, db: Database, local_cluster: Any
) -> None:
    from rich.console import Console

    from rhip.quality.commands import recount_job

    # `--scheduler` on the session's two-process cluster (`--workers 2` starts the same kind of cluster)
    address = local_cluster.scheduler.address
    got = recount_job(settings, db, months_=[MONTH], scheduler=address, show=Console(quiet=True))
    totals, diff = got[MONTH]
    assert diff == []
    with db.session() as s, s.begin():
        fig = figures.month_figures(s, lake=lake, month=MONTH)
        assert differences(s, lake=lake, month=MONTH) == []
    assert totals[0] == sum(u.visits for u in fig.units) > 0
    assert totals[2] == sum(u.discharges for u in fig.units) > 0


def _env(settings: Settings) -> dict[str, str]:
    env = {
        "RHIP_DATA_DIR": str(settings.data_dir),
        "RHIP_SECRET_KEY": str(settings.secret_key),
        "COLUMNS": "200",
    }
    if settings.database_url:
        env["RHIP_DATABASE_URL"] = settings.database_url
    return env


def test_cli_recount_and_rebuild_on_the_cluster(settings: Settings, lake: Lake, local_cluster: Any) -> None:
    from typer.testing import CliRunner

    from rhip.cli import app

    address = local_cluster.scheduler.address
    run = CliRunner().invoke(
        app, ["quality", "recount", "--month", MONTH, "--scheduler", address], env=_env(settings)
    )
    assert run.exit_code == 0, run.output
    assert "汇总表与数据湖重新计数一致" in run.output and "一致" in run.output
    env = {**_env(settings), "RHIP_DASK_SCHEDULER": address}  # the scheduler from the environment
    run = CliRunner().invoke(app, ["intake", "rebuild-rollups", "--month", MONTH], env=env)
    assert run.exit_code == 0, run.output
    assert "intake_activity" in run.output
    run = CliRunner().invoke(app, ["quality", "verify", "--month", MONTH], env=_env(settings))
    assert run.exit_code == 0, run.output


def test_cli_refuses_bad_periods_and_options(settings: Settings) -> None:
    from typer.testing import CliRunner

    from rhip.cli import app

    recount = ["quality", "recount"]
    for args, words in (
        (recount, "--month 或 --year"),
        (["quality", "recount", "--month", "2025-13"], "2025-13"),
        (
            ["quality", "recount", "--month", MONTH, "--workers", "2", "--scheduler", "tcp://x:1"],
            "只能选一个",
        ),
        (["quality", "recount", "--month", MONTH, "--workers", "0"], "至少为 1"),
        (
            ["quality", "recount", "--month", MONTH, "--scheduler", "tcp://127.0.0.1:9"],
            "无法连接 Dask 调度器",
        ),
    ):
        run = CliRunner().invoke(app, args, env=_env(settings))
        assert run.exit_code == 2, (args, run.output)
        assert words in run.output, (args, run.output)
