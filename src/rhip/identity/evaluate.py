"""Accuracy of a linkage against the truth: pairwise and cluster precision, recall and F1."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


@dataclass(frozen=True)
class Accuracy:
    """Pairwise figures (every pair of records), cluster figures (exactly recovered persons)."""

    records: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    precision: float
    recall: float
    f1: float
    cluster_precision: float  # predicted clusters that are exactly a true person
    cluster_recall: float  # true persons recovered exactly as one cluster
    cluster_f1: float

    def as_dict(self) -> dict[str, float | int]:
        """A JSON-ready view."""
        return asdict(self)


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def accuracy(predicted: Sequence[Hashable], truth: Sequence[Hashable]) -> Accuracy:
    """Compare predicted cluster labels with the true person of each record (same order)."""
    if len(predicted) != len(truth):
        raise ValueError("predicted and truth differ in length")
    pred_sizes = Counter(predicted)
    true_sizes = Counter(truth)
    cells = Counter(zip(predicted, truth, strict=True))
    predicted_pairs = sum(_pairs(n) for n in pred_sizes.values())
    true_pairs = sum(_pairs(n) for n in true_sizes.values())
    correct = sum(_pairs(n) for n in cells.values())
    precision = correct / predicted_pairs if predicted_pairs else 1.0
    recall = correct / true_pairs if true_pairs else 1.0
    exact = sum(1 for (p, t), n in cells.items() if n == pred_sizes[p] == true_sizes[t])
    c_prec = exact / len(pred_sizes) if pred_sizes else 1.0
    c_rec = exact / len(true_sizes) if true_sizes else 1.0
    return Accuracy(
        records=len(predicted),
        true_pairs=true_pairs,
        predicted_pairs=predicted_pairs,
        correct_pairs=correct,
        precision=precision,
        recall=recall,
        f1=_f1(precision, recall),
        cluster_precision=c_prec,
        cluster_recall=c_rec,
        cluster_f1=_f1(c_prec, c_rec),
    )


def exact_id_baseline(id_numbers: Sequence[str | None]) -> list[Hashable]:
    """The baseline: records with the same ID number as recorded (after trimming) are one person;
    records without one are each alone."""
    out: list[Hashable] = []
    for i, v in enumerate(id_numbers):
        text = (v or "").strip().upper()
        out.append(("id", text) if text else ("alone", i))
    return out
