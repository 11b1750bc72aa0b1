"""The lake reader: DuckDB reading the Delta log's Parquet files, the PyArrow fallback, the cache."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from rhip.lake.sql import Sql
from rhip.lake.store import Lake
from rhip.quality import figsql, lakeread


def _visits(orgs: list[str], months: list[str], fees: list[float], ops: list[int] | None = None) -> pa.Table:
    n = len(orgs)
    return pa.table(
        {
            "org_code": orgs,
            "_key": [f"K{i}" for i in range(n)],
            "_op": pa.array(ops or [1] * n, pa.int8()),
            "_batch": ["B1"] * n,
            "fee_total": fees,
            "_month": months,
        }
    )


def _count(reader: lakeread.LakeReader) -> list[tuple[object, ...]]:
    sql = Sql(
        "SELECT _month, count(*), sum(fee_total) FROM ods_outpatient_visit GROUP BY _month ORDER BY _month",
        {},
    )
    return reader.rows(sql, "outpatient_visit")


def test_native_read_matches_the_delta_table(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    data = _visits(["H1", "H1", "H2"], ["2025-02", "2025-03", "2025-03"], [1.0, 2.0, 4.0])
    write_deltalake(str(lake.path("ods_outpatient_visit")), data, partition_by=["_month"])
    reader = lakeread.LakeReader(lake)
    assert _count(reader) == [("2025-02", 1, 1.0), ("2025-03", 2, 6.0)]
    assert reader.native["ods_outpatient_visit"] is True
    reader.close()


def test_partition_values_that_are_not_plain_words_fall_back_to_pyarrow(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    data = _visits(["H1", "H2"], ["2025 03", "2025-03"], [1.0, 2.0])
    write_deltalake(str(lake.path("ods_outpatient_visit")), data, partition_by=["_month"])
    reader = lakeread.LakeReader(lake)
    assert _count(reader) == [("2025 03", 1, 1.0), ("2025-03", 1, 2.0)]
    assert reader.native["ods_outpatient_visit"] is False
    reader.close()


def test_unpartitioned_tables_are_read_too(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    data = _visits(["H1", "H2"], ["2025-03", "2025-04"], [1.0, 2.0])
    write_deltalake(str(lake.path("ods_outpatient_visit")), data)
    reader = lakeread.LakeReader(lake)
    assert _count(reader) == [("2025-03", 1, 1.0), ("2025-04", 1, 2.0)]
    reader.close()


def test_a_new_table_version_is_not_answered_from_the_cache(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    path = str(lake.path("ods_outpatient_visit"))
    write_deltalake(path, _visits(["H1"], ["2025-03"], [1.0]), partition_by=["_month"])
    first = lakeread.LakeReader(lake)
    assert _count(first) == [("2025-03", 1, 1.0)]
    write_deltalake(path, _visits(["H2"], ["2025-03"], [5.0]), mode="append", partition_by=["_month"])
    second = lakeread.LakeReader(lake)
    assert _count(second) == [("2025-03", 2, 6.0)]
    # the same snapshot again: answered from the cache, same result
    assert _count(lakeread.LakeReader(lake)) == [("2025-03", 2, 6.0)]


def test_changed_count_sees_corrections_only(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    data = _visits(["H1", "H1", "H1"], ["2025-03"] * 3, [1.0, 2.0, 3.0], ops=[1, 2, 3])
    write_deltalake(str(lake.path("ods_outpatient_visit")), data, partition_by=["_month"])
    reader = lakeread.LakeReader(lake)
    sql = figsql.changed_count_sql("outpatient_visit", pending=[])
    assert reader.rows(sql, "outpatient_visit") == [(2,)]
    hidden = figsql.changed_count_sql("outpatient_visit", pending=["B1"])
    assert reader.rows(hidden, "outpatient_visit") == [(0,)]
