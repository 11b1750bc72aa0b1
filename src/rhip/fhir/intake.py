"""FHIR Bundles into intake: map the entries, run them as one batch, and say what happened to each entry.

Shared by `POST /fhir/r4`, `$validate` and the demo. A `transaction` is all or nothing: one failing entry
refuses the whole Bundle before anything is stored. A `batch` is judged entry by entry. Each entry's answer
carries `status` (201 Created, 200 OK for an update, a duplicate or a matched `ifNoneExist`) and the
`location` of the stored record (`Type/<business key>`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from rhip import clock
from rhip.db.engine import Database
from rhip.errors import Invalid
from rhip.fhir.elements import ID_NUMBER_SYSTEM, element_path
from rhip.fhir.mapping import Mapped, map_bundle, table_of
from rhip.fhir.refs import Conditional, conditionals
from rhip.intake import formats, keyindex, pipeline, service, store
from rhip.intake.reading import frame_of, get_dataset
from rhip.lake.duck import Duck
from rhip.lake.sql import Sql
from rhip.lake.store import Lake


@dataclass(frozen=True)
class Issue:
    """One problem of an entry: severity, OperationOutcome code, Chinese text, FHIRPath expressions."""

    severity: str
    code: str
    text: str
    expression: tuple[str, ...] = ()
    rule: str = ""  # the intake rule that refused it (required, code, orphan, ...)


@dataclass
class BundleResult:
    """What happened to a Bundle: the receipt, each entry's status and location, the failing entries."""

    transaction: bool
    receipt: service.Receipt | None = None
    receipt_id: str | None = None
    problems: dict[int, list[Issue]] = field(default_factory=lambda: defaultdict(list))
    status: dict[int, str] = field(default_factory=dict)
    locations: dict[int, str] = field(default_factory=dict)
    refused: bool = False


def mapped_frames(mapped: Mapped) -> dict[str, Any]:
    """The string frames intake validates, one per catalogue table the Bundle touched."""
    return {
        table: frame_of(get_dataset(table), formats.table_from_records(rows))
        for table, rows in mapped.rows.items()
    }


def lookup_conditionals(
    db: Database, lake: Lake, body: Any, *, institution_code: str, conds: dict[int, Conditional] | None = None
) -> dict[int, str | None]:
    """Answer the Bundle's conditional entries: for each, the stored business key its `identifier=` matches
    for this institution (a national ID is looked up among the stored patients), or None."""
    conds = conditionals(body) if conds is None else conds
    if not conds:
        return {}
    entries = body["entry"]
    found: dict[int, str | None] = {}
    index = None
    duck = None
    try:
        for i, cond in conds.items():
            res = entries[i].get("resource") if isinstance(entries[i], dict) else None
            table = table_of(res) if isinstance(res, dict) else None
            if table is None:
                continue
            if cond.system == ID_NUMBER_SYSTEM and table == "patient_info":
                if not lake.exists(store.data_table(table)):
                    found[i] = None
                    continue
                if duck is None:
                    duck = Duck(lake)
                with db.session() as s:
                    inner = service.visible_sql(s, table)
                rows = duck.rows(
                    Sql(
                        f"SELECT patient_id FROM ({inner.text}) WHERE org_code = $org AND id_number = $idn "
                        "ORDER BY updated_at DESC LIMIT 1",
                        {**inner.params, "org": institution_code, "idn": cond.value},
                    )
                )
                found[i] = str(rows[0][0]) if rows else None
            else:
                index = index or keyindex.open_index(lake)
                stored = keyindex.stored_keys(
                    index, table=table, institution_code=institution_code, wanted=pl.Series([cond.value])
                )
                found[i] = cond.value if cond.value in set(stored.to_list()) else None
    finally:
        if duck is not None:
            duck.close()
    return found


def _issue(
    mapped: Mapped, table: str, row: int, rule: str, fld: str, message: str, *, canonical: str
) -> tuple[int, Issue]:
    entry = mapped.entries[table][row - 1]
    path = element_path(mapped.types[entry], table, fld, canonical=canonical) if fld else None
    where = f"Bundle.entry[{entry}].resource" + (f".{path}" if path else "")
    text = f"[{rule}] {message}" + (f"（目录字段 {table}.{fld}）" if fld else "")
    code = {"required": "required", "code": "code-invalid", "orphan": "not-found"}.get(rule, "invalid")
    return entry, Issue("error", code, text, (where,), rule)


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
    canonical: str = "",
    store_it: bool = True,
) -> BundleResult:
    """Map and ingest a transaction/batch Bundle (already parsed JSON) as one intake batch (`mapped` and
    its `frames` when the caller has built them already). With `store_it=False` ($validate) the records are
    validated and de-duplicated against what is stored, and nothing is written."""
    if mapped is None:
        found = lookup_conditionals(db, lake, body, institution_code=institution_code)
        mapped = map_bundle(body, institution_code=institution_code, collected_at=collected_at, found=found)
    result = BundleResult(transaction=body.get("type") == "transaction")
    for i, (code, msg) in mapped.errors.items():
        result.problems[i].append(Issue("error", code, msg, (f"Bundle.entry[{i}].resource",)))
    if result.transaction and result.problems and store_it:
        result.refused = True
        return result
    frames = mapped_frames(mapped) if frames is None else frames
    outcome: pipeline.Outcome | None = None
    if frames and not store_it:
        with store.institution_lock(lake, institution_code, engine=db.engine):
            outcome = pipeline.process(
                lake,
                frames,
                institution_code=institution_code,
                batch_id="validate",
                now_utc=clock.now(),
                write=False,
            )
    elif frames:
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
                i, issue = _issue(
                    mapped,
                    p["table_name"],
                    int(p["row"]),
                    p["rule"],
                    p.get("field") or "",
                    p["message"],
                    canonical=canonical,
                )
                result.problems[i].append(issue)
            result.refused = True
            result.receipt_id = exc.extra.get("receipt_id")
            return result
        result.receipt, result.receipt_id = receipt, receipt.batch_id
        outcome = receipt.outcome
    if outcome is not None and outcome.problems is not None:
        for table, row, rule, fld, message in outcome.problems.select(
            "table_name", "row", "rule", "field", "message"
        ).iter_rows():
            i, issue = _issue(mapped, table, int(row), rule, fld or "", message, canonical=canonical)
            result.problems[i].append(issue)
    if result.transaction and result.problems and not store_it:
        result.refused = True
    _statuses(result, mapped, outcome)
    return result


def _statuses(result: BundleResult, mapped: Mapped, outcome: pipeline.Outcome | None) -> None:
    """Each accepted entry's status (201 for a new record, 200 otherwise) and location."""
    created: set[int] = set()
    if outcome is not None:
        for table, data in outcome.stored.items():
            rows = mapped.entries.get(table, [])
            for row in data.filter(pl.col("_op") == store.OP_NEW).get_column("_row").to_list():
                created.add(rows[int(row) - 1])
    for i in range(len(mapped.types)):
        if i in result.problems:
            continue
        j = mapped.part_of.get(i, i)
        result.status[i] = "201 Created" if j in created else "200 OK"
        result.locations[i] = mapped.locations.get(i, "")
