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

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.db import bulk
from rhip.identity import train
from rhip.identity.features import Features
from rhip.identity.linker import CAND_COLUMNS, Bands, default_bands, features_of, new_person_id
from rhip.identity.models import ACTIVE, MERGED, OPEN, PatientRecord, Person, Review
from rhip.identity.schemas import LinkSummary
from rhip.identity.scoring import MODEL_FILE, load_model

Progress = Callable[[str, int, int], None]  # (stage, done, total)

_COLUMNS = (*CAND_COLUMNS, PatientRecord.band, PatientRecord.probability)


def relink_all(
    session: Session, *, bands: Bands | None = None, progress: Progress | None = None
) -> LinkSummary:
    """Re-link every stored record (the caller owns the transaction)."""
    t0 = time.perf_counter()
    bands = bands or default_bands()
    tick = progress or (lambda stage, done, total: None)
    rows: list[Any] = list(session.execute(select(*_COLUMNS).order_by(PatientRecord.id)).all())
    n = len(rows)
    tick("读取记录", n, n)
    cols: dict[str, list[Any]] = {c: [] for c in train.SPLINK_COLUMNS}
    feats: list[Features] = []
    for i, r in enumerate(rows):
        f = features_of(r)
        feats.append(f)
        train.append_features(cols, i, f)
    if n == 0:
        return counts(session, seconds=time.perf_counter() - t0)
    pairs = train.predict(train.splink_table(cols), threshold=bands.review, model=MODEL_FILE)
    tick("打分", n, n)
    ls = pairs.column("unique_id_l").to_pylist()
    rs = pairs.column("unique_id_r").to_pylist()
    ps = pairs.column("match_probability").to_pylist()
    separated = _separated(session)
    record_ids = [r.id for r in rows]
    current = [r.person_id for r in rows]
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
    person_of = _assign(rows, members)
    when = now()
    version = f"model:{load_model().version}:full"
    changes: list[dict[str, Any]] = []
    new_ids = set(person_of.values()) - set(current)
    for i, r in enumerate(rows):
        person = r.person_id if r.pinned else person_of[roots[i]]
        size = len(members[roots[i]])
        band = "auto" if size > 1 else bands.band(best[i]) if best[i] < bands.auto else "new"
        if person != r.person_id or band != r.band or abs(best[i] - r.probability) > 1e-9:
            changes.append(
                {"id": r.id, "person_id": person, "band": band, "probability": best[i], "linked_by": version}
            )
    if new_ids:
        session.execute(
            insert(Person),
            [{"id": p, "status": ACTIVE, "created_at": when, "updated_at": when} for p in sorted(new_ids)],
        )
    _write_back(session, changes)
    tick("写回", n, n)
    _retire_empty(session, rows, person_of, roots, when)
    _queue(session, ls, rs, ps, roots, person_of, record_ids, separated, bands, when)
    return counts(session, seconds=time.perf_counter() - t0)


_CHANGED = ("id", "person_id", "band", "probability", "linked_by")


def _write_back(session: Session, changes: list[dict[str, Any]]) -> None:
    """The changed links: on PostgreSQL one UPDATE joined to a COPY-filled temporary table (an
    executemany of 2 million single-row UPDATEs was the full link's largest stage); else executemany."""
    conn = session.connection()
    if conn.dialect.name != "postgresql" or not changes:
        for i in range(0, len(changes), 5000):
            session.execute(update(PatientRecord), changes[i : i + 5000])
        return
    conn.exec_driver_sql(
        "CREATE TEMP TABLE identity_relink (id BIGINT PRIMARY KEY, person_id VARCHAR(32), band VARCHAR(8), "
        "probability DOUBLE PRECISION, linked_by VARCHAR(48)) ON COMMIT DROP"
    )
    bulk.fill(conn, "identity_relink", _CHANGED, ([c[k] for k in _CHANGED] for c in changes))
    conn.exec_driver_sql(
        "UPDATE identity_records r SET person_id = t.person_id, band = t.band, probability = t.probability, "
        "linked_by = t.linked_by FROM identity_relink t WHERE r.id = t.id"
    )
    conn.exec_driver_sql("DROP TABLE identity_relink")


def _separated(session: Session) -> set[tuple[int, str]]:
    q = select(Review.record_id, Review.candidate_person_id).where(Review.status == "separated")
    return {(int(r), str(p)) for r, p in session.execute(q)}


def _assign(rows: list[Any], members: dict[int, list[int]]) -> dict[int, str]:
    """Each cluster's person: the most common current person among its members not claimed by a
    larger cluster; otherwise a new id."""
    claimed: set[str] = set()
    out: dict[int, str] = {}
    for root, idx in sorted(members.items(), key=lambda kv: -len(kv[1])):
        pinned = [rows[i].person_id for i in idx if rows[i].pinned]
        votes = Counter(pinned or [rows[i].person_id for i in idx])
        choice = next((p for p, _ in votes.most_common() if p not in claimed), None)
        out[root] = choice or new_person_id()
        claimed.add(out[root])
    return out


def _retire_empty(
    session: Session, rows: list[Any], person_of: dict[int, str], roots: list[int], when: Any
) -> None:
    """Persons that lost every record point to the person that took their first one."""
    kept = {person_of[r] for r in roots} | {r.person_id for r in rows if r.pinned}
    successor: dict[str, str] = {}
    for i, r in enumerate(rows):
        if r.person_id not in kept:
            successor.setdefault(r.person_id, person_of[roots[i]])
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
