"""The Fellegi–Sunter scorer: comparison levels defined once, as SQL for splink and as Python for the
incremental linker, and the saved model's parameters (m and u per level, the prior, term frequencies).

The model file `data/model-<version>.json` is splink's own settings JSON (trained by `train.py`); the
incremental linker reads its parameters and scores a candidate pair in microseconds, without splink.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from rhip.identity.features import Features, swap_day_month

DATA = Path(__file__).parent / "data"
MODEL_VERSION = "2026.12-2"  # 2026.12-1: the same parameters, rule 4 birth date + district only
MODEL_FILE = DATA / f"model-{MODEL_VERSION}.json"


def osa_distance(a: str, b: str, limit: int = 3) -> int:
    """Optimal-string-alignment edit distance (substitutions, insertions, deletions, adjacent
    transpositions), capped at `limit`."""
    if a == b:
        return 0
    la, lb = len(a), len(b)
    if abs(la - lb) >= limit:
        return limit
    prev2: list[int] = []
    prev = list(range(lb + 1))
    for i in range(1, la + 1):
        cur = [i] + [0] * lb
        for j in range(1, lb + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
        if min(cur) >= limit:
            return limit
        prev2, prev = prev, cur
    return min(prev[lb], limit)


Level = Callable[[Features, Features], bool]


@dataclass(frozen=True)
class ComparisonLevel:
    """One agreement level: its SQL condition (splink, columns suffixed _l/_r) and the same in Python."""

    label: str
    sql: str
    test: Level
    is_null: bool = False
    tf_column: str | None = None


@dataclass(frozen=True)
class Comparison:
    """One compared field with its levels, first match wins; the last level is 'else'."""

    name: str
    columns: tuple[str, ...]
    levels: tuple[ComparisonLevel, ...]

    def level(self, a: Features, b: Features) -> int:
        """The index of the first level the pair meets."""
        for i, lv in enumerate(self.levels):
            if lv.test(a, b):
                return i
        return len(self.levels) - 1


def _null(col: str) -> str:
    return f'"{col}_l" IS NULL OR "{col}_r" IS NULL'


def _eq(col: str) -> str:
    return f'"{col}_l" = "{col}_r"'


def _else() -> ComparisonLevel:
    return ComparisonLevel("其他", "ELSE", lambda a, b: True)


def _exact(col: str) -> Comparison:
    """Missing / the same / else, on one column."""

    def missing(a: Features, b: Features) -> bool:
        return getattr(a, col) is None or getattr(b, col) is None

    def same(a: Features, b: Features) -> bool:
        return bool(getattr(a, col) == getattr(b, col))

    return Comparison(
        col,
        (col,),
        (
            ComparisonLevel("缺失", _null(col), missing, True),
            ComparisonLevel("相同", _eq(col), same),
            _else(),
        ),
    )


def _birth_swap(a: Features, b: Features) -> bool:
    return a.birth_date is not None and swap_day_month(a.birth_date) == b.birth_date


def _birth_edit(a: Features, b: Features) -> bool:
    assert a.birth_date is not None and b.birth_date is not None
    return osa_distance(a.birth_date.isoformat(), b.birth_date.isoformat(), 2) <= 1


COMPARISONS: tuple[Comparison, ...] = (
    Comparison(
        "id_number",
        ("id_number",),
        (
            ComparisonLevel(
                "缺失", _null("id_number"), lambda a, b: a.id_number is None or b.id_number is None, True
            ),
            ComparisonLevel("相同", _eq("id_number"), lambda a, b: a.id_number == b.id_number),
            ComparisonLevel(
                "一位之差或相邻颠倒",
                'damerau_levenshtein("id_number_l", "id_number_r") <= 1',
                lambda a, b: osa_distance(a.id_number or "", b.id_number or "", 2) <= 1,
            ),
            ComparisonLevel(
                "两位之差",
                'damerau_levenshtein("id_number_l", "id_number_r") <= 2',
                lambda a, b: osa_distance(a.id_number or "", b.id_number or "", 3) <= 2,
            ),
            _else(),
        ),
    ),
    Comparison(
        "name",
        ("name", "py", "py_loose"),
        (
            ComparisonLevel("缺失", _null("name"), lambda a, b: a.name is None or b.name is None, True),
            ComparisonLevel("同名", _eq("name"), lambda a, b: a.name == b.name, tf_column="name"),
            ComparisonLevel("同音（拼音相同）", _eq("py"), lambda a, b: a.py == b.py),
            ComparisonLevel(
                "近音（n/l、前后鼻音、平翘舌）", _eq("py_loose"), lambda a, b: a.py_loose == b.py_loose
            ),
            _else(),
        ),
    ),
    Comparison(
        "birth_date",
        ("birth_date",),
        (
            ComparisonLevel(
                "缺失", _null("birth_date"), lambda a, b: a.birth_date is None or b.birth_date is None, True
            ),
            ComparisonLevel("相同", _eq("birth_date"), lambda a, b: a.birth_date == b.birth_date),
            ComparisonLevel(
                "日月颠倒",
                'substr("birth_date_l", 1, 4) = substr("birth_date_r", 1, 4) AND '
                'substr("birth_date_l", 6, 2) = substr("birth_date_r", 9, 2) AND '
                'substr("birth_date_l", 9, 2) = substr("birth_date_r", 6, 2)',
                _birth_swap,
            ),
            ComparisonLevel(
                "一位之差", 'damerau_levenshtein("birth_date_l", "birth_date_r") <= 1', _birth_edit
            ),
            _else(),
        ),
    ),
    *(_exact(name) for name in ("sex", "phone", "district")),
)

BLOCKING_RULES: tuple[str, ...] = (
    'l."id_number" = r."id_number"',
    'l."key_name_birth" = r."key_name_birth"',
    'l."phone" = r."phone"',
    # birth date + district alone grows with the square of the population (its date range is fixed):
    # sex and the surname's loose-pinyin initial cut its pairs by ~16 at 2 million records
    'l."key_birth_district" = r."key_birth_district" AND l."sex" = r."sex" '
    'AND substr(l."py_loose", 1, 1) = substr(r."py_loose", 1, 1)',
)

# before the model is trained: plausible m and u per level (null levels carry none)
_START: dict[str, list[tuple[float, float] | None]] = {
    "id_number": [None, (0.94, 1e-7), (0.05, 1e-5), (0.0099, 1e-4), (1e-4, 0.9999)],
    "name": [None, (0.9, 1e-4), (0.06, 2e-4), (0.02, 5e-4), (0.02, 0.9993)],
    "birth_date": [None, (0.95, 1e-4), (0.01, 1e-5), (0.02, 1e-3), (0.02, 0.9989)],
    "sex": [None, (0.99, 0.5), (0.01, 0.5)],
    "phone": [None, (0.7, 1e-4), (0.3, 0.9999)],
    "district": [None, (0.8, 0.15), (0.2, 0.85)],
}


def settings_dict(
    params: dict[str, list[tuple[float, float] | None]] | None = None, prior: float = 1e-5
) -> dict[str, Any]:
    """The splink settings (dedupe, DuckDB dialect) for our comparisons, with parameters if given."""
    use = params or _START
    comparisons = []
    for comp in COMPARISONS:
        levels: list[dict[str, Any]] = []
        for lv, mu in zip(comp.levels, use[comp.name], strict=True):
            d: dict[str, Any] = {"sql_condition": lv.sql, "label_for_charts": lv.label}
            if lv.is_null:
                d["is_null_level"] = True
            if lv.tf_column:
                d["tf_adjustment_column"] = lv.tf_column
                d["tf_adjustment_weight"] = 1.0
            if mu is not None:
                d["m_probability"], d["u_probability"] = mu
            levels.append(d)
        comparisons.append(
            {
                "output_column_name": comp.name,
                "comparison_levels": levels,
                "comparison_description": comp.name,
            }
        )
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "unique_id",
        "probability_two_random_records_match": prior,
        "blocking_rules_to_generate_predictions": [
            {"blocking_rule": r, "sql_dialect": "duckdb"} for r in BLOCKING_RULES
        ],
        "comparisons": comparisons,
        "retain_intermediate_calculation_columns": False,
        "retain_matching_columns": False,
        "sql_dialect": "duckdb",
    }


@dataclass(frozen=True)
class Model:
    """The saved model's parameters: the prior and each level's log2 Bayes factor."""

    version: str
    prior: float
    weights: tuple[tuple[float, ...], ...]  # per comparison, per level (0 for null levels)
    u_tf: tuple[tuple[float | None, ...], ...]  # u of levels with a term-frequency adjustment

    @property
    def prior_weight(self) -> float:
        """log2 of the prior odds."""
        return math.log2(self.prior / (1 - self.prior))

    def score(self, a: Features, b: Features, tf: Callable[[str], float] | None = None) -> Scored:
        """The match weight and probability of a pair, with the level of each comparison."""
        w = self.prior_weight
        levels: list[int] = []
        for ci, comp in enumerate(COMPARISONS):
            li = comp.level(a, b)
            levels.append(li)
            w += self.weights[ci][li]
            u = self.u_tf[ci][li]
            lv = comp.levels[li]
            if u is not None and tf is not None and lv.tf_column == "name" and a.name:
                freq = tf(a.name)
                if freq > 0:
                    w += math.log2(u / freq)
        return Scored(weight=w, probability=probability(w), levels=tuple(levels))


def probability(weight: float) -> float:
    """Match probability from a match weight (log2 odds)."""
    if weight > 60:
        return 1.0
    if weight < -60:
        return 0.0
    odds: float = 2.0**weight
    return odds / (1 + odds)


@dataclass(frozen=True)
class Scored:
    """One pair's score."""

    weight: float
    probability: float
    levels: tuple[int, ...]


def model_from_settings(settings: dict[str, Any], version: str) -> Model:
    """The parameters of a splink settings dictionary (as saved by splink's save_model_to_json)."""
    by_name = {c["output_column_name"]: c for c in settings["comparisons"]}
    weights: list[tuple[float, ...]] = []
    u_tf: list[tuple[float | None, ...]] = []
    for comp in COMPARISONS:
        levels = by_name[comp.name]["comparison_levels"]
        if len(levels) != len(comp.levels):
            raise ValueError(f"model file: {comp.name} has {len(levels)} levels, expected {len(comp.levels)}")
        ws: list[float] = []
        us: list[float | None] = []
        for lv in levels:
            m, u = lv.get("m_probability"), lv.get("u_probability")
            if lv.get("is_null_level") or m is None or u is None:
                ws.append(0.0)
                us.append(None)
                continue
            m, u = max(float(m), 1e-12), max(float(u), 1e-12)
            ws.append(math.log2(m / u))
            us.append(u if lv.get("tf_adjustment_column") else None)
        weights.append(tuple(ws))
        u_tf.append(tuple(us))
    return Model(
        version=version,
        prior=float(settings["probability_two_random_records_match"]),
        weights=tuple(weights),
        u_tf=tuple(u_tf),
    )


@cache
def load_model(path: Path = MODEL_FILE) -> Model:
    """The saved model (splink settings JSON) in the package data; the start values when none is saved."""
    if path.exists():
        settings = json.loads(path.read_text(encoding="utf-8"))
        return model_from_settings(settings, settings.get("rhip_model_version", path.stem))
    return model_from_settings(settings_dict(), "start")
