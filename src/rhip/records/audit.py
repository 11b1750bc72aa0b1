"""The record-access log: every view (allowed or refused) written before the data is returned, chained by
SHA-256 so an edited, inserted or deleted row is found by `verify`. A failed write returns nothing.

The log is CHAINS independent chains (a person's rows always in the same one, by a CRC of the person id):
each writer locks only its chain's head until it commits, so views of different people do not queue on
one lock. Rows written before the split, and their head, are chain 0."""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.db.base import UtcDateTime
from rhip.db.engine import dialect_insert
from rhip.errors import Unavailable
from rhip.records.models import AccessLog, ChainHead
from rhip.security.service import Principal

GENESIS = "0" * 64
ANY = "*"  # the person of a log row for a read spanning people (an auditor's search)
CHAINS = 16


def chain_of(person_id: str) -> int:
    """The chain a person's access-log rows go to."""
    return zlib.crc32(person_id.encode("utf-8")) % CHAINS


def fields_text(row: AccessLog | dict[str, object]) -> str:
    """The canonical text of an entry's fields (sorted keys, compact JSON): what its hash covers."""
    get = row.get if isinstance(row, dict) else lambda k: getattr(row, k)
    at = get("at")
    fields = {
        "at": at.isoformat() if isinstance(at, datetime) else at,
        "actor": get("actor"),
        "role": get("role"),
        "institution_code": get("institution_code"),
        "person_id": get("person_id"),
        "action": get("action"),
        "basis": get("basis"),
        "outcome": get("outcome"),
        "detail": get("detail"),
    }
    return json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def digest(prev_hash: str, row: AccessLog | dict[str, object]) -> str:
    """The hash of one entry: SHA-256 of the previous entry's hash followed by the entry's fields text."""
    return hashlib.sha256((prev_hash + fields_text(row)).encode("utf-8")).hexdigest()


# PostgreSQL: the head moves and the row is appended in one statement. The UPDATE locks the chain's head row
# (a concurrent writer of the chain waits, then re-evaluates SET on the new head, so the chain never forks);
# its SET sees the old hash (kept as prev_hash) and computes the new one with the same SHA-256 as `digest`;
# the row takes its id from the log's sequence inside that lock, so a chain's ids rise in chain order.
_APPEND_PG = text(
    """
WITH h AS (
  UPDATE records_chain_head
     SET prev_hash = last_hash,
         last_hash = encode(sha256(convert_to(last_hash || :fields, 'UTF8')), 'hex'),
         last_id = nextval(pg_get_serial_sequence('records_access_log', 'id'))
   WHERE id = :head
  RETURNING last_id, prev_hash, last_hash
)
INSERT INTO records_access_log (id, at, actor, role, institution_code, person_id, action, basis, outcome,
                                detail, prev_hash, hash, chain)
SELECT last_id, :at, :actor, :role, :institution_code, :person_id, :action, :basis, :outcome, :detail,
       prev_hash, last_hash, :chain
FROM h
RETURNING id, prev_hash, hash"""
).bindparams(bindparam("at", type_=UtcDateTime()))


def write(
    session: Session,
    *,
    principal: Principal,
    person_id: str,
    action: str,
    basis: str,
    outcome: str,
    detail: str | None = None,
) -> AccessLog:
    """Append one entry (its chain's head row is locked, so concurrent writers never fork the chain).

    Raises Unavailable when the log cannot be written: the caller then returns nothing (fail closed).
    """
    t = now()
    values: dict[str, Any] = {
        "at": t.replace(microsecond=t.microsecond // 1000 * 1000),  # the same text after any database
        "actor": principal.subject[:128],
        "role": str(principal.role),
        "institution_code": principal.institution_code,
        "person_id": person_id[:40],
        "action": action,
        "basis": basis,
        "outcome": outcome,
        "detail": (detail or None) and detail[:300],
    }
    chain = chain_of(person_id[:40])
    try:
        if session.get_bind().dialect.name == "postgresql":
            return _append_pg(session, chain, values)
        return _append(session, chain, values)
    except SQLAlchemyError as exc:
        raise Unavailable("审计日志写入失败，本次调阅未返回任何数据", code="audit-unavailable") from exc


def _append_pg(session: Session, chain: int, values: dict[str, Any]) -> AccessLog:
    """One statement: move the chain's head and append the row (the head is created at its first write)."""
    params = {**values, "fields": fields_text(values), "head": chain + 1, "chain": chain}
    got = session.execute(_APPEND_PG, params).first()
    if got is None:  # the chain's first write: no head row yet
        _new_head(session, chain)
        got = session.execute(_APPEND_PG, params).one()
    # not added to the session: the row is written; callers read only its id and hashes
    return AccessLog(id=got.id, chain=chain, prev_hash=got.prev_hash, hash=got.hash, **values)


def _append(session: Session, chain: int, values: dict[str, Any]) -> AccessLog:
    """The head locked (SELECT … FOR UPDATE where the database has it), the row added, the head moved."""
    head = _locked_head(session, chain)
    row = AccessLog(**values, prev_hash=head.last_hash, chain=chain)
    row.hash = digest(head.last_hash, row)
    session.add(row)
    session.flush()
    head.prev_hash = head.last_hash
    head.last_id = row.id
    head.last_hash = row.hash
    session.flush()
    return row


def auditor_read(
    session: Session, *, principal: Principal, person_id: str | None, action: str, detail: str = ""
) -> None:
    """Log an auditor's read of the log itself (who looked at whom is personal data too); a search that
    spans people is logged against ANY. Written first, in the read's transaction (fail closed)."""
    write(
        session,
        principal=principal,
        person_id=person_id or ANY,
        action=action,
        basis="auditor",
        outcome="allowed",
        detail=detail,
    )


def _locked_head(session: Session, chain: int) -> ChainHead:
    """The chain's head, locked until the transaction ends (created at the chain's first write)."""
    # populate_existing: a head object left in this session by an earlier transaction is refreshed from
    # the locked row, never trusted (sessions keep objects across commits)
    lock = (
        select(ChainHead)
        .where(ChainHead.id == chain + 1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    head = session.execute(lock).scalar_one_or_none()
    if head is None:
        _new_head(session, chain)
        head = session.execute(lock).scalar_one()
    return head


def _new_head(session: Session, chain: int) -> None:
    """A chain's head at the genesis hash (a concurrent first writer's insert is let be)."""
    session.execute(
        dialect_insert(session, ChainHead)
        .values(id=chain + 1, last_id=0, last_hash=GENESIS)
        .on_conflict_do_nothing(index_elements=["id"])
    )


@dataclass(frozen=True)
class Verification:
    """The outcome of walking the chain."""

    checked: int
    broken_at: int | None
    reason: str | None


def verify(session: Session, *, batch: int = 5000) -> Verification:
    """Walk each chain in id order; the first entry whose hash or link does not hold, if any."""
    chains = set(session.scalars(select(ChainHead.id - 1)).all())
    chains |= set(session.scalars(select(AccessLog.chain).distinct()).all())
    checked = 0
    for chain in sorted(chains):
        v = _verify_chain(session, chain, batch)
        checked += v.checked
        if v.broken_at is not None:
            return Verification(checked, v.broken_at, v.reason)
    return Verification(checked, None, None)


def _verify_chain(session: Session, chain: int, batch: int) -> Verification:
    prev = GENESIS
    checked = 0
    last_id = 0
    while True:
        rows = session.scalars(
            select(AccessLog)
            .where(AccessLog.chain == chain, AccessLog.id > last_id)
            .order_by(AccessLog.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        for r in rows:
            if r.prev_hash != prev:
                return Verification(checked, r.id, "与上一条记录的链接断开（记录被删除或插入）")
            if digest(prev, r) != r.hash:
                return Verification(checked, r.id, "记录内容与其哈希不符（记录被修改）")
            prev = r.hash
            checked += 1
            last_id = r.id
    head = session.get(ChainHead, chain + 1)
    if head is not None and head.last_hash != prev:
        return Verification(checked, head.last_id, "链尾与最后一条记录不符（末尾记录被删除）")
    return Verification(checked, None, None)
