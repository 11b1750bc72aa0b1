"""De-duplication (`keyindex.classify`) against a plain restatement of the rule, on random batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
from hypothesis import given, settings, strategies as st

from rhip.intake import keyindex, store

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _expected(rows: list[tuple[str, int, int]], stored: dict[str, int]) -> list[int]:
    """The rule as written: per key, versions in 数据更新时间 order (then row); a version not newer than
    the latest known (stored or earlier in the batch) is a duplicate; 修改标志 3 is a tombstone."""
    out = [0] * len(rows)
    order = sorted(range(len(rows)), key=lambda i: (rows[i][0], rows[i][1], i))
    latest: dict[str, int] = dict(stored)
    for i in order:
        key, at, flag = rows[i]
        known = latest.get(key)
        if known is not None and at <= known:
            out[i] = store.OP_DUPLICATE
        elif flag == 3:
            out[i] = store.OP_REVOKE
        else:
            out[i] = store.OP_NEW if known is None else store.OP_UPDATE
        latest[key] = at if known is None else max(known, at)
    return out


rows_st = st.lists(
    st.tuples(st.sampled_from("abcdefg"), st.integers(0, 5), st.sampled_from([1, 2, 3])), max_size=40
)
stored_st = st.dictionaries(st.sampled_from("abcdefg"), st.integers(0, 5), max_size=7)


@settings(max_examples=200, deadline=None)
@given(rows=rows_st, stored=stored_st)
def test_classify_matches_the_rule(rows: list[tuple[str, int, int]], stored: dict[str, int]) -> None:
    incoming = pl.DataFrame(
        {
            "_key": [k for k, _a, _f in rows],
            "updated_at": [T0 + timedelta(minutes=a) for _k, a, _f in rows],
            "change_flag": [f for _k, _a, f in rows],
            "_row": list(range(1, len(rows) + 1)),
        },
        schema={
            "_key": pl.String,
            "updated_at": pl.Datetime("us", "UTC"),
            "change_flag": pl.Int8,
            "_row": pl.Int64,
        },
    )
    known = pl.DataFrame(
        {
            "_key": list(stored),
            "_prev": [T0 + timedelta(minutes=a) for a in stored.values()],
            "_prev_op": [1] * len(stored),
        },
        schema={"_key": pl.String, "_prev": pl.Datetime("us", "UTC"), "_prev_op": pl.Int8},
    )
    got = keyindex.classify(incoming, known).to_list()
    assert got == _expected(rows, stored)
