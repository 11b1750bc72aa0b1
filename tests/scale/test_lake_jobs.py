"""Compaction per partition on the cluster, and the refusal of Delta tables the cluster cannot read."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from rhip.errors import Invalid
from rhip.intake import compactjob
from rhip.lake.cluster import Job, check_readable, org_ranges, weighted_ranges
from rhip.lake.store import Lake
from tests.scale.conftest import MONTH


def _rows(lake: Lake) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for name in lake.tables():
        if name.startswith("ods_"):
            t = lake.dataset(name).to_pyarrow_table(columns=["org_code", "_key", "_op", "_month"])
            out[name] = sorted(zip(*(t.column(c).to_pylist() for c in t.column_names), strict=True))
    return out


def test_compaction_per_partition_on_the_cluster(lake: Lake, local_cluster: Any, tmp_path: Path) -> None:
    copy = Lake(tmp_path / "lake")
    shutil.copytree(lake.root, copy.root)
    before = _rows(copy)
    items = compactjob.plan(copy, month=MONTH)
    assert items and all(("_year", "=", MONTH[:4]) in f for _n, f in items)
    job = Job(local_cluster)
    done = compactjob.compact(job, lake=copy, month=MONTH)
    assert job.total == len(items)
    assert done and all(added < removed for removed, added in done.values())
    assert _rows(copy) == before
    assert compactjob.plan(copy, month=MONTH) == []


def test_tables_beyond_the_readers_are_refused(tmp_path: Path) -> None:
    data = pa.table({"org_code": ["H001"], "n": [1]})
    write_deltalake(str(tmp_path / "dv"), data, configuration={"delta.enableDeletionVectors": "true"})
    with pytest.raises(Invalid, match="deletionVectors"):
        check_readable(DeltaTable(str(tmp_path / "dv")), "dv")
    DeltaTable.create(str(tmp_path / "cm"), data.schema, configuration={"delta.columnMapping.mode": "name"})
    with pytest.raises(Invalid, match="columnMapping"):
        check_readable(DeltaTable(str(tmp_path / "cm")), "cm")
    write_deltalake(str(tmp_path / "plain"), data)
    check_readable(DeltaTable(str(tmp_path / "plain")), "plain")


def test_org_ranges_cover_every_code_in_balanced_parts(tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    for code, n in (("A", 100), ("B", 100), ("C", 100), ("D", 100), ("E", 5)):
        write_deltalake(path, pa.table({"org_code": [code] * n}), mode="append")
    ranges = org_ranges([DeltaTable(path)], 2)
    assert ranges == [(None, "C"), ("C", None)]
    assert org_ranges([DeltaTable(path)], 1) == [(None, None)]
    four = org_ranges([DeltaTable(path)], 4)
    assert four[0][0] is None and four[-1][1] is None
    assert all(a[1] == b[0] for a, b in itertools.pairwise(four))


def test_weighted_ranges_cut_only_between_files(tmp_path: Path) -> None:
    path = str(tmp_path / "sorted")
    # two files of several institutions each, as a compaction sorted by institution writes them
    write_deltalake(path, pa.table({"org_code": ["A"] * 50 + ["B"] * 50}), mode="append")
    write_deltalake(path, pa.table({"org_code": ["C"] * 30 + ["D"] * 10}), mode="append")
    dt = DeltaTable(path)
    assert weighted_ranges([dt], 4) == [((None, "C"), 100), (("C", None), 40)]
    assert weighted_ranges([dt], 1) == [((None, None), 140)]
    # the recount's ranges may also cut at a file's last code (DuckDB skips the others' rows cheaply)
    assert org_ranges([dt], 4) == [(None, "B"), ("B", "C"), ("C", "D"), ("D", None)]
