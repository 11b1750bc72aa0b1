"""Intake test helpers: CSV text for catalogue tables, institution codes."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from rhip.registry import catalogue
from tests.factories import sample_value

_seq = itertools.count(1)


def unique(prefix: str) -> str:
    """A business key no other test uses."""
    return f"{prefix}{next(_seq):06d}T{id(_seq) % 10000}"


@pytest.fixture()
def inst() -> str:
    """An institution code from the registry."""
    from rhip.registry import data

    return data.institutions()[0].code


@pytest.fixture()
def inst2() -> str:
    """Another institution code."""
    from rhip.registry import data

    return data.institutions()[1].code


PATIENT_COLS = [
    "org_code",
    "collected_at",
    "updated_at",
    "change_flag",
    "patient_id",
    "name",
    "sex",
    "birth_date",
    "id_number",
]


@pytest.fixture()
def patient_csv() -> Callable[..., str]:
    """patient_info CSV text: rows of (org, patient_id, updated_at, flag[, sex, id_number])."""

    def make(rows: list[tuple[str, ...]]) -> str:
        lines = [",".join(PATIENT_COLS)]
        for r in rows:
            org, pid, upd, flag = r[:4]
            sex = r[4] if len(r) > 4 else "1"
            idn = r[5] if len(r) > 5 else "11010519491231002X"
            lines.append(f"{org},2025-03-02 10:00:00,{upd},{flag},{pid},张三,{sex},1949-12-31,{idn}")
        return "\n".join(lines) + "\n"

    return make


def dataset_columns(name: str) -> list[str]:
    """Column names of a catalogue table."""
    return list(catalogue.get(name).field_names)


def make_row(table: str, **values: str) -> dict[str, str]:
    """A valid record of a table (required fields filled), with overrides."""
    ds = catalogue.get(table)
    row = {f.name: sample_value(f) for f in ds.fields if f.required}
    row.update(
        {"collected_at": "2025-03-02 10:00:00", "updated_at": "2025-03-01 10:00:00", "change_flag": "1"}
    )
    row.update(values)
    return row


def csv_text(rows: list[dict[str, str]]) -> str:
    """CSV text with the union of the rows' columns."""
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    lines = [",".join(cols)] + [",".join(r.get(c, "") for c in cols) for r in rows]
    return "\n".join(lines) + "\n"
