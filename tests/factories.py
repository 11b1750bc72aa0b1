"""Valid sample values for catalogue fields, shared by the tests that build records by hand."""

from __future__ import annotations

import itertools

from rhip.registry import catalogue, codes


def sample_value(
    f: catalogue.Field, *, day: str = "2025-03-01", moment: str = "2025-03-02 08:00:00", text: str = "X1"
) -> str:
    """A valid value for a catalogue field (dates and free text can be chosen)."""
    if f.type == "code":
        assert f.code_system
        if f.code_system == "icd10":
            return "I10"
        if f.code_system == "area":
            return "320102"
        return sorted(codes.codes_of(f.code_system))[0]
    if f.type == "date":
        return day
    if f.type == "datetime":
        return moment
    if f.type == "integer":
        return str(int(f.minimum or 1))
    if f.type == "decimal":
        return str(f.minimum if f.minimum is not None and f.minimum > 0 else 1.5)
    if f.type == "id_number":
        return "11010519491231002X"
    if f.type == "phone":
        return "13812345678"
    return text


_SEQUENCES = itertools.count(1)


def id_sequence(sex: str = "1") -> int:
    """A GB 11643 sequence number (odd for men, even for women) no earlier call in this test process gave:
    tests that make ID numbers for a fixed area and birth date must never make the same person twice (a
    random choice among 500 collided once in a few dozen suite runs)."""
    return next(_SEQUENCES) % 500 * 2 + (0 if sex == "2" else 1)
