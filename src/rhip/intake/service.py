"""Intake services: receipts (pending → committed), problem lists, daily counts, recovery, and `ingest()`,
the driver every entry point (API, CLI, demo, FHIR, CDA) uses to run a batch atomically.

Atomicity protocol: (1) the receipt is committed as `pending` with this host and pid; (2) the lake tables
the batch will touch are recorded on it; (3) one Delta commit per table, every row tagged `_batch`;
(4) one SQL transaction marks the receipt committed with its counts, problems, daily counts and rollups.
A batch whose receipt is not committed is invisible (readers exclude pending ids) and `recover()` deletes
its rows once its process is gone.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from rhip import clock
from rhip.db import bulk
from rhip.db.engine import Database
from rhip.errors import Forbidden, NotFound, RhipError
from rhip.identity import service as identity
from rhip.intake import formats, pipeline, reading, rollup, store
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
from rhip.mch import service as mch
from rhip.records import service as records
from rhip.security.roles import Role
from rhip.security.service import Principal

COUNT_FIELDS = ("received", "accepted", "updated", "revoked", "duplicate", "rejected")
CHANNELS = {"batch": "定时上传", "realtime": "实时上传", "fhir": "FHIR", "cda": "CDA 文档"}
log = logging.getLogger(__name__)
STATUS_LABELS = {PENDING: "处理中", COMMITTED: "已入库", FAILED: "已拒收", ABORTED: "已中止"}


def new_batch_id() -> str:
    """A sortable receipt id: B + UTC timestamp + random hex (letters and digits only)."""
    return f"B{clock.now():%Y%m%d%H%M%S}{secrets.token_hex(5)}"


def create_batch(
    session: Session, *, institution_code: str, channel: str, submitted_by: str, files: list[dict[str, Any]]
) -> IntakeBatch:
    """A pending receipt owned by this process."""
    batch = IntakeBatch(
        id=new_batch_id(),
        institution_code=institution_code,
        channel=channel,
        status=PENDING,
        submitted_by=submitted_by,
        created_at=clock.now(),
        files=files,
        lake_tables=[],
        host=os.uname().nodename,
        pid=os.getpid(),
    )
    session.add(batch)
    session.flush()
    return batch


def plan_batch(session: Session, *, batch_id: str, lake_tables: list[str]) -> None:
    """Record which lake tables a pending batch is about to write (so recovery knows where to clean)."""
    batch = session.get(IntakeBatch, batch_id)
    if batch is None:
        raise NotFound(f"回执不存在：{batch_id}", code="batch-not-found")
    batch.lake_tables = list(lake_tables)


def finish_batch(session: Session, *, batch_id: str, outcome: pipeline.Outcome) -> IntakeBatch:
    """Mark a batch committed with its per-table counts, problem list and daily counts."""
    batch = session.get(IntakeBatch, batch_id)
    if batch is None:
        raise NotFound(f"回执不存在：{batch_id}", code="batch-not-found")
    total = outcome.total()
    for k in COUNT_FIELDS:
        setattr(batch, k, getattr(total, k))
    batch.status = COMMITTED
    batch.committed_at = clock.now()
    if outcome.tables:
        session.execute(
            insert(IntakeBatchTable),
            [
                {"batch_id": batch_id, "table_name": name, **{k: getattr(c, k) for k in COUNT_FIELDS}}
                for name, c in outcome.tables.items()
            ],
        )
    if outcome.problems is not None and outcome.problems.height:
        names = [str(f.get("filename", "")) for f in (batch.files or [])]
        probs = outcome.problems.with_columns(pl.lit(batch_id).alias("batch_id"))
        if names:
            probs = probs.with_columns(
                pl.col("file").replace_strict(
                    list(range(len(names))), names, default=None, return_dtype=pl.String
                )
            )
        else:
            probs = probs.with_columns(pl.lit(None, pl.String).alias("file"))
        _insert_problems(session, probs)
    if outcome.daily is not None and outcome.daily.height:
        _add_daily(session, institution_code=batch.institution_code, daily=outcome.daily)
    rollup.apply(session, outcome.rollup)
    patients = outcome.stored.get("patient_info")
    if patients is not None and patients.height:  # the EMPI links each stored patient record
        live = patients.filter(pl.col("_op") != store.OP_REVOKE)
        identity.link_patient_rows(session, live.iter_rows(named=True), source=batch.channel)
    if outcome.stored:  # the shared health record's serving store, in the same transaction
        records.absorb_stored(session, batch_id=batch_id, stored=outcome.stored)
        if (refused := mch.absorb_stored(session, batch_id=batch_id, stored=outcome.stored)).height:
            _insert_problems(session, refused)  # records the MCH registry refused, as problem lines
    return batch


PROBLEM_COLUMNS = (
    "batch_id",
    "table_name",
    "file",
    "row",
    "business_key",
    "rule",
    "field",
    "value",
    "message",
)


def _insert_problems(session: Session, probs: pl.DataFrame) -> None:
    """Bulk-insert a problem list (rhip.db.bulk: COPY on PostgreSQL, one driver-level executemany elsewhere).

    The ORM/Core path builds a dict per row and was the largest SQL cost of a batch with many rejections.
    """
    frame = probs.select(
        pl.col("batch_id").cast(pl.String),
        pl.col("table_name").cast(pl.String),
        pl.col("file").cast(pl.String),
        pl.col("row").cast(pl.Int64),
        *[pl.col(c).cast(pl.String) for c in ("business_key", "rule", "field", "value", "message")],
    ).with_columns(pl.col("business_key", "value").str.slice(0, 255))
    bulk.fill(session.connection(), "intake_problems", PROBLEM_COLUMNS, frame.iter_rows())


def _add_daily(session: Session, *, institution_code: str, daily: pl.DataFrame) -> None:
    agg = daily.group_by("table_name", "day").agg(pl.col(list(COUNT_FIELDS)).sum())
    existing = {
        (r.table_name, r.day): r
        for r in session.scalars(
            select(IntakeDailyCount).where(
                IntakeDailyCount.institution_code == institution_code,
                # only this batch's tables: a real-time or FHIR batch of one table loaded every table's
                # rows of the month (~30x the rows it updates, a third of such a batch's time)
                IntakeDailyCount.table_name.in_(agg.get_column("table_name").unique().to_list()),
                IntakeDailyCount.day.in_(agg.get_column("day").unique().to_list()),
            )
        )
    }
    new_rows = []
    for row in agg.iter_rows(named=True):
        hit = existing.get((row["table_name"], row["day"]))
        if hit is None:
            new_rows.append({"institution_code": institution_code, **row})
        else:
            for k in COUNT_FIELDS:
                setattr(hit, k, getattr(hit, k) + int(row[k]))
    if new_rows:
        session.execute(insert(IntakeDailyCount), new_rows)


def fail_batch(session: Session, *, batch_id: str, error: RhipError) -> None:
    """Mark a batch refused (bad input): nothing of it was stored."""
    batch = session.get(IntakeBatch, batch_id)
    if batch is not None:
        batch.status = FAILED
        batch.error_code = error.code
        batch.error_detail = error.detail


def abort_batch(session: Session, *, lake: Lake, batch_id: str) -> int:
    """Delete a pending batch's lake rows and mark it aborted; returns rows removed."""
    batch = session.get(IntakeBatch, batch_id)
    if batch is None or batch.status != PENDING:
        return 0
    removed = store.remove_batch(lake, batch_id=batch_id, tables=list(batch.lake_tables or []))
    batch.status = ABORTED
    batch.error_code = "aborted"
    batch.error_detail = f"处理中断，已清除未完成的入库数据（{removed} 条）"
    return removed


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
            with db.session() as s, s.begin():
                finish_batch(s, batch_id=batch_id, outcome=outcome)
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
