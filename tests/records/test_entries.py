"""The vectorised entry builder (records/entries.py) against a plain row-by-row reading of the same rules,
on a batch with every awkward value: nulls, empty text, text that looks like JSON, naive and aware times,
dates, decimals, a revocation, an older version of a key, a row without a patient or a time, items with
nulls and an abnormal one, a parent without items."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import polars as pl

from rhip.clock import SHANGHAI
from rhip.records import entries, store

AT = datetime(2025, 3, 31, 12, 0, tzinfo=UTC)


def _plain(v: Any) -> Any:
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    return v


def _moment(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=SHANGHAI)).astimezone(UTC)
    if isinstance(v, date):
        return datetime.combine(v, time(0), SHANGHAI).astimezone(UTC)
    return None


def _oracle(frames: dict[str, pl.DataFrame], src: store.Source) -> tuple[list[dict[str, Any]], list[tuple]]:
    """The rules of docs/records.md read row by row (what the store did before it was vectorised)."""
    df = entries.latest(frames[src.table])
    items: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if src.items and src.items.table in frames:
        for r in entries.latest(frames[src.items.table]).iter_rows(named=True):
            if r["_op"] != entries.OP_REVOKE:
                it = {f: _plain(r[f]) for f in src.items.fields if f in r and r[f] is not None}
                items.setdefault((r["org_code"], str(r[src.items.key])), []).append(it)
    rows, gone = [], []
    for r in df.iter_rows(named=True):
        if r["_op"] == entries.OP_REVOKE:
            gone.append((r["org_code"], src.table, str(r["_key"])))
            continue
        at, patient = _moment(r.get(src.time)), r.get(src.patient)
        if at is None or not patient:
            continue
        detail = {f: _plain(r[f]) for f in src.detail if f in r and r[f] is not None and r[f] != ""}
        abnormal = bool(src.abnormal_field and str(r.get(src.abnormal_field) or "") in src.abnormal_values)
        if src.items and (its := items.get((r["org_code"], str(r.get(src.items.key))))):
            detail["items"] = its
            af = src.items.abnormal_field
            abnormal = abnormal or any(str(i.get(af) or "") in src.items.abnormal_values for i in its)
        values = {n: "" if r.get(n) is None else _plain(r[n]) for n in entries.placeholders(src.title)}
        ident = str(r.get("id_number") or "").strip().upper()
        rows.append(
            {
                "institution_code": r["org_code"],
                "patient_key": str(patient),
                "id_number": ident if len(ident) == 18 else None,
                "source": src.table,
                "business_key": str(r["_key"]),
                "kind": src.kind,
                "occurred_at": at,
                "title": src.title.format(**values).strip() or "—",
                "code": None if not src.code or r.get(src.code) is None else str(r[src.code]),
                "abnormal": abnormal,
                "detail": detail,
                "updated_at": AT,
            }
        )
    return rows, gone


def _frame(rows: list[dict[str, Any]], schema: dict[str, Any]) -> pl.DataFrame:
    base = {"_key": pl.String, "_op": pl.Int8, "org_code": pl.String, "_batch": pl.String, "_row": pl.Int64}
    return pl.DataFrame(rows, schema={**base, "updated_at": pl.Datetime("us", "UTC"), **schema}, orient="row")


def _batch() -> dict[str, pl.DataFrame]:
    t0 = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)
    report = {
        "reported_at": pl.Datetime("us"),  # naive: Shanghai local time
        "patient_id": pl.String,
        "id_number": pl.String,
        "report_no": pl.String,
        "panel_name": pl.String,
        "panel_code": pl.String,
        "specimen_type": pl.String,
        "visit_no": pl.String,
        "admission_no": pl.String,
        "sampled_at": pl.Datetime("us", "UTC"),
    }
    ok = datetime(2025, 3, 2, 8, 30)
    reports = [
        # key, op, org, batch, row, updated, then the report's fields
        (
            "R1",
            1,
            "A",
            "b1",
            0,
            t0,
            ok,
            "P1",
            " 32010219800101001x ",
            "R1",
            "血常规",
            "CBC",
            "",
            None,
            None,
            t0,
        ),
        ("R2", 1, "A", "b1", 1, t0, ok, "P2", None, "R2", 'x","k":null,{"a":""}', None, "血", "V2", "", None),
        ("R3", 1, "A", "b1", 2, t0, None, "P3", None, "R3", "无时间", "X", None, None, None, None),
        ("R4", 1, "A", "b1", 3, t0, ok, "", None, "R4", "无患者", "X", None, None, None, None),
        ("R5", 1, "A", "b1", 4, t0, ok, "P5", None, "R5", "旧版本", "X", None, None, None, None),
        (
            "R5",
            2,
            "A",
            "b2",
            0,
            t0.replace(hour=2),
            ok,
            "P5",
            None,
            "R5",
            "新版本",
            "X",
            None,
            None,
            None,
            None,
        ),
        ("R6", 3, "B", "b2", 1, t0, ok, "P6", None, "R6", "撤销", "X", None, None, None, None),
        (
            "R7",
            1,
            "B",
            "b2",
            2,
            t0,
            datetime(2025, 3, 2, 8, 30, 0, 5),
            "P7",
            None,
            "R7",
            "",
            None,
            None,
            None,
            None,
            None,
        ),
    ]
    items = {
        "report_no": pl.String,
        "item_code": pl.String,
        "item_name": pl.String,
        "result_numeric": pl.Float64,
        "reference_low": pl.Decimal(10, 2),
        "abnormal_flag": pl.String,
        "unit": pl.String,
    }
    results = [
        ("R1-1", 1, "A", "b1", 5, t0, "R1", "WBC", "白细胞", 6.5, Decimal("3.50"), None, ""),
        ("R1-2", 1, "A", "b1", 6, t0, "R1", None, "血红蛋白", None, None, "H", None),
        ("R1-3", 3, "A", "b1", 7, t0, "R1", "PLT", "撤销的项目", 1.0, None, "LL", "x"),
        ("R2-1", 1, "A", "b1", 8, t0, "R2", "K", None, None, None, None, None),
        ("R9-1", 1, "B", "b1", 9, t0, "R1", "WBC", "另一机构同号", 1.0, None, "HH", None),
    ]
    return {
        "lab_report": _frame(
            [
                dict(
                    zip(["_key", "_op", "org_code", "_batch", "_row", "updated_at", *report], r, strict=True)
                )
                for r in reports
            ],
            report,
        ),
        "lab_result": _frame(
            [
                dict(zip(["_key", "_op", "org_code", "_batch", "_row", "updated_at", *items], r, strict=True))
                for r in results
            ],
            items,
        ),
    }


def test_the_vectorised_build_reads_every_awkward_value_as_the_row_by_row_rules_do() -> None:
    frames = _batch()
    src = store.sources()["lab_report"]
    got, gone = entries.build(store.stored_frames(frames), src, at=AT)
    assert got is not None and gone is not None
    rows = got.to_dicts()
    for r in rows:
        r["detail"] = json.loads(r["detail"])
    want, want_gone = _oracle(frames, src)
    assert rows == want
    assert [tuple(g) for g in gone.rows()] == want_gone == [("B", "lab_report", "R6")]
    by_key = {r["business_key"]: r for r in rows}
    assert set(by_key) == {"R1", "R2", "R5", "R7"}  # no time, no patient, revoked: no entry
    r1 = by_key["R1"]
    assert r1["id_number"] == "32010219800101001X" and r1["abnormal"] and r1["occurred_at"].hour == 0
    assert r1["detail"]["items"] == [
        {"item_code": "WBC", "item_name": "白细胞", "result_numeric": 6.5, "reference_low": 3.5, "unit": ""},
        {"item_name": "血红蛋白", "abnormal_flag": "H"},
    ]
    assert r1["detail"]["sampled_at"] == "2025-03-01T01:00:00+00:00" and "specimen_type" not in r1["detail"]
    assert by_key["R2"]["title"] == 'x","k":null,{"a":""}' and by_key["R2"]["detail"]["items"] == [
        {"item_code": "K"}
    ]
    assert (
        by_key["R5"]["title"] == "新版本"
        and by_key["R7"]["title"] == "—"
        and "items" not in by_key["R7"]["detail"]
    )
