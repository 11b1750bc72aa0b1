"""The vectorised rules agree with the one-value reference implementations."""

from __future__ import annotations

from datetime import date

import polars as pl
from hypothesis import given, settings, strategies as st

from rhip.intake import rules
from rhip.registry import idnumber

digits = st.text(alphabet="0123456789", min_size=17, max_size=17)


def _reference_fails(value: str) -> bool:
    """GB 11643 by hand: an 18-character number fails on a wrong check character or an impossible date."""
    if len(value) != 18:
        return False
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return True
    return value[17].upper() != idnumber.check_char(value[:17])


@settings(max_examples=300, deadline=None)
@given(first17=digits, last=st.sampled_from(list("0123456789Xx")))
def test_id_checksum_matches_reference(first17: str, last: str) -> None:
    value = first17 + last
    got = pl.DataFrame({"id": [value]}).select(rules.id_check_fails("id")).item()
    assert bool(got) == _reference_fails(value)


def test_id_checksum_on_real_numbers() -> None:
    good = idnumber.make_id("320102", date(1949, 12, 31), 3)
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    df = pl.DataFrame({"id": [good, wrong, good.lower(), "320102194912310", None]})
    got = df.select(rules.id_check_fails("id").fill_null(False)).to_series().to_list()
    assert got == [False, True, False, False, False]


def test_required_blank_is_missing() -> None:
    ds = type(
        "Ds",
        (),
        {"fields": [type("F", (), {"name": "a", "type": "string", "required": True})()]},
    )()
    df = pl.DataFrame({"a": ["x", " ", "\t", None, " y "]})
    _typed, checks = rules.type_checks(ds, df)
    req = next(c for c in checks if c.rule == "required")
    assert df.select(req.fails).to_series().to_list() == [False, True, True, True, False]
