"""Vectorised helpers: seeded generators, ID check characters, and numbers rendered as CSV text."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rhip.synth.lexicon import ID_CHECK, ID_WEIGHTS

_POW10 = 10 ** np.arange(16, -1, -1, dtype=np.int64)
_CHECK = np.array(list(ID_CHECK))


def rng(seed: int, *keys: str | int) -> np.random.Generator:
    """A generator that depends only on the seed and the keys (not on the order of calls)."""
    words = [int.from_bytes(hashlib.blake2b(str(k).encode(), digest_size=8).digest(), "little") for k in keys]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=seed, spawn_key=words)))


def check_chars(id17: np.ndarray) -> np.ndarray:
    """ISO 7064 MOD 11-2 check characters of 17-digit ID bodies given as int64."""
    digits = (id17[:, None] // _POW10[None, :]) % 10
    s = (digits * np.array(ID_WEIGHTS, dtype=np.int64)[None, :]).sum(axis=1) % 11
    return np.asarray(_CHECK[s])


def id_numbers(id17: np.ndarray, check: np.ndarray | None = None) -> pa.Array:
    """18-character ID numbers from 17-digit bodies (int64) and check characters."""
    if check is None:
        check = check_chars(id17)
    return pc.binary_join_element_wise(
        pa.array(id17).cast(pa.string()), pa.array(check.astype(object), pa.string()), ""
    )


def text(values: np.ndarray | Sequence[int]) -> pa.Array:
    """Integers as decimal text."""
    return pa.array(np.asarray(values, dtype=np.int64)).cast(pa.string())


def padded(values: np.ndarray, width: int, prefix: str = "") -> pa.Array:
    """Non-negative integers as zero-padded text with an optional prefix ('MZ' + 00001234)."""
    s = pc.utf8_lpad(text(values), width, "0")
    if prefix:
        s = pc.binary_join_element_wise(pa.scalar(prefix), s, "")
    return s


def money(fen: np.ndarray) -> pa.Array:
    """Amounts in integer fen as yuan text with two decimals (12345 → '123.45')."""
    fen = np.asarray(fen, dtype=np.int64)
    yuan = text(fen // 100)
    cents = pc.utf8_lpad(text(fen % 100), 2, "0")
    return pc.binary_join_element_wise(yuan, cents, ".")


def decimal(values: np.ndarray, places: int = 2) -> pa.Array:
    """Non-negative decimals as text with a fixed number of places."""
    scaled = np.round(np.asarray(values, dtype=np.float64) * 10**places).astype(np.int64)
    whole = text(scaled // 10**places)
    if places == 0:
        return whole
    frac = pc.utf8_lpad(text(scaled % 10**places), places, "0")
    return pc.binary_join_element_wise(whole, frac, ".")


def datetimes(seconds: np.ndarray) -> pa.Array:
    """Local wall-clock times given as seconds since 1970-01-01 → 'YYYY-MM-DD HH:MM:SS'."""
    return pa.array(np.asarray(seconds, dtype=np.int64)).cast(pa.timestamp("s")).cast(pa.string())


def dates(days: np.ndarray) -> pa.Array:
    """Days since 1970-01-01 → 'YYYY-MM-DD'."""
    return pa.array(np.asarray(days, dtype=np.int32)).cast(pa.date32()).cast(pa.string())


def compact_dates(days: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 → yyyymmdd as int64 (for ID numbers)."""
    d = np.asarray(days, dtype="datetime64[D]")
    y = d.astype("datetime64[Y]").astype(np.int64) + 1970
    m = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    return np.asarray(y * 10000 + m * 100 + day, dtype=np.int64)


@lru_cache(maxsize=4096)
def _vocab(choices: tuple[str, ...]) -> pa.Array:
    return pa.array(list(choices), pa.string())


def take(choices: Sequence[str], idx: np.ndarray) -> pa.Array:
    """Strings chosen by index from a small vocabulary."""
    return _vocab(tuple(choices)).take(pa.array(np.asarray(idx, dtype=np.int64)))


def join(*parts: pa.Array | str, sep: str = "") -> pa.Array:
    """Element-wise concatenation of string arrays and constant strings."""
    args = [pa.scalar(p) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*args, sep)


def spread(total: int, weights: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """Split an integer total into len(weights) non-negative integers proportional to weights, exactly."""
    n = len(weights)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum() if w.sum() > 0 else np.full(n, 1.0 / n)
    base = np.floor(w * total).astype(np.int64)
    rest = int(total - base.sum())
    if rest > 0:
        extra = gen.choice(n, size=rest, replace=True, p=w)
        base += np.bincount(extra, minlength=n)
    return base
