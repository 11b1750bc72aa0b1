"""The `rhip` command as a user runs it: real processes, readable errors, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rhip.security.roles import Role
from rhip.security.service import decode_token

SECRET = "cli-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


def rhip(*args: str, data_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `python -m rhip.cli ARGS` with a private data folder."""
    env = {**os.environ, "RHIP_DATA_DIR": str(data_dir), "RHIP_SECRET_KEY": SECRET, "COLUMNS": "200"}
    env.pop("RHIP_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "rhip.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_token_prints_a_valid_bearer_token(tmp_path: Path) -> None:
    r = rhip("token", "--role", "uploader", "--institution", "H001", "--subject", "his-1", data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    p = decode_token(SECRET, r.stdout.strip())
    assert (p.role, p.institution_code, p.subject) == (Role.uploader, "H001", "his-1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["token", "--role", "superuser"], "未知角色：superuser"),
        (["token", "--role", "uploader"], "必须指定 --institution"),
    ],
)
def test_token_errors_are_one_readable_line(tmp_path: Path, args: list[str], message: str) -> None:
    r = rhip(*args, data_dir=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_db_upgrade_and_registry_load(tmp_path: Path) -> None:
    r = rhip("db", "upgrade", data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "数据库已升级到" in r.stdout and (tmp_path / "rhip.db").exists()
    r = rhip("registry", "load", data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "注册库已加载" in r.stdout and "机构" in r.stdout


def test_api_key_for_unknown_institution(tmp_path: Path) -> None:
    r = rhip("user", "api-key", "--institution", "NO-SUCH", data_dir=tmp_path)
    assert r.returncode == 2 and "NO-SUCH" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    r = rhip("demo", "--scale", "0.002", data_dir=tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "rhip demo 汇总" in r.stdout
    # the quality figures come from intake's rollups; the demo recounts them from the lake
    assert "汇总表与数据湖核对一致" in r.stdout.replace("\n", "")
    # every patient record the month sent is linked to a person, checked against the ground truth
    assert "主索引" in r.stdout and "成对精确率" in r.stdout.replace("\n", "")
    out = tmp_path / "demo" / "2025-03"
    assert (out / "manifest.json").exists()
    assert any((out / "uploads").rglob("*.csv"))
    # the same check from the command line, and a readable error for a bad month
    v = rhip("quality", "verify", "--month", "2025-03", data_dir=tmp_path)
    assert v.returncode == 0 and "一致" in v.stdout, v.stdout + v.stderr
    # the shared record: built from the month, served, its access log's chain intact
    assert "健康档案调阅" in r.stdout
    chain = rhip("audit", "verify", data_dir=tmp_path)
    assert chain.returncode == 0 and "审计链完好" in chain.stdout, chain.stdout + chain.stderr
    bad = rhip("quality", "verify", "--month", "2025-13", data_dir=tmp_path)
    assert bad.returncode != 0 and "YYYY-MM" in bad.stdout + bad.stderr and "Traceback" not in bad.stderr
