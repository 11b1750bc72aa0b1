"""FHIR Bundles into intake: map the entries, run them as one batch, and say which entries failed.

Shared by `POST /fhir/r4` and the demo. A `transaction` is all or nothing: one failing entry refuses the
whole Bundle before anything is stored. A `batch` is judged entry by entry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rhip.db.engine import Database
from rhip.errors import Invalid
from rhip.fhir.mapping import Mapped, map_bundle
from rhip.intake import formats, pipeline, service
from rhip.lake.store import Lake

Issue = tuple[str, str, str]  # severity, code, Chinese text


@dataclass
class BundleResult:
    """What happened to a Bundle: the receipt, the failing entries, and whether it was refused whole."""

    transaction: bool
    receipt: service.Receipt | None = None
    receipt_id: str | None = None
    problems: dict[int, list[Issue]] = field(default_factory=lambda: defaultdict(list))
    refused: bool = False


def mapped_frames(mapped: Mapped) -> dict[str, Any]:
    """The string frames intake validates, one per catalogue table the Bundle touched."""
    return {
        table: pipeline.frame_of(pipeline.get_dataset(table), formats.table_from_records(rows))
        for table, rows in mapped.rows.items()
    }


def ingest_bundle(
    db: Database,
    lake: Lake,
    body: Any,
    *,
    institution_code: str,
    submitted_by: str,
    collected_at: str | Sequence[str],
    mapped: Mapped | None = None,
    frames: dict[str, Any] | None = None,
) -> BundleResult:
    """Map and ingest a transaction/batch Bundle (already parsed JSON) as one intake batch (`mapped` and
    its `frames` when the caller has built them already)."""
    mapped = mapped or map_bundle(body, institution_code=institution_code, collected_at=collected_at)
    result = BundleResult(transaction=body.get("type") == "transaction")
    for i, msg in mapped.errors.items():
        result.problems[i].append(("error", "not-supported", msg))
    if result.transaction and result.problems:
        result.refused = True
        return result
    frames = mapped_frames(mapped) if frames is None else frames
    if not frames:
        return result
    try:
        receipt = service.ingest(
            db,
            lake,
            institution_code=institution_code,
            submitted_by=submitted_by,
            channel="fhir",
            frames=frames,
            all_or_nothing=result.transaction,
        )
    except Invalid as exc:
        if exc.code != "transaction-rejected":
            raise
        for p in exc.extra.get("problems", []):
            entry = mapped.entries[p["table_name"]][int(p["row"]) - 1]
            result.problems[entry].append(("error", "invalid", f"[{p['rule']}] {p['message']}"))
        result.refused = True
        result.receipt_id = exc.extra.get("receipt_id")
        return result
    result.receipt, result.receipt_id = receipt, receipt.batch_id
    if receipt.outcome.problems is not None:
        for table, row, rule, message in receipt.outcome.problems.select(
            "table_name", "row", "rule", "message"
        ).iter_rows():
            entry = mapped.entries[table][int(row) - 1]
            result.problems[entry].append(("error", "invalid", f"[{rule}] {message}"))
    return result
