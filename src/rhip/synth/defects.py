"""Planted defects: rates, which field each rule corrupts in which table, and the corruptions themselves.

Every defect is planted on an extra row (a copy of a freshly generated valid row with a new business
key), never instead of a valid record, so the calibrated figures stay exact. The exceptions are the
record-version events: `duplicate` (an identical re-send of a valid row), `modified` (an older version
of a valid record, then the valid version with 修改标志 2) and `revoked` (an extra record, then its
tombstone with 修改标志 3).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rhip.errors import Invalid
from rhip.registry import codes
from rhip.registry.catalogue import COMMON_FIELD_NAMES, Dataset, validation
from rhip.synth import vec

# The rules an extra row can break, in the intake validator's order (first failing rule wins there), and
# the (earlier, later) pairs it checks: the catalogue's data (datasets.yaml `validation:`)
ROW_RULES = validation().row_rules
VERSION_RULES = ("duplicate", "modified", "revoked")
ALL_RULES = ROW_RULES + VERSION_RULES
ORDER_PAIRS = validation().order_pairs
FUTURE_YEAR = 2099  # "in the future" whenever the platform runs; fixed so files stay deterministic
ANCIENT_DATE = "1850-06-15"
LATE_DAYS = (2, 6)  # a late real-time row is collected this many days after its event


@dataclass(frozen=True)
class DefectRates:
    """Share of each table's valid records that get a defective extra row (or a version event)."""

    required: float = 0.005
    type: float = 0.004
    code: float = 0.005
    id_checksum: float = 0.005
    date_range: float = 0.003
    date_future: float = 0.003
    date_order: float = 0.005
    range: float = 0.004
    orphan: float = 0.005
    late: float = 0.01
    duplicate: float = 0.01
    modified: float = 0.01
    revoked: float = 0.005
    # identity variants on patient records (not defects: the record stays valid)
    homophone: float = 0.02
    missing_id: float = 0.02
    other_phone: float = 0.03
    nl_merger: float = 0.01  # the local n/l, -n/-ng, z/zh c/ch s/sh mergers in a name
    # share of each institution's true activity that never reaches the platform (卫统 > uploads)
    data_loss: float = 0.02

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int | float) or not 0 <= v <= 0.2:
                raise Invalid(f"缺陷比例 {f.name}={v!r} 无效：应在 0 到 0.2 之间")

    def rate(self, rule: str) -> float:
        """The rate of one rule."""
        return float(getattr(self, rule))

    @classmethod
    def none(cls) -> DefectRates:
        """No defects, no variants, no data loss (a clean city)."""
        return cls(**{f.name: 0.0 for f in fields(cls)})


@dataclass(frozen=True)
class Targets:
    """Which fields each rule may corrupt in one dataset (empty: the rule does not apply)."""

    key: tuple[str, ...]
    links: dict[str, str]  # link field → its target dataset (first field of each link)
    by_rule: dict[str, tuple[str, ...]]
    order: tuple[tuple[str, str], ...]  # (field to change, reference field); changed = reference ± days
    alter: str | None  # the field a `modified` record's older version differs in
    key_is_link: bool  # the business key is itself a link (extra rows need a parent record of their own)


@cache
def targets(ds: Dataset) -> Targets:
    """The corruptible fields of a dataset, per rule."""
    key = tuple(ds.business_key)
    links = {lk.fields[0]: lk.dataset for lk in ds.links}
    kinds = {f.name: f for f in ds.fields}
    plain = [
        f for f in ds.fields if f.name not in COMMON_FIELD_NAMES and f.name not in key and f.name not in links
    ]
    by: dict[str, list[str]] = {r: [] for r in ROW_RULES}
    for f in plain:
        if f.required and f.name != ds.event_time and f.type != "id_number":
            by["required"].append(f.name)
        typed = f.type in ("integer", "decimal") or (
            f.type in ("date", "datetime") and f.name != ds.event_time
        )
        if typed and f.name != "birth_date":
            by["type"].append(f.name)
        if f.type == "code" and f.code_system and f.code_system not in ("department", "area"):
            by["code"].append(f.name)
        if f.type == "id_number":
            by["id_checksum"].append(f.name)
        bounded = (f.maximum is not None and f.maximum < 1e6) or (f.minimum is not None and f.minimum >= 0)
        if f.type in ("integer", "decimal") and bounded:
            by["range"].append(f.name)
    if "birth_date" in kinds:
        by["date_range"].append("birth_date")
    elif ds.event_time:
        by["date_range"].append(ds.event_time)
    future = ds.event_time or next((f.name for f in plain if f.type == "datetime"), None)
    if future and kinds[future].type in ("date", "datetime"):
        by["date_future"].append(future)
    order: list[tuple[str, str]] = []
    for early, late in ORDER_PAIRS:
        if early in kinds and late in kinds and kinds[early].type == kinds[late].type:
            # change the field that is not the event time, so partitioning and timeliness stay put
            order.append((late, early) if late != ds.event_time else (early, late))
    if order:
        by["date_order"].append(order[0][0])
    by["orphan"] = [lk.fields[0] for lk in ds.links if len(lk.fields) == 1]
    if ds.realtime and ds.event_time and kinds[ds.event_time].type == "datetime":
        by["late"].append("collected_at")
    money = [f.name for f in plain if f.type == "decimal" and ("fee" in f.name or "amount" in f.name)]
    text = [f.name for f in plain if f.type == "string" and (f.max_length or 0) >= 50]
    alter = money[0] if money else (text[0] if text else None)
    return Targets(
        key=key,
        links=links,
        by_rule={r: tuple(v) for r, v in by.items()},
        order=tuple(order[:1]),
        alter=alter,
        key_is_link=len(key) == 1 and key[0] in links,
    )


@cache
def bad_code(system: str) -> str:
    """A value that is not a code of the system (sex 7, an unknown ICD-10 category, ...)."""
    for candidate in ("7", "99", "X9", "Y99.9", "ZZ", "000"):
        if not codes.in_code_system(system, candidate):
            return candidate
    raise ValueError(f"no invalid code found for {system}")


def _set(table: pa.Table, name: str, values: pa.Array | pa.Scalar | str | None) -> pa.Table:
    i = table.schema.get_field_index(name)
    n = table.num_rows
    if isinstance(values, str) or values is None:
        arr = pa.array([values] * n, pa.string())
    elif isinstance(values, pa.Scalar):
        arr = pa.array([values.as_py()] * n, pa.string())
    else:
        arr = values
    return table.set_column(i, name, arr)


def split_fields(n: int, options: tuple[str, ...]) -> list[tuple[str, np.ndarray]]:
    """Spread n rows round-robin over the candidate fields."""
    idx = np.arange(n)
    return [(f, idx[idx % len(options) == j]) for j, f in enumerate(options)]


def corrupt(ds: Dataset, rule: str, rows: pa.Table, gen: np.random.Generator) -> tuple[pa.Table, list[str]]:
    """Break one rule in every row of `rows` (copies with fresh keys); the rows and the field per row."""
    t = targets(ds)
    options = t.by_rule[rule]
    n = rows.num_rows
    field_of = [""] * n
    parts: list[pa.Table] = []
    for name, idx in split_fields(n, options):
        if len(idx) == 0:
            continue
        part = rows if len(idx) == n else rows.take(pa.array(idx))
        f = ds.field(name)
        k = part.num_rows
        if rule == "required":
            part = _set(part, name, None)
        elif rule == "type":
            part = _set(part, name, "不详")
        elif rule == "code":
            part = _set(part, name, bad_code(f.code_system or ""))
        elif rule == "id_checksum":
            part = _set(part, name, _typo(part.column(name), gen))
        elif rule == "date_range":
            value = ANCIENT_DATE if f.type == "date" else ANCIENT_DATE + " 08:00:00"
            part = _set(part, name, value)
        elif rule == "date_future":
            days = gen.integers(0, 365, size=k)
            base = (np.datetime64(f"{FUTURE_YEAR}-01-01") - np.datetime64("1970-01-01")).astype(np.int64)
            if f.type == "date":
                part = _set(part, name, vec.dates(base + days))
            else:
                secs = (base + days) * 86400 + gen.integers(8 * 3600, 17 * 3600, size=k)
                part = _set(part, name, vec.datetimes(secs))
        elif rule == "date_order":
            changed, ref = t.order[0]
            shift = gen.integers(1, 6, size=k).astype(np.int64)
            # moving the later field before the reference, or the earlier field after it
            sign = -1 if (ref, changed) in ORDER_PAIRS else 1
            col = part.column(ref)
            if f.type == "date":
                d = pc.cast(col, pa.date32()).cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
                part = _set(part, changed, vec.dates(d + sign * shift))
            else:
                delta = shift * 86400 + gen.integers(0, 3600, size=k)
                part = _set(part, changed, vec.datetimes(_seconds(col) + sign * delta))
        elif rule == "range":
            lo, hi = f.minimum, f.maximum
            if hi is not None and hi < 1e6:
                v = np.full(k, hi) + gen.integers(1, 50, size=k) * max(1.0, hi / 100)
            else:
                v = np.full(k, (lo or 0.0)) - gen.integers(1, 50, size=k)
            text = vec.text(np.round(v).astype(np.int64)) if f.type == "integer" else _signed_decimal(v)
            part = _set(part, name, text)
        elif rule == "orphan":
            target = t.links.get(name, "x")
            prefix = "NX" + target[:2].upper()
            part = _set(part, name, vec.padded(gen.integers(0, 10**9, size=k), 10, prefix))
        elif rule == "late":
            ev = _seconds(part.column(ds.event_time or "updated_at"))
            late = ev + gen.integers(LATE_DAYS[0] * 86400, LATE_DAYS[1] * 86400, size=k)
            part = _set(part, "collected_at", vec.datetimes(late))
        for j in idx:
            field_of[int(j)] = name
        parts.append(part)
    if not parts:
        return rows.slice(0, 0), []
    out = pa.concat_tables(parts)
    order = [j for _, idx in split_fields(n, options) for j in idx.tolist()]
    return out, [field_of[j] for j in order]


def _seconds(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    ts = pc.strptime(col, format="%Y-%m-%d %H:%M:%S", unit="s", error_is_null=True)
    return np.asarray(ts.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def seconds(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Datetime text → seconds since 1970 (local wall clock)."""
    return _seconds(col)


def _signed_decimal(v: np.ndarray) -> pa.Array:
    neg = v < 0
    body = vec.decimal(np.abs(v), 2)
    return pc.if_else(pa.array(neg), vec.join("-", body), body)


def _typo(col: pa.ChunkedArray | pa.Array, gen: np.random.Generator) -> pa.Array:
    from rhip.synth.residents import typo_id

    values = col.to_pylist()
    return pa.array([typo_id(v, gen) if v else v for v in values], pa.string())
