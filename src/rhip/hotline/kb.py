"""The assistant's knowledge base (data/kb.yaml) and its BM25 index (bm25s over rjieba words and bigrams).

Every question form of an entry is one document (its words plus the entry's answer, so an answer's words also
lead to it). A query's confidence combines how much of the query the best document covers with how far that
document's score stands above the best document of any other entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import bm25s
import numpy as np
import yaml

from rhip.hotline import nlp

DATA = Path(__file__).with_name("data")


@dataclass(frozen=True)
class Entry:
    """One knowledge-base entry: question forms, the answer and its source."""

    id: str
    topic: str
    questions: tuple[str, ...]
    answer: str
    source: str


@dataclass(frozen=True)
class Hit:
    """The best entry for a query and how sure the retrieval is (0–1)."""

    entry: Entry
    score: float
    confidence: float
    runner_up: Entry | None


@cache
def entries() -> tuple[Entry, ...]:
    """The knowledge base."""
    rows = yaml.safe_load((DATA / "kb.yaml").read_text(encoding="utf-8"))
    return tuple(Entry(r["id"], r["topic"], tuple(r["q"]), r["a"], r["source"]) for r in rows)


class Index:
    """BM25 over every question form of every entry."""

    def __init__(self, kb: tuple[Entry, ...]) -> None:
        self.kb = kb
        self.doc_entry: list[int] = []
        corpus: list[list[str]] = []
        self.doc_words: list[frozenset[str]] = []
        self.exact: dict[str, int] = {}  # a question asked exactly as the knowledge base words it
        for i, e in enumerate(kb):
            answer = nlp.tokens(e.answer)
            for q in e.questions:
                self.exact.setdefault(nlp.squeeze(q), i)
                words = nlp.tokens(q) + nlp.tokens(e.topic)
                corpus.append(words + words + answer)  # the question counts twice the answer
                self.doc_words.append(frozenset(words + answer))
                self.doc_entry.append(i)
        self.bm25 = bm25s.BM25()
        self.bm25.index(corpus, show_progress=False)
        self.vocab = set(self.bm25.vocab_dict)

    def search(self, text: str) -> Hit | None:
        """The best entry for a text, or None when no word of it is known."""
        same = self.exact.get(nlp.squeeze(text))
        if same is not None:
            return Hit(entry=self.kb[same], score=float("inf"), confidence=1.0, runner_up=None)
        query = [t for t in nlp.tokens(text) if t in self.vocab]
        if not query:
            return None
        scores = np.asarray(self.bm25.get_scores(query))
        order = np.argsort(-scores)
        best = int(order[0])
        top = float(scores[best])
        if top <= 0:
            return None
        entry = self.doc_entry[best]
        other = next((int(d) for d in order[1:] if self.doc_entry[int(d)] != entry), None)
        second = float(scores[other]) if other is not None else 0.0
        words = [t for t in nlp.tokens(text) if not t.startswith("#")]
        covered = sum(1 for w in words if w in self.doc_words[best]) / len(words) if words else 0.0
        margin = (top - second) / top
        confidence = 0.55 * covered + 0.25 * margin + 0.2 * min(1.0, top / 12.0)
        return Hit(
            entry=self.kb[entry],
            score=top,
            confidence=round(confidence, 3),
            runner_up=self.kb[self.doc_entry[other]] if other is not None else None,
        )


@cache
def index() -> Index:
    """The knowledge base's index, built once per process."""
    return Index(entries())
