"""A real `rhip intake` process killed mid-batch leaves nothing partial and loses nothing committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from rhip.config import Settings
from rhip.db.engine import Database
from rhip.intake import service
from rhip.intake.models import IntakeBatch
from rhip.lake import Duck, Lake
from tests.conftest import SECRET
from tests.intake.conftest import csv_text, make_row

pytestmark = pytest.mark.slow


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(RHIP_DATA_DIR=str(settings.data_dir), RHIP_SECRET_KEY=SECRET, **extra)
    if settings.database_url:
        env["RHIP_DATABASE_URL"] = settings.database_url
    return env


def _cli(settings: Settings, files: list[Path], inst: str, **extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "rhip.cli", "intake", *map(str, files), "--institution", inst]
    return subprocess.Popen(
        cmd, env=_env(settings, **extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _write(path: Path, header: list[str], rows: list[str]) -> Path:
    path.write_text(",".join(header) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _visible(db: Database, lake: Lake, table: str) -> int:
    with db.session() as s:
        sql = service.visible_sql(s, table)
    d = Duck(lake)
    try:
        return len(d.rows(sql))
    finally:
        d.close()


def test_kill_mid_batch(tmp_path: Path, settings: Settings, inst: str) -> None:
    own = Settings(
        data_dir=tmp_path / "var",
        database_url=settings.database_url,
        secret_key=SECRET,
    )
    lake = Lake(own.resolved_lake_dir)
    db = Database.from_settings(own)
    tag = tmp_path.name[-6:].replace("_", "")
    pat_h = [
        "org_code",
        "collected_at",
        "updated_at",
        "change_flag",
        "patient_id",
        "name",
        "sex",
        "birth_date",
    ]
    first = _write(
        tmp_path / "patient_info_a.csv",
        pat_h,
        [f"{inst},2025-03-02 10:00:00,2025-03-01 10:00:00,1,K{tag}{i},张三,1,1980-01-01" for i in range(500)],
    )
    # 1. a committed batch
    p = _cli(own, [first], inst)
    out = p.communicate(timeout=120)[0].decode()
    assert p.returncode == 0, out
    assert _visible(db, lake, "patient_info") == 500

    # 2. a two-table batch killed after its first Delta commit, before its receipt commits
    pats = _write(
        tmp_path / "patient_info_b.csv",
        pat_h,
        [f"{inst},2025-03-02 10:00:00,2025-03-01 10:00:00,1,N{tag}{i},李四,2,1980-01-01" for i in range(300)],
    )
    adms = tmp_path / "admission_b.csv"
    adms.write_text(
        csv_text(
            [
                make_row("admission", org_code=inst, admission_no=f"A{tag}{i}", patient_id=f"N{tag}{i}")
                for i in range(300)
            ]
        ),
        encoding="utf-8",
    )
    version_before = lake.dataset("ods_patient_info").version()
    victim = _cli(own, [pats, adms], inst, RHIP_INTAKE_CRASH_PAUSE="60")
    deadline = time.time() + 120
    while lake.dataset("ods_patient_info").version() == version_before:
        assert victim.poll() is None, victim.communicate()[0].decode()
        assert time.time() < deadline
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    # the killed batch's rows sit in the Delta table but are invisible: its receipt is pending
    assert lake.count("ods_patient_info") == 800
    assert _visible(db, lake, "patient_info") == 500
    with db.session() as s:
        pending = s.scalars(
            select(IntakeBatch).where(IntakeBatch.status == "pending", IntakeBatch.pid == victim.pid)
        ).all()
        assert len(pending) == 1
        killed_id = pending[0].id

    # 3. the next run recovers (deletes the partial rows) and re-sending the first file only adds duplicates
    p = _cli(own, [first], inst)
    out = p.communicate(timeout=120)[0].decode()
    assert p.returncode == 0, out
    assert "已清理 1 个中断批次" in out
    assert lake.count("ods_patient_info") == 500
    assert not lake.exists("ods_admission") or lake.count("ods_admission") == 0
    assert _visible(db, lake, "patient_info") == 500
    with db.session() as s:
        assert s.get(IntakeBatch, killed_id).status == "aborted"  # type: ignore[union-attr]
        last = s.scalars(
            select(IntakeBatch)
            .where(IntakeBatch.status == "committed")
            .order_by(IntakeBatch.created_at.desc())
        ).first()
        assert last is not None and (last.accepted, last.duplicate) == (0, 500)

    # 4. the killed batch sent again goes in whole
    p = _cli(own, [pats, adms], inst)
    assert p.wait(timeout=120) == 0
    assert _visible(db, lake, "patient_info") == 800
    assert _visible(db, lake, "admission") == 300
