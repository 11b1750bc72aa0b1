"""The CLI conventions of issue 12: `rhip intake` is a group (upload, compact) that still takes files
directly, `rhip intake-compact` a hidden alias; `rhip serve --workers N` serves from several processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from rhip.cli import app
from rhip.intake.commands import legacy_argv


def test_intake_without_subcommand_is_upload() -> None:
    assert legacy_argv(["rhip", "intake", "a.csv", "--institution", "H001"]) == [
        "rhip", "intake", "upload", "a.csv", "--institution", "H001",
    ]  # fmt: skip
    assert legacy_argv(["rhip", "intake", "compact"]) == ["rhip", "intake", "compact"]
    assert legacy_argv(["rhip", "intake", "--help"]) == ["rhip", "intake", "--help"]
    assert legacy_argv(["rhip", "quality", "figures"]) == ["rhip", "quality", "figures"]


def test_help_lists_intake_group_and_hides_the_old_name() -> None:
    out = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert "intake" in out and "intake-compact" not in out
    sub = CliRunner().invoke(app, ["intake", "--help"], env={"COLUMNS": "200"}).output
    assert "upload" in sub and "compact" in sub
    assert "--workers" in CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).output


@pytest.mark.slow
def test_serve_with_workers_answers_from_several_processes(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RHIP_DATA_DIR": str(tmp_path), "RHIP_LOG_LEVEL": "WARNING"}
    env.pop("RHIP_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rhip.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline, ok = time.monotonic() + 120, False
        while time.monotonic() < deadline and not ok:
            try:
                ok = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                time.sleep(0.5)
        assert ok, "rhip serve --workers 2 did not answer"
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(children) >= 2, children  # the workers (and uvicorn's helper), under the one parent
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
