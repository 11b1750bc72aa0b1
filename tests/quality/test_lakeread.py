"""The lake reader: DuckDB reading the Delta log's Parquet files, the PyArrow fallback, the cache."""

from __future__ import annotations

from datetime import UTC, date, datetime
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


def test_realtime_days_are_local_days_as_a_bit_mask(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    ts = pa.timestamp("us", tz="UTC")

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    # (collected, event) in UTC; Shanghai is UTC+8
    rows = [
        ("2025-02-28 16:00:00", "2025-02-28 15:30:00"),  # 1 March 00:00 local: day 1
        ("2025-03-15 04:00:00", "2025-03-15 03:00:00"),  # lag exactly 1 h: still real time
        ("2025-03-20 04:00:00", "2025-03-20 02:00:00"),  # lag 2 h: not real time
        ("2025-03-31 15:59:59", "2025-03-31 15:50:00"),  # 31 March 23:59:59 local: day 31
        ("2025-02-28 15:59:00", "2025-02-28 15:50:00"),  # still 28 February local
        ("2025-03-31 16:00:00", "2025-03-31 15:50:00"),  # already 1 April local
    ]
    data = pa.table(
        {
            "org_code": ["H1"] * len(rows),
            "collected_at": pa.array([at(c) for c, _ in rows], ts),
            "visit_time": pa.array([at(e) for _, e in rows], ts),
            "_batch": ["B1"] * len(rows),
            "_month": ["2025-03"] * len(rows),
        }
    )
    write_deltalake(str(lake.path("ods_outpatient_visit")), data, partition_by=["_month"])
    reader = lakeread.LakeReader(lake)
    first, last = date(2025, 3, 1), date(2025, 3, 31)
    sql = figsql.realtime_days_sql(["outpatient_visit"], first=first, last=last, pending=[])
    [(table, org, mask)] = reader.rows(sql, "outpatient_visit")
    assert (table, org) == ("outpatient_visit", "H1")
    assert figsql.mask_days(first, mask) == {date(2025, 3, 1), date(2025, 3, 15), date(2025, 3, 31)}
    reader.close()


def test_statistics_prove_corrections_without_a_count(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    path = str(lake.path("ods_outpatient_visit"))
    write_deltalake(path, _visits(["H1", "H2"], ["2025-03"] * 2, [1.0, 2.0]), partition_by=["_month"])
    reader = lakeread.LakeReader(lake)
    assert reader.changed_source("outpatient_visit") is None
    assert reader.changes_certain("outpatient_visit") is False
    later = _visits(["H1"], ["2025-03"], [3.0], ops=[2])
    write_deltalake(path, later, mode="append", partition_by=["_month"])
    reader = lakeread.LakeReader(lake)
    assert reader.changed_source("outpatient_visit") == lakeread.changed_view("ods_outpatient_visit")
    assert reader.changes_certain("outpatient_visit") is True


def test_column_scan_counts_the_same_rows_as_the_limit(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    data = _visits(["H1", "H1", "H2"], ["2025-02", "2025-03", "2025-03"], [1.0, 2.0, 4.0])
    write_deltalake(str(lake.path("ods_outpatient_visit")), data, partition_by=["_month"])
    reader = lakeread.LakeReader(lake)
    limit = reader.rows(figsql.limit_sql(["outpatient_visit"], month="2025-03"), "outpatient_visit")
    columns = {"outpatient_visit": ["fee_total", "_op", "_key"]}
    scan = reader.rows(figsql.columns_sql(columns, month="2025-03"), "outpatient_visit")
    assert limit[0][0] == scan[0][0] == 2
    reader.close()
