"""The DiagnosticReport into the shared record: each report version becomes a catalogue record of the
requesting institution (检查报告 exam_report or 检验报告 lab_report, `data/records.yaml`) written to an outbox
in the report's own transaction; `drain` sends what is due through intake's real-time path (validated,
de-duplicated, stored in the lake, linked in the EMPI, absorbed into records by intake's commit hook) and
retries with backoff while intake is unreachable. A version intake refuses (a validation problem) is marked
failed with intake's message: retrying would refuse it again.

Why the requesting institution: the examination was made there (the ECG taken, the specimen drawn, the
study acquired) and the patient is registered under its patient id, which the EMPI linked when the request
was filed; the centre's expert is the reporter (`reporter_code`) and the upload names the centre as sender.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from rhip import clock
from rhip.db.engine import Database
from rhip.errors import RhipError
from rhip.intake import service as intake
from rhip.lake.store import Lake
from rhip.registry import codes, data as reg
from rhip.telemed.models import Outbox, Report, Request, Specimen, Study, TatLimit

log = logging.getLogger(__name__)
DATA = Path(__file__).parent / "data"
LEASE = timedelta(minutes=5)  # a claimed row another drainer may take over once this has passed
BACKOFF_MAX = timedelta(hours=1)
TIME_FMT = "%Y-%m-%d %H:%M:%S"  # intake's datetime format, Nanjing local time
BATCH = 500  # records of one institution and table sent as one real-time upload
_KICK = threading.Event()


@cache
def routes() -> dict[str, dict[str, Any]]:
    """Which catalogue table each centre's reports become (data/records.yaml)."""
    raw = yaml.safe_load((DATA / "records.yaml").read_text(encoding="utf-8"))
    return {str(k): dict(v) for k, v in raw.items()}


def _local(t: datetime) -> str:
    return t.astimezone(clock.SHANGHAI).strftime(TIME_FMT)


def report_no(req: Request) -> str:
    """The report's number in the requester's 检查/检验报告 table (stable across versions)."""
    return f"TM-{req.centre_code}-{req.id}"


def patient_id(req: Request) -> str:
    """The requester's patient id, as the EMPI linked it when the request was filed."""
    return req.patient_local_id or f"telemed:{req.patient_id_number}"


def _item_name(session: Session, req: Request) -> str:
    lim = session.get(TatLimit, (req.centre_code, req.service_type))
    label = lim.label if lim is not None else req.service_type
    return f"{label}（{reg_centre_name(req.centre_code)}）"


def reg_centre_name(code: str) -> str:
    """A centre's name, e.g. 远程心电诊断监测."""
    return next((c.name for c in reg.telemed_centres() if c.code == code), code)


def record_of(
    session: Session, req: Request, rep: Report, *, updated: datetime
) -> tuple[str, dict[str, Any]]:
    """(catalogue table, record) of a report version as the requesting institution uploads it."""
    route = routes()[req.centre_code]
    reported = rep.amended_at or rep.issued_at
    common = {
        "org_code": req.requester_code,
        "collected_at": _local(updated),
        "updated_at": _local(updated),
        "change_flag": "1" if rep.version == 1 else "2",
        "report_no": report_no(req),
        "patient_id": patient_id(req),
        "reported_at": _local(reported),
        "reporter_code": rep.author[:32],
    }
    if route["table"] == "lab_report":
        rec = {**common, "panel_name": _item_name(session, req)}
        spec = session.scalar(select(Specimen).where(Specimen.request_id == req.id).order_by(Specimen.id))
        if spec is not None:
            rec["specimen_no"] = spec.barcode
            by_label = {v: k for k, v in codes.codes_of("specimen_type").items()}
            rec["specimen_type"] = by_label.get(spec.specimen_type, "9")
            times = [spec.collected_at, spec.received_at]
            if all(t is not None and t <= reported for t in times) and times[0] <= times[1]:  # type: ignore[operator]
                rec["sampled_at"], rec["received_at"] = (_local(t) for t in times)  # type: ignore[arg-type]
        return "lab_report", rec
    modality = route["modality"].get(req.service_type, route["modality"]["*"])
    rec = {
        **common,
        "modality": modality,
        "exam_item_code": req.service_type,
        "exam_item_name": _item_name(session, req),
        "findings": rep.findings[:4000],
        "conclusion": rep.conclusion[:2000],
    }
    if rep.critical:
        rec["positive_flag"] = "1"
    study = session.scalar(select(Study).where(Study.request_id == req.id).order_by(Study.id))
    if study is not None:
        rec["accession_no"] = study.study_uid[:64]
        rec["image_count"] = str(study.instance_count)
        if study.performed_at <= reported:
            rec["exam_time"] = _local(study.performed_at)
    return "exam_report", rec


def enqueue(session: Session, *, req: Request, rep: Report) -> Outbox | None:
    """Put the report's current version in the outbox (None for a centre whose reports are not records).

    数据更新时间 decides which version intake keeps: each version's is later than the previous one's by at
    least a second (intake's resolution), so an amendment made in the same second still wins and a late
    retry of an older version is only a duplicate.
    """
    if req.centre_code not in routes():
        return None
    now = clock.now()
    updated = (rep.amended_at or rep.issued_at).replace(microsecond=0)
    last = session.scalar(select(Outbox).where(Outbox.report_id == rep.id).order_by(Outbox.version.desc()))
    if last is not None:
        before = datetime.strptime(last.payload["updated_at"], TIME_FMT).replace(tzinfo=clock.SHANGHAI)
        updated = max(updated, before + timedelta(seconds=1))
    table, rec = record_of(session, req, rep, updated=updated)
    row = Outbox(
        report_id=rep.id,
        version=rep.version,
        institution_code=req.requester_code,
        table_name=table,
        payload=rec,
        state="pending",
        attempts=0,
        due_at=now,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def kick() -> None:
    """Wake the drain job of this process (after a report's transaction has committed)."""
    _KICK.set()


def wait_for_kick(timeout: float) -> None:
    """Block until kicked or the timeout passes (the drain job's pause between passes)."""
    _KICK.wait(timeout)
    _KICK.clear()


@dataclass
class DrainResult:
    """What one drain pass did: outbox ids sent, to be retried, refused for good; intake receipts."""

    sent: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    receipts: list[str] = field(default_factory=list)


def _claim(db: Database, *, now: datetime, limit: int) -> list[int]:
    """Lease due pending rows to this drainer (a conditional UPDATE per row: two drainers never share one)."""
    free = or_(Outbox.lease_until.is_(None), Outbox.lease_until < now)
    with db.session() as s, s.begin():
        ids = s.scalars(
            select(Outbox.id)
            .where(Outbox.state == "pending", Outbox.due_at <= now, free)
            .order_by(Outbox.id)
            .limit(limit)
        ).all()
        got = []
        for i in ids:
            res = s.execute(
                update(Outbox)
                .where(and_(Outbox.id == i, Outbox.state == "pending", free))
                .values(lease_until=now + LEASE)
            )
            if res.rowcount == 1:  # type: ignore[attr-defined]
                got.append(i)
    return got


def backoff(attempts: int) -> timedelta:
    """Wait before the next try: 30 s, 1, 2, 4 … minutes, at most an hour."""
    return min(timedelta(seconds=30 * 2 ** max(attempts - 1, 0)), BACKOFF_MAX)


def drain(
    db: Database,
    lake: Lake,
    *,
    limit: int = 2000,
    send: Callable[..., intake.Receipt] | None = None,
) -> DrainResult:
    """Send the due outbox rows to intake, one real-time upload per institution and table."""
    send = send or intake.ingest_records
    now = clock.now()
    result = DrainResult()
    ids = _claim(db, now=now, limit=limit)
    if not ids:
        return result
    with db.session() as s:
        rows = [
            (o.id, o.institution_code, o.table_name, dict(o.payload))
            for o in s.scalars(select(Outbox).where(Outbox.id.in_(ids)).order_by(Outbox.id))
        ]
    groups: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for oid, inst, table, rec in rows:
        groups.setdefault((inst, table), []).append((oid, rec))
    for (inst, table), items in groups.items():
        for k in range(0, len(items), BATCH):
            chunk = items[k : k + BATCH]
            _send_chunk(db, lake, send, inst, table, chunk, result)
    return result


def _send_chunk(
    db: Database,
    lake: Lake,
    send: Callable[..., intake.Receipt],
    inst: str,
    table: str,
    chunk: list[tuple[int, dict[str, Any]]],
    result: DrainResult,
) -> None:
    oids = [oid for oid, _ in chunk]
    try:
        receipt = send(
            db,
            lake,
            table=table,
            records=[rec for _, rec in chunk],
            institution_code=inst,
            submitted_by="telemed",
        )
    except RhipError as exc:  # refused as a whole (e.g. a header intake does not know): permanent
        _finish(db, oids, state="failed", error=f"{exc.code}: {exc.detail}"[:512])
        result.failed += oids
        return
    except Exception as exc:  # intake or the lake unreachable: try again later
        log.warning("telemed outbox: sending %d reports failed: %s", len(oids), type(exc).__name__)
        _retry(db, oids, error=f"{type(exc).__name__}: {exc}"[:512])
        result.retried += oids
        return
    result.receipts.append(receipt.batch_id)
    refused: dict[int, str] = {}
    if receipt.outcome.problems is not None:
        for row, rule, message in receipt.outcome.problems.select("row", "rule", "message").iter_rows():
            refused.setdefault(oids[int(row) - 1], f"[{rule}] {message}"[:512])
    ok = [o for o in oids if o not in refused]
    _finish(db, ok, state="sent", receipt=receipt.batch_id)
    for oid, msg in refused.items():
        _finish(db, [oid], state="failed", error=msg, receipt=receipt.batch_id)
    result.sent += ok
    result.failed += list(refused)


def _finish(
    db: Database, oids: list[int], *, state: str, error: str | None = None, receipt: str | None = None
) -> None:
    if not oids:
        return
    with db.session() as s, s.begin():
        s.execute(
            update(Outbox)
            .where(Outbox.id.in_(oids))
            .values(
                state=state,
                attempts=Outbox.attempts + 1,
                lease_until=None,
                last_error=error,
                receipt_id=receipt,
                sent_at=clock.now() if state == "sent" else None,
            )
        )


def _retry(db: Database, oids: list[int], *, error: str) -> None:
    with db.session() as s, s.begin():
        for o in s.scalars(select(Outbox).where(Outbox.id.in_(oids))):
            o.attempts += 1
            o.lease_until = None
            o.last_error = error
            o.due_at = clock.now() + backoff(o.attempts)


def pending(
    session: Session, *, states: tuple[str, ...] = ("pending", "failed"), limit: int = 200
) -> list[Outbox]:
    """Outbox rows not delivered (waiting or refused), oldest first."""
    return list(
        session.scalars(select(Outbox).where(Outbox.state.in_(states)).order_by(Outbox.id).limit(limit))
    )


def of_report(session: Session, *, report_id: int) -> list[Outbox]:
    """A report's versions in the outbox, oldest first."""
    return list(session.scalars(select(Outbox).where(Outbox.report_id == report_id).order_by(Outbox.id)))
