"""Intake services: receipts (pending → committed), problem lists, daily counts, recovery, and `ingest()`,
the driver every entry point (API, CLI, demo, FHIR, CDA) uses to run a batch atomically.

Atomicity protocol: (1) the receipt is committed as `pending` with this host and pid; (2) the lake tables
the batch will touch are recorded on it; (3) one Delta commit per table, every row tagged `_batch`;
(4) one SQL transaction marks the receipt committed with its counts, problems, daily counts and rollups.
A batch whose receipt is not committed is invisible (readers exclude pending ids) and `recover()` deletes
its rows once its process is gone.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rhip import clock
from rhip.db.engine import Database
from rhip.db.locks import db_lock
from rhip.errors import Forbidden, NotFound, RhipError
from rhip.intake import formats, pipeline, reading, store
from rhip.intake.commit import (
    COUNT_FIELDS as COUNT_FIELDS,
    abort_batch,
    create_batch,
    fail_batch,
    finish_batch,
    plan_batch,
    prepare,
)
from rhip.intake.models import (
    ABORTED,
    COMMITTED,
    FAILED,
    PENDING,
    CdaDocument,
    IntakeBatch,
    IntakeBatchTable,
    IntakeDailyCount,
    IntakeProblem,
)
from rhip.lake.store import Lake
from rhip.security.roles import Role
from rhip.security.service import Principal

CHANNELS = {"batch": "定时上传", "realtime": "实时上传", "fhir": "FHIR", "cda": "CDA 文档"}
log = logging.getLogger(__name__)
STATUS_LABELS = {PENDING: "处理中", COMMITTED: "已入库", FAILED: "已拒收", ABORTED: "已中止"}


def recover(session: Session, *, lake: Lake) -> list[str]:
    """Abort every pending batch whose process has gone (run at start-up); returns their ids."""
    done = []
    for batch in session.scalars(select(IntakeBatch).where(IntakeBatch.status == PENDING)).all():
        if store.process_alive(batch.host, batch.pid):
            continue
        abort_batch(session, lake=lake, batch_id=batch.id)
        done.append(batch.id)
    return done


def record_cda(
    session: Session,
    *,
    batch_id: str,
    institution_code: str,
    document_id: str,
    doc_type: str,
    title: str,
    effective_time: datetime | None,
    sha256: str,
    content: str,
) -> bool:
    """Keep a received CDA document (once per institution and document id); False if already kept."""
    exists = session.scalar(
        select(CdaDocument.id).where(
            CdaDocument.institution_code == institution_code, CdaDocument.document_id == document_id
        )
    )
    if exists is not None:
        return False
    session.add(
        CdaDocument(
            batch_id=batch_id,
            institution_code=institution_code,
            document_id=document_id,
            doc_type=doc_type,
            title=title,
            effective_time=effective_time,
            received_at=clock.now(),
            sha256=sha256,
            content=content,
        )
    )
    session.flush()
    return True


def cda_counts(session: Session, *, institution_code: str | None = None) -> list[tuple[str, str, int]]:
    """CDA documents kept, per institution and document type: (institution, doc_type, count)."""
    stmt = (
        select(CdaDocument.institution_code, CdaDocument.doc_type, func.count())
        .group_by(CdaDocument.institution_code, CdaDocument.doc_type)
        .order_by(CdaDocument.institution_code, CdaDocument.doc_type)
    )
    if institution_code:
        stmt = stmt.where(CdaDocument.institution_code == institution_code)
    return [(str(i), str(t), int(n)) for i, t, n in session.execute(stmt).all()]


def pending_batch_ids(session: Session) -> list[str]:
    """Ids of batches not (yet) committed: their lake rows must not be read."""
    return list(session.scalars(select(IntakeBatch.id).where(IntakeBatch.status == PENDING)))


def committed_batch_ids(session: Session) -> list[str]:
    """Ids of committed batches in commit order (for services that absorb what intake stored)."""
    q = select(IntakeBatch.id).where(IntakeBatch.status == COMMITTED)
    return list(session.scalars(q.order_by(IntakeBatch.committed_at, IntakeBatch.id)))


def visible_sql(session: Session, table: str) -> Any:
    """DuckDB SQL for the current records of a catalogue table, without uncommitted batches."""
    return store.current_sql(table, exclude_batches=pending_batch_ids(session))


def get_batch(session: Session, *, batch_id: str, principal: Principal | None = None) -> IntakeBatch:
    """One receipt; an institution's principal sees only its own."""
    batch = session.get(IntakeBatch, batch_id)
    if batch is None:
        raise NotFound(f"回执不存在：{batch_id}", code="batch-not-found")
    if principal is not None and not can_see(principal, batch.institution_code):
        raise Forbidden("只能查看本机构的上传回执", code="other-institution")
    return batch


def can_see(principal: Principal, institution_code: str) -> bool:
    """Managers and admins see every institution; others only their own."""
    if principal.role in (Role.manager, Role.admin, Role.auditor):
        return True
    return principal.institution_code == institution_code


def batch_tables(session: Session, *, batch_id: str) -> list[IntakeBatchTable]:
    """Per-table counts of a batch."""
    return list(
        session.scalars(
            select(IntakeBatchTable)
            .where(IntakeBatchTable.batch_id == batch_id)
            .order_by(IntakeBatchTable.id)
        )
    )


def get_problems(
    session: Session, *, batch_id: str, limit: int | None = 1000, offset: int = 0, table: str | None = None
) -> tuple[int, list[IntakeProblem]]:
    """A batch's problem list (total, page), in table and row order."""
    where = [IntakeProblem.batch_id == batch_id]
    if table:
        where.append(IntakeProblem.table_name == table)
    total = int(session.scalar(select(func.count()).select_from(IntakeProblem).where(*where)) or 0)
    stmt = select(IntakeProblem).where(*where).order_by(IntakeProblem.id).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return total, list(session.scalars(stmt))


def rule_counts(session: Session, *, batch_id: str) -> dict[str, int]:
    """Rejected records per rule code in a batch."""
    rows = session.execute(
        select(IntakeProblem.rule, func.count())
        .where(IntakeProblem.batch_id == batch_id)
        .group_by(IntakeProblem.rule)
    ).all()
    return {str(r): int(n) for r, n in rows}


def recent_batches(
    session: Session, *, institution_code: str | None = None, limit: int = 50
) -> list[IntakeBatch]:
    """Newest receipts, optionally of one institution."""
    stmt = select(IntakeBatch).order_by(IntakeBatch.created_at.desc(), IntakeBatch.id.desc()).limit(limit)
    if institution_code:
        stmt = stmt.where(IntakeBatch.institution_code == institution_code)
    return list(session.scalars(stmt))


def daily_counts(
    session: Session,
    *,
    institution_code: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> list[IntakeDailyCount]:
    """Upload counts per institution, table and day (for 数据上传量 and 上传天数)."""
    stmt = select(IntakeDailyCount).order_by(
        IntakeDailyCount.institution_code, IntakeDailyCount.day, IntakeDailyCount.table_name
    )
    if institution_code:
        stmt = stmt.where(IntakeDailyCount.institution_code == institution_code)
    if start:
        stmt = stmt.where(IntakeDailyCount.day >= start)
    if end:
        stmt = stmt.where(IntakeDailyCount.day <= end)
    return list(session.scalars(stmt))


@dataclass
class Receipt:
    """What an entry point answers: the receipt id and the outcome."""

    batch_id: str
    institution_code: str
    outcome: pipeline.Outcome


def lake_of(root: Path) -> Lake:
    """The lake at a folder."""
    return Lake(root)


COMPACT_AFTER = 48  # small files in a partition before a batch's commit merges them (bounded, rare)


_DEFERRED: ContextVar[bool] = ContextVar("rhip_intake_compaction_deferred", default=False)


@contextmanager
def compaction_deferred() -> Iterator[None]:
    """Within this block, batches leave their small files for one compaction at the end (the demo: a
    month of ~600 batches re-merged the shared year partitions every 48 commits, each time with all the
    rows so far, and then compacted everything once more)."""
    token = _DEFERRED.set(True)
    try:
        yield
    finally:
        _DEFERRED.reset(token)


_SERIALISED: ContextVar[bool] = ContextVar("rhip_intake_commits_serialised", default=False)


@contextmanager
def commits_serialised() -> Iterator[None]:
    """Within this block, a receipt's SQL commit waits for every other serialised one (any process): several
    processes ingesting different institutions at once (the demo's workers) then link patients to the EMPI
    and absorb records one commit after another, as a single process would."""
    token = _SERIALISED.set(True)
    try:
        yield
    finally:
        _SERIALISED.reset(token)


def _commit_guard(db: Database) -> contextlib.AbstractContextManager[None]:
    return db_lock(db.engine, "intake-commit") if _SERIALISED.get() else contextlib.nullcontext()


def _tidy(lake: Lake, tables: list[str]) -> None:
    """Merge small files of the partitions this batch grew, once enough have accumulated.

    Many small batches (real-time forms, FHIR bundles) otherwise leave a file per table per batch, and
    every later dedup, link check and report reads them all. Compaction is only an optimisation: a
    conflict with a concurrent delete (recovery) just leaves the files for the next batch.
    """
    if _DEFERRED.get():
        return
    try:
        store.compact(lake, tables=tables, min_files=COMPACT_AFTER)
    except Exception as exc:  # deltalake raises several commit-conflict types
        log.warning("intake compaction skipped: %s", exc)


def ingest(
    db: Database,
    lake: Lake,
    *,
    institution_code: str,
    submitted_by: str,
    channel: str = "batch",
    uploads: list[reading.Upload] | None = None,
    frames: Mapping[str, pl.DataFrame | Future[pl.DataFrame]] | None = None,
    workdir: Path | None = None,
    progress: pipeline.Progress | None = None,
    on_committed: Callable[[Session, str], None] | None = None,
    now_utc: datetime | None = None,
    all_or_nothing: bool = False,
) -> Receipt:
    """Run one batch end to end (the entry points' driver; it owns its transactions, see module doc).

    `all_or_nothing`: any rejected record refuses the whole batch (Invalid `transaction-rejected`).
    """
    from rhip.registry import service as registry

    files = [
        {"filename": u.filename, "table": u.table, "bytes": u.path.stat().st_size} for u in uploads or []
    ]
    with db.session() as s, s.begin():
        registry.get_institution(s, code=institution_code)
        batch_id = create_batch(
            s, institution_code=institution_code, channel=channel, submitted_by=submitted_by, files=files
        ).id
    reader = ThreadPoolExecutor(max_workers=1)  # reads the next table's files while one is processed
    try:
        todo: Mapping[str, pl.DataFrame | Future[pl.DataFrame]]
        if frames is None:
            if workdir is None:
                raise ValueError("workdir is needed to read uploads")
            todo = reading.read_uploads_ahead(uploads or [], workdir=workdir, pool=reader)
        else:
            todo = frames

        def plan(tables: list[str]) -> None:
            with db.session() as s2, s2.begin():
                plan_batch(s2, batch_id=batch_id, lake_tables=tables)

        with store.institution_lock(lake, institution_code, engine=db.engine):
            outcome = pipeline.process(
                lake,
                todo,
                institution_code=institution_code,
                batch_id=batch_id,
                now_utc=now_utc or clock.now(),
                progress=progress,
                before_write=plan,
                all_or_nothing=all_or_nothing,
            )
            ready = prepare(outcome, channel=channel, dialect=db.engine.dialect.name)
            with _commit_guard(db), db.session() as s, s.begin():
                finish_batch(s, batch_id=batch_id, outcome=outcome, prepared=ready)
                if on_committed is not None:
                    on_committed(s, batch_id)
            _tidy(lake, outcome.lake_tables)
    except RhipError as exc:
        with db.session() as s, s.begin():
            abort_batch(s, lake=lake, batch_id=batch_id)
            fail_batch(s, batch_id=batch_id, error=exc)
        exc.extra.setdefault("receipt_id", batch_id)
        raise
    except BaseException:
        try:
            with db.session() as s, s.begin():
                abort_batch(s, lake=lake, batch_id=batch_id)
        except Exception:  # pragma: no cover - recovery at the next start cleans up
            pass
        raise
    finally:
        reader.shutdown(wait=True, cancel_futures=True)
    return Receipt(batch_id=batch_id, institution_code=institution_code, outcome=outcome)


def records_frames(table: str, records: list[dict[str, Any]]) -> dict[str, pl.DataFrame]:
    """The frame intake validates for real-time records of one catalogue table (header checked first)."""
    ds = reading.get_dataset(table)
    arrow = formats.table_from_records(records)
    reading.check_header(ds, list(arrow.column_names), filename="请求体")
    return {ds.name: reading.frame_of(ds, arrow)}


def ingest_records(
    db: Database,
    lake: Lake,
    *,
    table: str,
    records: list[dict[str, Any]],
    institution_code: str,
    submitted_by: str,
) -> Receipt:
    """A real-time upload (实时上传) of records of one table, as another domain submits it: validated,
    de-duplicated, stored, linked and absorbed into the shared record exactly like `POST /realtime`."""
    return ingest(
        db,
        lake,
        institution_code=institution_code,
        submitted_by=submitted_by,
        channel="realtime",
        frames=records_frames(table, records),
    )
