"""Terminal transactions: the rules one must satisfy, posting (idempotent by the terminal's transaction
number, one INSERT … ON CONFLICT DO NOTHING) and registration through the booking service (terminals are
booking channel `self_service`). Callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.booking import service as booking
from rhip.clock import now
from rhip.db.engine import dialect_insert
from rhip.errors import Conflict, Forbidden, Invalid
from rhip.security.service import Principal
from rhip.selfservice.keys import TerminalRef, remembered_ref, terminal_principal, terminal_ref
from rhip.selfservice.models import CardIssue, Terminal, TerminalTransaction
from rhip.selfservice.terminals import check_staff

KINDS = {
    "issue_card": "发卡",
    "register": "挂号",
    "take_number": "取号",
    "payment": "缴费",
    "print": "取单",
    "top_up": "充值",
    "enquiry": "查询",
}
PAY_METHODS = {"insurance": "医保", "self": "自费"}
OUTCOMES = {"ok": "成功", "failed": "失败", "cancelled": "已取消"}
CARD_TYPES = {"citizen": "市民卡", "medical": "医疗卡", "visit": "就诊卡"}
AMOUNT_KINDS = ("register", "take_number", "payment", "top_up")
COMPARED = ("kind", "occurred_at", "amount_fen", "pay_method", "outcome", "card_no", "id_number", "pages")
_SKEW = timedelta(minutes=5)  # a terminal clock a little ahead is tolerated


@dataclass
class TxnIn:
    """One transaction as a terminal reports it (amount already in fen)."""

    txn_no: str
    kind: str
    occurred_at: datetime
    amount_fen: int | None = None
    pay_method: str | None = None
    outcome: str = "ok"
    error_code: str | None = None
    duration_ms: int | None = None
    pages: int | None = None
    card_no: str | None = None
    card_type: str | None = None
    id_number: str | None = None
    slot_id: int | None = None
    appointment_id: int | None = None


@dataclass(frozen=True)
class Posted:
    """A posted transaction (its id and row values) and whether this call created it (False: a replay)."""

    txn_id: int
    values: dict[str, Any]
    created: bool


def check_txn(t: TxnIn) -> None:
    """The rules one transaction must satisfy, whatever its source (API or file)."""
    if not t.txn_no or len(t.txn_no) > 64 or not t.txn_no.isprintable():
        raise Invalid("交易流水号须为 1–64 个可见字符", code="bad-txn-no")
    if t.kind not in KINDS:
        raise Invalid(f"交易类型应为 {'、'.join(KINDS)}", code="bad-kind")
    if t.outcome not in OUTCOMES:
        raise Invalid(f"交易结果应为 {'、'.join(OUTCOMES)}", code="bad-outcome")
    if t.occurred_at.tzinfo is None:
        raise Invalid("交易时间必须带时区（如 +08:00）", code="naive-time")
    if t.occurred_at > now() + _SKEW:
        raise Invalid("交易时间晚于当前时间", code="future-time")
    if t.kind in AMOUNT_KINDS:
        if t.amount_fen is None:
            raise Invalid(f"{KINDS[t.kind]}交易必须给出金额", code="amount-required")
        if t.amount_fen < 0:
            raise Invalid("金额不能为负", code="bad-amount")
    elif t.amount_fen not in (None, 0):
        raise Invalid(f"{KINDS[t.kind]}交易不应有金额", code="unexpected-amount")
    if t.kind == "payment" and t.pay_method not in PAY_METHODS:
        raise Invalid("缴费须给出支付方式 insurance（医保）或 self（自费）", code="pay-method-required")
    if t.pay_method is not None and t.pay_method not in PAY_METHODS:
        raise Invalid("支付方式应为 insurance（医保）或 self（自费）", code="bad-pay-method")
    if t.kind == "issue_card" and t.outcome == "ok" and not t.card_no:
        raise Invalid("发卡交易必须给出卡号", code="card-no-required")
    if t.card_type is not None and t.card_type not in CARD_TYPES:
        raise Invalid(f"卡类型应为 {'、'.join(CARD_TYPES)}", code="bad-card-type")
    if t.duration_ms is not None and not 0 <= t.duration_ms <= 86_400_000:
        raise Invalid("交易耗时（毫秒）超出范围", code="bad-duration")
    if t.pages is not None and not 0 <= t.pages <= 1000:
        raise Invalid("取单份数超出范围", code="bad-pages")
    if t.slot_id is not None and t.kind != "register":
        raise Invalid("只有挂号交易可以指定号源", code="slot-not-register")
    if t.appointment_id is not None and t.kind != "take_number":
        raise Invalid("只有取号交易可以指定预约", code="appointment-not-take")


def _check_ref(actor: Principal, term: TerminalRef) -> TerminalRef:
    check_staff(actor, term.institution_code)
    if term.status == "removed":
        raise Conflict(f"终端已撤机：{term.code}", code="terminal-removed")
    return term


def _terminal_code(actor: Principal, terminal_code: str | None) -> str:
    if actor.via == "terminal":
        own = actor.name or ""
        if terminal_code and terminal_code != own:
            raise Forbidden("终端密钥只能提交本终端的交易", code="other-terminal")
        terminal_code = own
    if not terminal_code:
        raise Invalid("请给出终端编号 terminal_code", code="terminal-required")
    return terminal_code


def resolve_terminal_cached(*, actor: Principal, terminal_code: str | None) -> TerminalRef | None:
    """`resolve_terminal` from this worker's memory only (no database); None when not remembered."""
    ref = remembered_ref(_terminal_code(actor, terminal_code))
    return _check_ref(actor, ref) if ref is not None else None


def resolve_terminal(session: Session, *, actor: Principal, terminal_code: str | None) -> TerminalRef:
    """The terminal a post is for: the key's own terminal, or one of the caller institution's terminals."""
    return _check_ref(actor, terminal_ref(session, code=_terminal_code(actor, terminal_code)))


def row_values(
    terminal: Terminal | TerminalRef, txn: TxnIn, *, appointment_id: int | None, at: datetime
) -> dict[str, Any]:
    """A checked transaction as the values of its row (the ID number normalised when it succeeded)."""
    id_number = booking.person_id(txn.id_number) if txn.outcome == "ok" and txn.id_number else txn.id_number
    return {
        "terminal_id": terminal.id,
        "institution_code": terminal.institution_code,
        "txn_no": txn.txn_no,
        "kind": txn.kind,
        "occurred_at": txn.occurred_at,
        "amount_fen": txn.amount_fen,
        "pay_method": txn.pay_method,
        "outcome": txn.outcome,
        "error_code": txn.error_code,
        "duration_ms": txn.duration_ms,
        "pages": txn.pages if txn.kind == "print" else None,
        "card_no": txn.card_no,
        "id_number": id_number,
        "appointment_id": appointment_id,
        "received_at": at,
    }


def plain_row(terminal: TerminalRef, txn: TxnIn) -> dict[str, Any] | None:
    """A checked transaction's row for the batched insert (pgpost), or None when it needs the full path
    (a slot to book, an appointment to check in, a card to record)."""
    check_txn(txn)
    if txn.slot_id is not None or txn.appointment_id is not None or txn.kind == "issue_card":
        return None
    return row_values(terminal, txn, appointment_id=None, at=now())


def post(session: Session, *, terminal: Terminal | TerminalRef, txn: TxnIn) -> Posted:
    """Record one transaction; a replay with the same number and content returns the first (created False).

    A successful registration with a slot books it through the booking service (channel 自助机); a
    successful 取号 with an appointment checks it in; a successful 发卡 records the card issued."""
    check_txn(txn)
    if txn.outcome == "ok" and txn.id_number:
        txn.id_number = booking.person_id(txn.id_number)
    appointment_id = txn.appointment_id
    principal = terminal_principal(terminal)
    if txn.outcome == "ok" and txn.kind == "register" and txn.slot_id is not None:
        if not txn.id_number:
            raise Invalid("预约号源挂号必须给出身份证号（实名）", code="id-required")
        slot = booking.get_slot(session, slot_id=txn.slot_id)
        if slot.hospital_code != terminal.institution_code:
            raise Forbidden("只能挂本院的号", code="other-hospital-slot")
        booked = booking.book(
            session,
            slot_id=txn.slot_id,
            person=txn.id_number,
            actor=principal,
            idempotency_key=f"ss:{terminal.code}:{txn.txn_no}"[:120],
        )
        appointment_id = booked.appointment.id
    if txn.outcome == "ok" and txn.kind == "take_number" and appointment_id is not None:
        booking.check_in(session, appointment_id=appointment_id, actor=principal)
    values = row_values(terminal, txn, appointment_id=appointment_id, at=now())
    stmt = (
        dialect_insert(session, TerminalTransaction.__table__)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["terminal_id", "txn_no"])
        .returning(TerminalTransaction.__table__.c.id)
    )
    new_id = session.connection().scalar(stmt)
    if new_id is None:  # this number was posted before (a replay) or by a concurrent call
        existing = _existing(session, terminal.id, txn.txn_no)
        assert existing is not None
        first = _same(existing, txn)
        return Posted(
            first.id, {c.name: getattr(first, c.name) for c in TerminalTransaction.__table__.c}, False
        )
    if txn.kind == "issue_card" and txn.outcome == "ok" and txn.card_no:
        _issue_at_terminal(session, terminal, txn)
    return Posted(new_id, values, True)


def _issue_at_terminal(session: Session, terminal: Terminal | TerminalRef, txn: TxnIn) -> None:
    stmt = (
        dialect_insert(session, CardIssue)
        .values(
            institution_code=terminal.institution_code,
            card_type=txn.card_type or "medical",
            card_no=txn.card_no,
            channel="terminal",
            terminal_id=terminal.id,
            id_number=txn.id_number,
            issued_at=txn.occurred_at,
        )
        .on_conflict_do_nothing(index_elements=["institution_code", "card_type", "card_no"])
        .returning(CardIssue.id)
    )
    if session.scalar(stmt) is None:
        raise Conflict(f"该卡号已发过卡：{txn.card_no}", code="card-exists")


def _existing(session: Session, terminal_id: int, txn_no: str) -> TerminalTransaction | None:
    return session.scalar(
        select(TerminalTransaction).where(
            TerminalTransaction.terminal_id == terminal_id, TerminalTransaction.txn_no == txn_no
        )
    )


def _same(existing: TerminalTransaction, txn: TxnIn) -> TerminalTransaction:
    """The first post of a number when the replay says the same; otherwise 409 (a number reused)."""
    for name in COMPARED:
        old, new = getattr(existing, name), getattr(txn, name)
        if name == "pages" and existing.kind != "print":
            continue
        if name == "id_number" and new:
            new = booking.person_id(new) if txn.outcome == "ok" else new
        if old != new:
            raise Conflict(
                f"交易流水号 {txn.txn_no} 已用于另一笔交易（{name} 不同）", code="txn-no-reused", field=name
            )
    return existing


def get_transactions(
    session: Session,
    *,
    terminal_code: str | None = None,
    institution_code: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 100,
) -> list[tuple[TerminalTransaction, str]]:
    """Transactions, newest first, with their terminal's code."""
    q = (
        select(TerminalTransaction, Terminal.code)
        .join(Terminal, Terminal.id == TerminalTransaction.terminal_id)
        .order_by(TerminalTransaction.occurred_at.desc(), TerminalTransaction.id.desc())
        .limit(limit)
    )
    if terminal_code:
        q = q.where(Terminal.code == terminal_code)
    if institution_code:
        q = q.where(TerminalTransaction.institution_code == institution_code)
    if start:
        q = q.where(TerminalTransaction.occurred_at >= start)
    if end:
        q = q.where(TerminalTransaction.occurred_at < end)
    return [(t, c) for t, c in session.execute(q).all()]


def post_many(session: Session, *, items: Sequence[tuple[Terminal | TerminalRef, TxnIn]]) -> int:
    """Record many plain transactions (of any terminals) in one executemany, replays skipped; returns how
    many were new. Registrations with a slot and 取号 with an appointment need `post` (they call booking)."""
    rows: list[dict[str, Any]] = []
    cards: list[dict[str, Any]] = []
    t = now()
    for terminal, txn in items:
        check_txn(txn)
        if txn.slot_id is not None or txn.appointment_id is not None:
            raise Invalid("带号源或预约的交易须逐笔提交", code="needs-post")
        rows.append(row_values(terminal, txn, appointment_id=None, at=t))
        if txn.kind == "issue_card" and txn.outcome == "ok" and txn.card_no:
            cards.append(
                {
                    "institution_code": terminal.institution_code,
                    "card_type": txn.card_type or "medical",
                    "card_no": txn.card_no,
                    "channel": "terminal",
                    "terminal_id": terminal.id,
                    "id_number": txn.id_number,
                    "person_id": None,
                    "issued_at": txn.occurred_at,
                    "_key": (terminal.id, txn.txn_no),
                }
            )
    conn = session.connection()
    table = TerminalTransaction.__table__
    stmt = (
        dialect_insert(session, table)
        .on_conflict_do_nothing(index_elements=["terminal_id", "txn_no"])
        .returning(table.c.terminal_id, table.c.txn_no)
    )
    created = {tuple(r) for r in conn.execute(stmt, rows)} if rows else set()  # executemany: compiled once
    fresh = [c for c in cards if c.pop("_key") in created]
    if fresh:
        conn.execute(
            dialect_insert(session, CardIssue.__table__).on_conflict_do_nothing(
                index_elements=["institution_code", "card_type", "card_no"]
            ),
            fresh,
        )
    return len(created)
