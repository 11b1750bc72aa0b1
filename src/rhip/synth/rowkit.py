"""Shared pieces of the synthetic table generators: the Rows container and vectorised helpers."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa

from rhip.registry import catalogue, directories
from rhip.registry.catalogue import Dataset
from rhip.synth import vec

PAYMENT = (["1", "2", "7", "5", "6", "8", "9"], [0.45, 0.35, 0.12, 0.03, 0.02, 0.02, 0.01])


@dataclass
class Rows:
    """Generated rows: text columns by field name, event times, and the patient index per row (or None)."""

    cols: dict[str, pa.Array]
    event: np.ndarray
    patient: np.ndarray | None


@cache
def datasets() -> dict[str, Dataset]:
    """The catalogue by name."""
    return {d.name: d for d in catalogue.datasets()}


@cache
def dept_names() -> dict[str, str]:
    """Department names by code."""
    return {d.code: d.name for d in directories.departments()}


def at(a: np.ndarray, i: np.ndarray) -> np.ndarray:
    """a[i], or zeros when a is empty (the other branch of an np.where is taken anyway)."""
    return a[i] if len(a) else np.zeros(len(i), dtype=a.dtype)


def pick(
    gen: np.random.Generator, n: int, values: list[str], p: list[float] | np.ndarray | None = None
) -> pa.Array:
    """n values drawn from a list (with probabilities p, normalised), as a text array."""
    if p is not None:
        p = np.asarray(p, dtype=np.float64)
        p = p / p.sum()
    return vec.take(values, gen.choice(len(values), size=n, p=p))


def repeat_children(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parent index and 0-based position of each child row, for per-parent child counts."""
    counts = np.asarray(counts, dtype=np.int64)
    parent = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    pos = np.arange(len(parent)) - np.repeat(starts, counts)
    return parent, pos


def split_counts(
    total: int, n: int, gen: np.random.Generator, *, first: bool = True, sigma: float = 0.8
) -> np.ndarray:
    """Split `total` children over n parents (lognormal weights); parent 0 gets at least one."""
    if n == 0 or total <= 0:
        return np.zeros(n, dtype=np.int64)
    w = gen.lognormal(0.0, sigma, size=n)
    if first:
        c = vec.spread(total - 1, w, gen)
        c[0] += 1
        return c
    return vec.spread(total, w, gen)
