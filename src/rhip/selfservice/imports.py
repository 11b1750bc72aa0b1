"""File import of terminal transactions (CSV, UTF-8 or GBK): every good line is posted, every bad line is
answered with its line number, field and reason; a line's failure never touches the others (savepoint)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from rhip.clock import SHANGHAI
from rhip.errors import Invalid, RhipError
from rhip.security.service import Principal
from rhip.selfservice import transactions as T
from rhip.selfservice.money import yuan_to_fen

COLUMNS = (
    "terminal_code",
    "txn_no",
    "kind",
    "occurred_at",
    "amount",
    "pay_method",
    "outcome",
    "duration_ms",
    "pages",
    "card_no",
    "card_type",
    "id_number",
    "slot_id",
    "appointment_id",
)
REQUIRED = ("txn_no", "kind", "occurred_at")
MAX_LINES = 100_000


@dataclass
class LineError:
    """One refused line: its number in the file (header = 1), the field and the reason in Chinese."""

    line: int
    code: str
    detail: str
    field: str | None = None


@dataclass
class ImportResult:
    """What a file import did."""

    lines: int = 0
    created: int = 0
    replayed: int = 0
    errors: list[LineError] = field(default_factory=list)


def decode(raw: bytes) -> str:
    """UTF-8 (with or without BOM), else GBK; anything else is refused."""
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise Invalid("文件编码应为 UTF-8 或 GBK", code="bad-encoding")


def _int(value: str, name: str) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise Invalid(f"{name} 应为整数：{value}", code="bad-integer", field=name) from None


def _time(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(
            f"交易时间格式错误（ISO 8601）：{value}", code="bad-time", field="occurred_at"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=SHANGHAI)  # a file's local times are Beijing time


def parse_line(row: dict[str, str]) -> tuple[str | None, T.TxnIn]:
    """One CSV row as (terminal code, transaction), or Invalid naming the field."""
    v = {k: (row.get(k) or "").strip() for k in COLUMNS}
    for name in REQUIRED:
        if not v[name]:
            raise Invalid(f"缺少必填字段 {name}", code="missing-field", field=name)
    try:
        amount = yuan_to_fen(v["amount"]) if v["amount"] else None
    except Invalid as exc:
        raise Invalid(exc.detail, code=exc.code, field="amount") from None
    txn = T.TxnIn(
        txn_no=v["txn_no"],
        kind=v["kind"],
        occurred_at=_time(v["occurred_at"]),
        amount_fen=amount,
        pay_method=v["pay_method"] or None,
        outcome=v["outcome"] or "ok",
        duration_ms=_int(v["duration_ms"], "duration_ms"),
        pages=_int(v["pages"], "pages"),
        card_no=v["card_no"] or None,
        card_type=v["card_type"] or None,
        id_number=v["id_number"] or None,
        slot_id=_int(v["slot_id"], "slot_id"),
        appointment_id=_int(v["appointment_id"], "appointment_id"),
    )
    return v["terminal_code"] or None, txn


def import_csv(session: Session, *, raw: bytes, actor: Principal) -> ImportResult:
    """Post every line of a CSV file; bad lines are listed, good ones kept (each in its own savepoint)."""
    reader = csv.DictReader(io.StringIO(decode(raw)))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise Invalid(f"表头缺少列：{'、'.join(missing)}（应有 {', '.join(COLUMNS)}）", code="bad-header")
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise Invalid(f"表头有未知列：{'、'.join(unknown)}", code="bad-header")
    reader.fieldnames = header
    result = ImportResult()
    terminals: dict[str | None, Any] = {}
    for number, row in enumerate(reader, start=2):
        result.lines += 1
        if result.lines > MAX_LINES:
            raise Invalid(f"一个文件至多 {MAX_LINES} 行", code="too-many-lines")
        try:
            code, txn = parse_line(row)
            if code not in terminals:
                terminals[code] = T.resolve_terminal(session, actor=actor, terminal_code=code)
            with session.begin_nested():
                posted = T.post(session, terminal=terminals[code], txn=txn)
        except RhipError as exc:
            result.errors.append(LineError(number, exc.code, exc.detail, exc.extra.get("field")))
            continue
        if posted.created:
            result.created += 1
        else:
            result.replayed += 1
    return result
