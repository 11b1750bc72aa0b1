"""Incremental linking: a batch of incoming patient records is linked to persons by fetching candidates
through the indexed blocking keys (a handful of IN queries per batch, not one per record), scoring them
with the saved model, and writing persons, links and review items in the caller's transaction.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.config import Settings
from rhip.identity import features as feat
from rhip.identity.models import ACTIVE, OPEN, PatientRecord, Person, Review
from rhip.identity.scoring import COMPARISONS, Model, Scored, load_model

CHUNK = 500  # values per IN list
OR_GROUP = 8  # IN lists per statement (OR of indexed lookups; under SQLite's parameter limit)
MAX_PER_KEY = 200  # candidates kept per key value (a phone shared by a whole clinic says nothing)
TF_MIN_RECORDS = 10_000  # below this many records, name frequencies are too noisy to weigh


@dataclass(frozen=True)
class Bands:
    """The probability thresholds of the three bands."""

    auto: float
    review: float

    def band(self, probability: float) -> str:
        """'auto', 'review' or 'new'."""
        if probability >= self.auto:
            return "auto"
        if probability >= self.review:
            return "review"
        return "new"


@cache
def default_bands() -> Bands:
    """The bands from Settings (RHIP_IDENTITY_AUTO_THRESHOLD, RHIP_IDENTITY_REVIEW_THRESHOLD)."""
    s = Settings()
    return Bands(auto=s.identity_auto_threshold, review=s.identity_review_threshold)


@dataclass
class Incoming:
    """One patient record to link, as the institution sent it."""

    institution_code: str
    local_id: str
    source: str
    id_number: str | None = None
    name: str | None = None
    birth_date: date | None = None
    sex: str | None = None
    phone: str | None = None
    district: str | None = None
    features: feat.Features = field(init=False)

    def __post_init__(self) -> None:
        self.features = feat.derive(
            id_number=self.id_number,
            name=self.name,
            birth_date=self.birth_date,
            sex=self.sex,
            phone=self.phone,
            district=self.district,
        )


@dataclass
class Linked:
    """The outcome for one incoming record."""

    person_id: str
    band: str
    probability: float
    record_id: int | None = None
    candidate_person_id: str | None = None


@dataclass
class _Cand:
    key: int  # record id (negative: a record of this batch not yet written)
    person_id: str
    f: feat.Features


def features_of(r: Any) -> feat.Features:
    """The features stored on a record row."""
    return feat.Features(
        id_number=r.id_number,
        id_valid=bool(r.id_valid),
        id_converted=False,
        guardian_id=r.guardian_id,
        name=r.name,
        py=r.py,
        py_loose=r.py_loose,
        birth_date=r.birth_date,
        sex=r.sex,
        phone=r.phone,
        district=r.district,
    )


class _Index:
    """Candidates by blocking key: those fetched from SQL and this batch's records."""

    def __init__(self) -> None:
        self.by: dict[str, dict[str, list[_Cand]]] = {k: defaultdict(list) for k in ("id", "nb", "ph", "bd")}

    def add(self, c: _Cand) -> None:
        f = c.f
        for kind, value in (
            ("id", f.id_number),
            ("nb", f.key_name_birth),
            ("ph", f.phone),
            ("bd", f.key_birth_district),
        ):
            if value:
                bucket = self.by[kind][value]
                if len(bucket) < MAX_PER_KEY:
                    bucket.append(c)

    def candidates(self, f: feat.Features) -> list[_Cand]:
        seen: dict[int, _Cand] = {}
        lookups: list[tuple[str, str | None]] = [("id", f.id_number), ("ph", f.phone)]
        lookups += [("nb", k) for k in f.name_birth_keys()]
        lookups.append(("bd", f.key_birth_district))
        for kind, value in lookups:
            if value:
                for c in self.by[kind].get(value, ()):
                    if kind != "bd" or f.birth_district_block(c.f):  # as the full link blocks
                        seen.setdefault(c.key, c)
        return list(seen.values())


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    vals = sorted(set(values))
    for i in range(0, len(vals), CHUNK):
        yield vals[i : i + CHUNK]


CAND_COLUMNS = (
    PatientRecord.id,
    PatientRecord.person_id,
    PatientRecord.institution_code,
    PatientRecord.local_id,
    PatientRecord.pinned,
    PatientRecord.id_number,
    PatientRecord.id_valid,
    PatientRecord.guardian_id,
    PatientRecord.name,
    PatientRecord.py,
    PatientRecord.py_loose,
    PatientRecord.birth_date,
    PatientRecord.sex,
    PatientRecord.phone,
    PatientRecord.district,
)


_FETCH_ONE = select(*CAND_COLUMNS).where(
    or_(
        PatientRecord.id_number == bindparam("id"),
        PatientRecord.key_name_birth.in_(bindparam("nb", expanding=True)),
        PatientRecord.phone == bindparam("ph"),
        PatientRecord.key_birth_district == bindparam("bd"),
        (PatientRecord.institution_code == bindparam("inst"))
        & (PatientRecord.local_id == bindparam("local")),
    )
)


def _fetch_one(session: Session, it: Incoming) -> list[Any]:
    """The single-record fetch: one prepared statement (building IN clauses costs more than the query)."""
    f = it.features
    params = {
        "id": f.id_number,
        "nb": f.name_birth_keys() or [""],
        "ph": f.phone,
        "bd": f.key_birth_district,
        "inst": it.institution_code,
        "local": it.local_id,
    }
    return list(session.connection().execute(_FETCH_ONE, params))


def _fetch(session: Session, items: Sequence[Incoming]) -> list[Any]:
    """Stored records sharing a blocking key with any incoming record, or being one of them."""
    if len(items) == 1:
        return _fetch_one(session, items[0])
    wanted: dict[str, set[str]] = {"id": set(), "nb": set(), "ph": set(), "bd": set()}
    by_inst: dict[str, set[str]] = defaultdict(set)
    for it in items:
        f = it.features
        by_inst[it.institution_code].add(it.local_id)
        if f.id_number:
            wanted["id"].add(f.id_number)
        if f.phone:
            wanted["ph"].add(f.phone)
        wanted["nb"].update(f.name_birth_keys())
        if f.key_birth_district:
            wanted["bd"].add(f.key_birth_district)
    columns = {
        "id": PatientRecord.id_number,
        "nb": PatientRecord.key_name_birth,
        "ph": PatientRecord.phone,
        "bd": PatientRecord.key_birth_district,
    }
    rows: dict[int, Any] = {}
    conds: list[ColumnElement[bool]] = []
    for kind, values in wanted.items():
        conds.extend(columns[kind].in_(chunk) for chunk in _chunks(values))
    for inst, locals_ in by_inst.items():
        conds.extend(
            (PatientRecord.institution_code == inst) & PatientRecord.local_id.in_(chunk)
            for chunk in _chunks(locals_)
        )
    conn = session.connection()  # Core: the ORM's per-statement overhead is most of a lone link's time
    for i in range(0, len(conds), OR_GROUP):
        for r in conn.execute(select(*CAND_COLUMNS).where(or_(*conds[i : i + OR_GROUP]))):
            rows[r.id] = r
    return list(rows.values())


class _NameFreq:
    """Full-name term frequencies over the stored records (and this batch's)."""

    def __init__(self, session: Session, names: set[str]) -> None:
        # the largest record id stands for the count: count(*) reads every row on SQLite
        conn = session.connection()
        self.total = int(conn.scalar(select(func.max(PatientRecord.id))) or 0)
        self.counts: dict[str, int] = defaultdict(int)
        if self.total >= TF_MIN_RECORDS:
            for chunk in _chunks(names):
                q = (
                    select(PatientRecord.name, func.count())
                    .where(PatientRecord.name.in_(chunk))
                    .group_by(PatientRecord.name)
                )
                for name, n in conn.execute(q):
                    self.counts[str(name)] = int(n)

    def add(self, name: str | None) -> None:
        self.total += 1
        if name:
            self.counts[name] += 1

    def __call__(self, name: str) -> float:
        if self.total < TF_MIN_RECORDS:
            return 0.0  # no adjustment
        return max(self.counts.get(name, 0), 1) / self.total


def new_person_id() -> str:
    """A fresh EMPI id: P + 16 hex digits."""
    return "P" + secrets.token_hex(8).upper()


def levels_of(s: Scored) -> dict[str, int]:
    """Each comparison's level, by comparison name."""
    return {c.name: lv for c, lv in zip(COMPARISONS, s.levels, strict=True)}


@dataclass(frozen=True)
class Candidate:
    """A person a record may be, with its closest record and the pair's score."""

    person_id: str
    record_id: int
    score: Scored


def rank(session: Session, item: Incoming, *, model: Model | None = None) -> list[Candidate]:
    """The persons an incoming record may be, best first (nothing is written)."""
    model = model or load_model()
    index = _Index()
    for r in _fetch(session, [item]):
        if (r.institution_code, r.local_id) != (item.institution_code, item.local_id):
            index.add(_Cand(r.id, r.person_id, features_of(r)))
    tf = _NameFreq(session, {item.features.name} if item.features.name else set())
    return _ranked(index, item.features, model, tf, None)


def _ranked(
    index: _Index, f: feat.Features, model: Model, tf: _NameFreq, skip: int | None
) -> list[Candidate]:
    """Each candidate person once, with its best-scoring record, best first."""
    best: dict[str, Candidate] = {}
    for c in index.candidates(f):
        if c.key == skip:
            continue
        s = model.score(f, c.f, tf)
        got = best.get(c.person_id)
        if got is None or s.weight > got.score.weight:
            best[c.person_id] = Candidate(c.person_id, c.key, s)
    return sorted(best.values(), key=lambda c: c.score.weight, reverse=True)


def link_many(
    session: Session,
    items: Sequence[Incoming],
    *,
    model: Model | None = None,
    bands: Bands | None = None,
) -> list[Linked]:
    """Link incoming records in order (later ones can match earlier ones of the same batch)."""
    if not items:
        return []
    model = model or load_model()
    bands = bands or default_bands()
    stored = _fetch(session, items)
    index = _Index()
    existing: dict[tuple[str, str], Any] = {}
    for r in stored:
        index.add(_Cand(r.id, r.person_id, features_of(r)))
        existing[(r.institution_code, r.local_id)] = r
    tf = _NameFreq(session, {it.features.name for it in items if it.features.name})
    when = now()
    out: list[Linked] = []
    new_persons: list[dict[str, Any]] = []
    new_rows: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    reviews: list[tuple[int, int, str, int | None, float, dict[str, int]]] = []  # (row ref, ...)
    seen_batch: dict[tuple[str, str], int] = {}
    aliases: list[tuple[int, int]] = []  # (position, first position of the same record in the batch)
    for pos, it in enumerate(items):
        f = it.features
        key = (it.institution_code, it.local_id)
        prior = existing.get(key)
        self_key: int | None = prior.id if prior is not None else None
        if key in seen_batch:
            self_key = -seen_batch[key] - 1
        ranked = _ranked(index, f, model, tf, self_key)
        top_p = ranked[0].score.probability if ranked else 0.0
        band = bands.band(top_p)
        if prior is not None and prior.pinned:
            person, band = prior.person_id, "auto"
        elif band == "auto":
            person = ranked[0].person_id
        elif prior is not None:
            person = prior.person_id
        elif key in seen_batch:
            person = out[seen_batch[key]].person_id
        else:
            person = new_person_id()
            new_persons.append({"id": person, "status": ACTIVE, "created_at": when, "updated_at": when})
        linked = Linked(person_id=person, band=band, probability=top_p)
        for cand in ranked:
            if cand.person_id != person and cand.score.probability >= bands.review:
                reviews.append(
                    (pos, cand.record_id, cand.person_id, None, cand.score.probability, levels_of(cand.score))
                )
                linked.candidate_person_id = linked.candidate_person_id or cand.person_id
        row = _row(it, f, person, band, top_p, model.version, when)
        if prior is not None:
            row["id"] = prior.id
            linked.record_id = prior.id
            updates.append(row)
            index.add(_Cand(prior.id, person, f))
        elif key in seen_batch:
            row["_pos"] = seen_batch[key]
            aliases.append((pos, seen_batch[key]))
            new_rows[_new_pos(new_rows, key)] = row
            index.add(_Cand(-seen_batch[key] - 1, person, f))
        else:
            row["_pos"] = pos
            new_rows.append(row)
            index.add(_Cand(-pos - 1, person, f))
            seen_batch[key] = pos
        tf.add(f.name)
        out.append(linked)
    _write(session, new_persons, new_rows, updates, reviews, out, when)
    for pos, first in aliases:
        out[pos].record_id = out[first].record_id
    return out


def _new_pos(rows: list[dict[str, Any]], key: tuple[str, str]) -> int:
    for i, r in enumerate(rows):
        if (r["institution_code"], r["local_id"]) == key:
            return i
    raise KeyError(key)


def _row(
    it: Incoming, f: feat.Features, person: str, band: str, p: float, version: str, when: Any
) -> dict[str, Any]:
    return {
        "institution_code": it.institution_code,
        "local_id": it.local_id,
        "person_id": person,
        "source": it.source,
        "name_raw": (it.name or "")[:64] or None,
        "id_raw": (it.id_number or "")[:32] or None,
        "birth_date": f.birth_date,
        "sex": f.sex,
        "phone": (f.phone or "")[:20] or None,
        "district": f.district[:64] if f.district else None,
        "name": f.name[:64] if f.name else None,
        "py": f.py[:160] if f.py else None,
        "py_loose": f.py_loose[:160] if f.py_loose else None,
        "id_number": f.id_number,
        "id_valid": f.id_valid,
        "guardian_id": f.guardian_id,
        "key_name_birth": (f.key_name_birth or "")[:180] or None,
        "key_birth_district": (f.key_birth_district or "")[:80] or None,
        "band": band,
        "probability": p,
        "linked_by": f"model:{version}",
        "linked_at": when,
        "updated_at": when,
    }


def _write(
    session: Session,
    new_persons: list[dict[str, Any]],
    new_rows: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    reviews: list[tuple[int, int, str, int | None, float, dict[str, int]]],
    out: list[Linked],
    when: Any,
) -> None:
    conn = session.connection()
    if new_persons:
        conn.execute(insert(Person), new_persons)
    id_of_pos: dict[int, int] = {}
    if new_rows:
        positions = [r.pop("_pos") for r in new_rows]
        if len(new_rows) == 1:
            ids = [conn.execute(insert(PatientRecord).returning(PatientRecord.id), new_rows[0]).scalar_one()]
        else:
            stmt = insert(PatientRecord).returning(PatientRecord.id, sort_by_parameter_order=True)
            ids = list(conn.execute(stmt, new_rows).scalars())
        id_of_pos = dict(zip(positions, ids, strict=True))
        for pos, rid in id_of_pos.items():
            out[pos].record_id = rid
    for row in updates:
        rid = row.pop("id")
        conn.execute(update(PatientRecord).where(PatientRecord.id == rid).values(**row))
    if reviews:
        wanted = {out[pos].record_id for pos, _, _, _, _, _ in reviews} - {None}
        have = {
            (r, p)
            for r, p in conn.execute(
                select(Review.record_id, Review.candidate_person_id).where(Review.record_id.in_(wanted))
            )
        }
        rows = []
        for pos, ckey, other, _, p, levels in reviews:
            got = out[pos].record_id
            if got is None or (got, other) in have:
                continue
            have.add((got, other))
            cand = ckey if ckey > 0 else id_of_pos.get(-ckey - 1)
            rows.append(
                {
                    "record_id": got,
                    "candidate_person_id": other,
                    "candidate_record_id": cand,
                    "probability": p,
                    "levels": levels,
                    "status": OPEN,
                    "created_at": when,
                }
            )
        if rows:
            conn.execute(insert(Review), rows)
