"""splink (DuckDB backend): estimate the model's parameters from records (u by random sampling, m by EM
on two blocking passes), save it as the versioned model file, and score whole tables for the full link.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from rhip.identity import features as feat
from rhip.identity.scoring import MODEL_FILE, MODEL_VERSION, settings_dict

SPLINK_COLUMNS = (
    "unique_id",
    "id_number",
    "name",
    "py",
    "py_loose",
    "birth_date",
    "sex",
    "phone",
    "district",
    "key_name_birth",
    "key_birth_district",
)


def feature_rows(records: Iterable[dict[str, Any]], start_id: int = 0) -> pa.Table:
    """The splink input of raw records (id_number, name, birth_date, sex, phone, district)."""
    cols: dict[str, list[Any]] = {c: [] for c in SPLINK_COLUMNS}
    for i, r in enumerate(records):
        f = feat.derive(
            id_number=r.get("id_number"),
            name=r.get("name"),
            birth_date=r.get("birth_date"),
            sex=r.get("sex"),
            phone=r.get("phone"),
            district=r.get("district"),
        )
        append_features(cols, start_id + i, f)
    return splink_table(cols)


def append_features(cols: dict[str, list[Any]], uid: int, f: feat.Features) -> None:
    """Add one record's features to column lists."""
    cols["unique_id"].append(uid)
    cols["id_number"].append(f.id_number)
    cols["name"].append(f.name)
    cols["py"].append(f.py)
    cols["py_loose"].append(f.py_loose)
    cols["birth_date"].append(f.birth_date.isoformat() if f.birth_date else None)
    cols["sex"].append(f.sex)
    cols["phone"].append(f.phone)
    cols["district"].append(f.district)
    cols["key_name_birth"].append(f.key_name_birth)
    cols["key_birth_district"].append(f.key_birth_district)


def splink_table(cols: dict[str, list[Any]]) -> pa.Table:
    """Column lists as the Arrow table splink reads (birth dates as ISO text, ids int64)."""
    types = {c: pa.string() for c in SPLINK_COLUMNS}
    types["unique_id"] = pa.int64()
    return pa.table({c: pa.array(cols[c], types[c]) for c in SPLINK_COLUMNS})


def _linker(
    table: pa.Table, settings: dict[str, Any] | Path, con: duckdb.DuckDBPyConnection | None = None
) -> Any:
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(con or duckdb.connect())
    df = db_api.register(table, dataset_display_name="records")
    return Linker(df, settings, log_level=logging.WARNING)


def train(table: pa.Table, *, seed: int = 42, u_pairs: float = 2e6) -> dict[str, Any]:
    """Estimate the parameters on a splink input table: the prior from the ID-number rule, u by random
    sampling, m by EM blocked on the ID number and on pinyin + birth date. Returns the settings JSON."""
    from splink import block_on

    linker = _linker(table, settings_dict())
    linker.training.estimate_probability_two_random_records_match(
        [block_on("id_number"), block_on("key_name_birth", "sex")], recall=0.9
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=u_pairs, seed=seed)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("id_number"), estimate_without_term_frequencies=True
    )
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("key_name_birth"), estimate_without_term_frequencies=True
    )
    settings: dict[str, Any] = linker.misc.save_model_to_json()
    floor_m(settings)
    settings["rhip_model_version"] = MODEL_VERSION
    settings["rhip_trained_on"] = {"records": table.num_rows, "trained": date.today().isoformat()}
    return settings


M_FLOOR = 1e-4  # no single disagreement is a veto: sex, names and dates are mistyped too


def floor_m(settings: dict[str, Any]) -> None:
    """Raise every trained m probability to at least M_FLOOR (EM drives unseen disagreements to ~0)."""
    for comp in settings["comparisons"]:
        for lv in comp["comparison_levels"]:
            m = lv.get("m_probability")
            if m is not None and m < M_FLOOR:
                lv["m_probability"] = M_FLOOR
    settings["rhip_m_floor"] = M_FLOOR


def save(settings: dict[str, Any], path: Path = MODEL_FILE) -> Path:
    """Write the model file (pretty JSON, stable key order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(settings, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return path


def predict(
    table: pa.Table,
    *,
    threshold: float,
    model: Path = MODEL_FILE,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pa.Table:
    """Every blocked pair scoring at or above `threshold`: unique_id_l, unique_id_r, match_probability."""
    saved = json.loads(model.read_text(encoding="utf-8")) if model.exists() else settings_dict()
    settings = {k: v for k, v in saved.items() if not k.startswith("rhip_")}  # ours, not splink's
    settings["retain_intermediate_calculation_columns"] = False
    settings["retain_matching_columns"] = False
    linker = _linker(table, settings, con)
    pairs = linker.inference.predict(threshold_match_probability=threshold)
    rel = pairs.as_duckdbpyrelation().select("unique_id_l, unique_id_r, match_probability")
    return rel.to_arrow_table()


def union_find(n: int) -> tuple[list[int], Callable[[int], int]]:
    """Parents of n singletons and their find (with path halving); join by setting a root's parent."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    return parent, find


def clusters(pairs: pa.Table, n: int, threshold: float) -> list[int]:
    """Connected components of the pairs at or above `threshold` over unique ids 0..n-1: the
    representative id of each record's cluster (its smallest id)."""
    parent, find = union_find(n)
    ls = pairs.column("unique_id_l").to_pylist()
    rs = pairs.column("unique_id_r").to_pylist()
    ps = pairs.column("match_probability").to_pylist()
    for a, b, p in zip(ls, rs, ps, strict=True):
        if p >= threshold:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return [find(i) for i in range(n)]
