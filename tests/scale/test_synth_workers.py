"""`rhip synth` on a cluster writes the single process's bytes: every upload file, the ground truth and
the manifest (which lists the sha256 of each)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from rhip.cli import app
from rhip.lake.cluster import Job
from rhip.synth import service as synth

UNITS = ("D320106", "H005", "H029", "H020")


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_cluster_output_is_byte_identical(tmp_path: Path, local_cluster: Any) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    kw: dict[str, Any] = {"month": "2025-03", "scale": 0.001, "seed": 5, "institutions": UNITS}
    a = synth.generate(out=one, **kw)
    b = synth.generate(out=two, job=Job(client=local_cluster), **kw)
    assert _tree(one) == _tree(two)
    assert len(_tree(one)) > 20 and not (two / "ground_truth" / ".parts").exists()
    assert (a.rows, a.files, a.defects, a.tables) == (b.rows, b.files, b.defects, b.tables)
    assert [u.code for u in b.units] == [u.code for u in a.units]


def test_cli_workers_and_refusals(tmp_path: Path, scheduler_pair: str) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    args = ["synth", "--month", "2025-03", "--scale", "0.0005", "--seed", "3", "--out", str(out)]
    done = runner.invoke(app, [*args, "--scheduler", scheduler_pair])
    assert done.exit_code == 0, done.output
    again = synth.generate(month="2025-03", scale=0.0005, seed=3, out=tmp_path / "here")
    assert (out / "manifest.json").read_bytes() == (tmp_path / "here" / "manifest.json").read_bytes()
    assert again.files > 0
    both = runner.invoke(app, [*args, "--workers", "2", "--scheduler", scheduler_pair])
    assert both.exit_code == 2 and "只能选一个" in both.output
    zero = runner.invoke(app, [*args, "--workers", "0"])
    assert zero.exit_code == 2 and "至少为 1" in zero.output
