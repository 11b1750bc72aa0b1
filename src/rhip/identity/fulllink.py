"""The full re-link: every stored record scored by splink with the saved model (DuckDB, the blocking
rules), clustered at the auto-link threshold, and written back with stable person ids.

A data steward's decisions hold: pinned records keep their person, and a separated pair is never linked
again. A person left without records is marked merged into the person that took them, so its id still
resolves.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.identity import relink_io, train
from rhip.identity.linker import Bands, default_bands, new_person_id
from rhip.identity.models import ACTIVE, MERGED, OPEN, PatientRecord, Person, Review
from rhip.identity.schemas import LinkSummary
from rhip.identity.scoring import MODEL_FILE, load_model

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def relink_all(
    session: Session, *, bands: Bands | None = None, progress: Progress | None = None
) -> LinkSummary:
    """Re-link every stored record (the caller owns the transaction)."""
    t0 = time.perf_counter()
    bands = bands or default_bands()
    tick = progress or (lambda stage, done, total: None)
    conn = session.connection()
    records = relink_io.read_records(conn)
    n = records.num_rows
    tick("读取记录", n, n)
    if n == 0:
        return counts(session, seconds=time.perf_counter() - t0)
    pairs = train.predict(relink_io.splink_input(records), threshold=bands.review, model=MODEL_FILE)
    tick("打分", n, n)
    ls = pairs.column("unique_id_l").to_pylist()
    rs = pairs.column("unique_id_r").to_pylist()
    ps = pairs.column("match_probability").to_pylist()
    separated = _separated(session)
    record_ids: list[int] = records.column("id").to_pylist()
    current: list[str] = records.column("person_id").to_pylist()
    pinned: list[bool] = records.column("pinned").to_pylist()
    parent, find = train.union_find(n)
    best = [0.0] * n
    for a, b, p in zip(ls, rs, ps, strict=True):
        if (record_ids[a], current[b]) in separated or (record_ids[b], current[a]) in separated:
            continue
        best[a], best[b] = max(best[a], p), max(best[b], p)
        if p >= bands.auto:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    tick("聚类", n, n)
    roots = [find(i) for i in range(n)]
    members: dict[int, list[int]] = defaultdict(list)
    for i, root in enumerate(roots):
        members[root].append(i)
    person_of = _assign(current, pinned, members)
    when = now()
    # probabilities kept to 6 decimals: a re-run's last-bit differences are not changes
    prob = np.round(np.asarray(best, dtype=np.float64), PROBABILITY_DECIMALS)
    root_np = np.asarray(roots, dtype=np.int64)
    size = np.bincount(root_np, minlength=n)[root_np]
    band = np.where(
        size > 1,
        "auto",
        np.where(prob >= bands.auto, "new", np.where(prob >= bands.review, "review", "new")),
    )
    person = [c if pin else person_of[r] for c, pin, r in zip(current, pinned, roots, strict=True)]
    person_arr, band_arr, prob_arr = (
        pa.array(person, pa.string()),
        pa.array(band, pa.string()),
        pa.array(prob),
    )
    mask = relink_io.changed(records, person_arr, band_arr, prob_arr)
    version = f"model:{load_model().version}:full"
    changes = pa.table(
        {
            "id": records.column("id"),
            "person_id": person_arr,
            "band": band_arr,
            "probability": prob_arr,
            "linked_by": pa.repeat(pa.scalar(version), n),
        }
    ).filter(mask)
    new_ids = set(person_of.values()) - set(current)
    if new_ids:
        session.execute(
            insert(Person),
            [{"id": p, "status": ACTIVE, "created_at": when, "updated_at": when} for p in sorted(new_ids)],
        )
    relink_io.write_back(conn, changes)
    tick("写回", n, n)
    _retire_empty(session, current, pinned, person_of, roots, when)
    _queue(session, ls, rs, ps, roots, person_of, record_ids, separated, bands, when)
    return counts(session, seconds=time.perf_counter() - t0)


PROBABILITY_DECIMALS = 6


def _separated(session: Session) -> set[tuple[int, str]]:
    q = select(Review.record_id, Review.candidate_person_id).where(Review.status == "separated")
    return {(int(r), str(p)) for r, p in session.execute(q)}


def _assign(current: list[str], pinned: list[bool], members: dict[int, list[int]]) -> dict[int, str]:
    """Each cluster's person: the most common current person among its members not claimed by a
    larger cluster; otherwise a new id."""
    claimed: set[str] = set()
    out: dict[int, str] = {}
    for root, idx in sorted(members.items(), key=lambda kv: -len(kv[1])):
        held = [current[i] for i in idx if pinned[i]]
        votes = Counter(held or [current[i] for i in idx])
        choice = next((p for p, _ in votes.most_common() if p not in claimed), None)
        out[root] = choice or new_person_id()
        claimed.add(out[root])
    return out


def _retire_empty(
    session: Session,
    current: list[str],
    pinned: list[bool],
    person_of: dict[int, str],
    roots: list[int],
    when: Any,
) -> None:
    """Persons that lost every record point to the person that took their first one."""
    kept = set(person_of.values()) | {c for c, pin in zip(current, pinned, strict=True) if pin}
    successor: dict[str, str] = {}
    for i, c in enumerate(current):
        if c not in kept:
            successor.setdefault(c, person_of[roots[i]])
    if successor:
        session.execute(
            update(Person),
            [
                {"id": old, "status": MERGED, "merged_into": new, "updated_at": when}
                for old, new in successor.items()
            ],
        )


def _queue(
    session: Session,
    ls: list[int],
    rs: list[int],
    ps: list[float],
    roots: list[int],
    person_of: dict[int, str],
    record_ids: list[int],
    separated: set[tuple[int, str]],
    bands: Bands,
    when: Any,
) -> None:
    """Review items for the uncertain pairs that ended in different persons."""
    have = {
        (int(r), str(p)) for r, p in session.execute(select(Review.record_id, Review.candidate_person_id))
    }
    rows = []
    for a, b, p in zip(ls, rs, ps, strict=True):
        if p >= bands.auto or roots[a] == roots[b]:
            continue
        rec, other = (a, b) if record_ids[a] > record_ids[b] else (b, a)
        key = (record_ids[rec], person_of[roots[other]])
        if key in have or key in separated:
            continue
        have.add(key)
        rows.append(
            {
                "record_id": key[0],
                "candidate_person_id": key[1],
                "candidate_record_id": record_ids[other],
                "probability": p,
                "levels": None,
                "status": OPEN,
                "created_at": when,
            }
        )
    for i in range(0, len(rows), 5000):
        session.execute(insert(Review), rows[i : i + 5000])


def counts(session: Session, *, seconds: float = 0.0) -> LinkSummary:
    """Records, persons with records, records per band and open review items."""
    bands = dict(session.execute(select(PatientRecord.band, func.count()).group_by(PatientRecord.band)).all())
    persons = session.scalar(select(func.count(func.distinct(PatientRecord.person_id)))) or 0
    queue = session.scalar(select(func.count()).select_from(Review).where(Review.status == OPEN)) or 0
    return LinkSummary(
        records=sum(bands.values()),
        persons=int(persons),
        auto=int(bands.get("auto", 0)),
        review=int(bands.get("review", 0)),
        new=int(bands.get("new", 0)),
        review_queue=int(queue),
        seconds=round(seconds, 3),
    )
