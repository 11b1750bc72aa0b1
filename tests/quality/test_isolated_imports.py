"""Each quality module imports alone in a fresh interpreter: no import cycle hides behind import order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import rhip.quality

MODULES = sorted(p.stem for p in Path(rhip.quality.__file__).parent.glob("*.py") if p.stem != "__init__")


def test_there_are_modules_to_check() -> None:
    assert {"figures", "units", "service", "usage", "stats", "eras", "layouts", "sections"} <= set(MODULES)


SCRIPT = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "rhip" or m.startswith("rhip.")]:
        del sys.modules[loaded]  # as in a fresh interpreter: nothing of rhip imported yet
    try:
        importlib.import_module("rhip.quality." + name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=3))
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_each_module_imports_alone() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *MODULES], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_no_import_cycle_among_quality_modules() -> None:
    """Also through imports inside functions, which a fresh-interpreter import does not run."""
    grimp = pytest.importorskip("grimp")  # import-linter's graph builder
    graph = grimp.build_graph("rhip")
    names = {f"rhip.quality.{m}" for m in MODULES}
    cycles = []
    for a in sorted(names):
        for b in sorted(graph.find_modules_directly_imported_by(a) & names):
            back = graph.find_shortest_chain(importer=b, imported=a)
            if back:
                cycles.append((a, *back))
    assert cycles == []
