"""A receipt's life in the SQL database: created pending, its lake tables planned, then either committed with
everything that becomes visible with it — per-table counts, the problem list, daily counts, the rollups, the
EMPI links and the shared health record — or refused or aborted (its lake rows removed). `service.ingest`
drives these steps; see its module doc for the atomicity protocol.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import insert
from sqlalchemy.orm import Session

from rhip import clock
from rhip.db import bulk
from rhip.errors import NotFound, RhipError
from rhip.identity import service as identity
from rhip.intake import pipeline, rollup, store
from rhip.intake.models import (
    ABORTED,
    COMMITTED,
    FAILED,
    PENDING,
    IntakeBatch,
    IntakeBatchTable,
    IntakeDailyCount,
)
from rhip.lake.store import Lake
from rhip.mch import service as mch
from rhip.records import service as records, store as records_store

COUNT_FIELDS = ("received", "accepted", "updated", "revoked", "duplicate", "rejected")


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


@dataclass(frozen=True)
class Prepared:
    """What a receipt's commit writes for the services that needs no database to build: its patients with
    their match features (EMPI) and its timeline entries (the shared record). Built before the commit, so
    only the writes run under the lock that commits take turns under (`service.commits_serialised`)."""

    patients: list[identity.Incoming]
    entries: records_store.Built | None


def prepare(outcome: pipeline.Outcome, *, channel: str, dialect: str) -> Prepared:
    """`Prepared` for a batch's outcome, on a database of `dialect`."""
    patients = outcome.stored.get("patient_info")
    items: list[identity.Incoming] = []
    if patients is not None and patients.height:  # the EMPI links each stored patient record
        live = patients.filter(pl.col("_op") != store.OP_REVOKE)
        items = identity.patient_items(live.iter_rows(named=True), source=channel)
    built = records.build_stored(outcome.stored, dialect=dialect) if outcome.stored else None
    return Prepared(items, built)


def finish_batch(
    session: Session, *, batch_id: str, outcome: pipeline.Outcome, prepared: Prepared | None = None
) -> IntakeBatch:
    """Mark a batch committed with its per-table counts, problem list and daily counts, and what it brings to
    the services (from `prepare`, made here when not given)."""
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
    if prepared is None:
        prepared = prepare(outcome, channel=batch.channel, dialect=session.connection().dialect.name)
    if prepared.patients:
        identity.link_patient_items(session, prepared.patients)
    if outcome.stored:  # the shared health record's serving store, in the same transaction
        records.absorb_stored(session, batch_id=batch_id, stored=outcome.stored, built=prepared.entries)
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
    """The batch's records per table and day added to the institution's daily counts (one upsert; a read of
    the existing rows and an ORM update per row was 3 s of the demo month's commits)."""
    agg = daily.group_by("table_name", "day").agg(pl.col(list(COUNT_FIELDS)).sum())
    rows = agg.with_columns(pl.lit(institution_code).alias("institution_code")).to_dicts()
    rollup.add_rows(
        session,
        IntakeDailyCount.__table__,
        rows,
        dict.fromkeys(COUNT_FIELDS, rollup.added),
        key=("institution_code", "table_name", "day"),
    )


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
