"""The current version of each record (`store.current_sql`, built on `lake.sql.ranked_versions_sql`) against
the rule written out in Python and against quality's anti-join builder (`figsql.current_sql`), on random
version histories stored in a real Delta table and read with DuckDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from deltalake import write_deltalake
from hypothesis import HealthCheck, given, settings, strategies as st

from rhip.intake import store
from rhip.lake import Duck, Lake, Sql
from rhip.quality import figsql

T0 = datetime(2025, 3, 1, tzinfo=UTC)
PENDING = "Bpending"

# one stored version: (org, key, minutes after T0 of 数据更新时间, ingest second, revoked?, pending batch?)
version_st = st.tuples(
    st.sampled_from(["A1", "B2"]),
    st.sampled_from("abcde"),
    st.integers(0, 3),
    st.integers(0, 2),
    st.booleans(),
    st.booleans(),
)


def _table(versions: list[tuple[str, str, int, int, bool, bool]]) -> pl.DataFrame:
    """As intake stores them: a key's first version (in ranking order) has _op 1, later ones 2 or 3."""
    seen: set[tuple[str, str]] = set()
    ordered = sorted(enumerate(versions), key=lambda iv: (iv[1][2], iv[1][3], iv[0]))
    rows = []
    for row, (org, key, upd, ing, revoked, pending) in ordered:
        op = 1 if (org, key) not in seen else (3 if revoked else 2)
        seen.add((org, key))
        rows.append(
            {
                "org_code": org,
                "_key": key,
                "name": f"v{row}",
                "updated_at": T0 + timedelta(minutes=upd),
                "_ingested_at": T0 + timedelta(seconds=ing),
                "_row": row,
                "_op": op,
                "_batch": PENDING if pending else f"B{row}",
                "_month": "2025-03",
            }
        )
    return pl.DataFrame(rows, schema_overrides={"_op": pl.Int8})


def _expected(frame: pl.DataFrame, pending: list[str]) -> list[tuple[str, str, str]]:
    """The rule as written: of a record's visible versions the latest 数据更新时间, then the later ingest,
    then the later row wins; a winning tombstone (修改标志 3) hides the record."""
    best: dict[tuple[str, str], dict[str, object]] = {}
    for r in frame.iter_rows(named=True):
        if r["_batch"] in pending:
            continue
        k = (r["org_code"], r["_key"])
        rank = (r["updated_at"], r["_ingested_at"], r["_row"])
        cur = best.get(k)
        if cur is None or rank > (cur["updated_at"], cur["_ingested_at"], cur["_row"]):
            best[k] = r
    return sorted(
        (str(r["org_code"]), str(r["_key"]), str(r["name"])) for r in best.values() if r["_op"] != 3
    )


def _rows(duck: Duck, sql: Sql) -> list[tuple[str, str, str]]:
    return sorted(
        (str(a), str(b), str(c))
        for a, b, c in duck.rows(Sql(f"SELECT org_code, _key, name FROM ({sql.text})", sql.params))
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(versions=st.lists(version_st, min_size=1, max_size=25), hide=st.booleans())
def test_current_sql_is_the_rule_and_agrees_with_quality(
    tmp_path: Path, versions: list[tuple[str, str, int, int, bool, bool]], hide: bool
) -> None:
    frame = _table(versions)
    root = tmp_path / f"lake{abs(hash((tuple(versions), hide)))}"
    write_deltalake(str(root / "ods_patient_info"), frame.to_arrow(), mode="overwrite")
    pending = [PENDING] if hide else []
    duck = Duck(Lake(root))
    try:
        ours = _rows(duck, store.current_sql("patient_info", exclude_batches=pending))
        theirs = _rows(
            duck,
            figsql.current_sql(
                "patient_info", ["_key", "name"], where="TRUE", params={}, pending=pending, changes=True
            ),
        )
    finally:
        duck.close()
    assert ours == _expected(frame, pending)
    assert ours == theirs
