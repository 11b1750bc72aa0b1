"""Terminals and their transactions: the registry, terminal keys, posting (idempotent by the terminal's
transaction number) and registration through the booking service (terminals are booking channel
`self_service`). Callers own the transaction."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.booking import service as booking
from rhip.clock import SHANGHAI, now
from rhip.db.engine import dialect_insert
from rhip.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from rhip.registry import data as reg_data
from rhip.security.roles import Role
from rhip.security.service import Principal, audit
from rhip.selfservice.models import CardIssue, Terminal, TerminalTransaction

KEY_PREFIX = "rhipt_"
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
STATUSES = {"active": "在用", "fault": "故障", "removed": "已撤机"}
CARD_TYPES = {"citizen": "市民卡", "medical": "医疗卡", "visit": "就诊卡"}
AMOUNT_KINDS = ("register", "take_number", "payment", "top_up")
COMPARED = ("kind", "occurred_at", "amount_fen", "pay_method", "outcome", "card_no", "id_number", "pages")


# ------------------------------------------------------------------ registry


def _institution(code: str) -> reg_data.InstitutionRecord:
    inst = reg_data.get(code)
    if inst is None:
        raise Invalid(f"机构代码不存在：{code}", code="no-institution")
    return inst


def create_terminal(
    session: Session,
    *,
    institution_code: str,
    code: str | None = None,
    location: str = "",
    model: str = "",
    installed_on: date | None = None,
) -> Terminal:
    """Register a terminal at an institution (its district from the registry); the code must be new."""
    inst = _institution(institution_code)
    if code is None:
        n = session.scalar(select(Terminal.id).order_by(Terminal.id.desc()).limit(1)) or 0
        code = f"T{institution_code}-{n + 1:05d}"
    if session.scalar(select(Terminal.id).where(Terminal.code == code)) is not None:
        raise Conflict(f"终端编号已存在：{code}", code="terminal-exists")
    term = Terminal(
        code=code,
        institution_code=inst.code,
        district_code=inst.district_code,
        location=location,
        model=model,
        status="active",
        installed_on=installed_on or now().date(),
        created_at=now(),
    )
    session.add(term)
    session.flush()
    return term


def create_terminals(session: Session, *, specs: list[dict[str, Any]]) -> int:
    """Register many terminals at once (institution_code, code, location, model, installed_on, status);
    codes already registered are skipped. Returns how many were new."""
    t = now()
    rows = []
    for spec in specs:
        inst = _institution(spec["institution_code"])
        if spec.get("status", "active") not in STATUSES:
            raise Invalid(f"终端状态应为 {'、'.join(STATUSES)}", code="bad-status")
        rows.append(
            {
                "code": spec["code"],
                "institution_code": inst.code,
                "district_code": inst.district_code,
                "location": spec.get("location", ""),
                "model": spec.get("model", ""),
                "status": spec.get("status", "active"),
                "installed_on": spec["installed_on"],
                "removed_on": None,
                "key_prefix": None,
                "key_hash": None,
                "key_issued_at": None,
                "created_at": t,
            }
        )
    if not rows:
        return 0
    table = Terminal.__table__
    stmt = (
        dialect_insert(session, table).on_conflict_do_nothing(index_elements=["code"]).returning(table.c.id)
    )
    return len(session.connection().execute(stmt.returning(table.c.id), rows).all())


def get_terminal(session: Session, *, code: str) -> Terminal:
    """One terminal by its code, or NotFound."""
    term = session.scalar(select(Terminal).where(Terminal.code == code))
    if term is None:
        raise NotFound(f"终端不存在：{code}", code="no-terminal")
    return term


def get_terminals(session: Session, *, institution_code: str | None = None) -> list[Terminal]:
    """Terminals, of one institution or all, by code."""
    q = select(Terminal).order_by(Terminal.institution_code, Terminal.code)
    if institution_code:
        q = q.where(Terminal.institution_code == institution_code)
    return list(session.scalars(q))


def set_status(
    session: Session, *, code: str, status: str, actor: Principal, on: date | None = None
) -> Terminal:
    """Mark a terminal active, faulty or removed (撤机 records the removal date)."""
    if status not in STATUSES:
        raise Invalid(f"终端状态应为 {'、'.join(STATUSES)}", code="bad-status")
    term = get_terminal(session, code=code)
    check_staff(actor, term.institution_code)
    term.status = status
    term.removed_on = (on or now().date()) if status == "removed" else None
    forget_key(term.key_prefix)
    _REFS.pop(code, None)
    _audit(session, actor, "terminal.status", term, {"status": status})
    return term


def _audit(
    session: Session, actor: Principal, action: str, term: Terminal, detail: dict[str, Any] | None
) -> None:
    audit(
        session,
        actor=actor.subject,
        role=actor.role.value,
        action=action,
        target=term.code,
        institution_code=term.institution_code,
        detail=detail,
    )


def check_staff(actor: Principal, institution_code: str) -> None:
    """Managers and admins act on every terminal; an institution's own staff and keys on its own only."""
    if actor.role in (Role.manager, Role.admin):
        return
    if actor.institution_code != institution_code:
        raise Forbidden("只能管理本机构的自助终端", code="other-institution")


# ------------------------------------------------------------------ terminal keys


def _hash(secret_part: str) -> str:
    return hashlib.sha256(secret_part.encode()).hexdigest()


def issue_key(session: Session, *, code: str, actor: Principal) -> str:
    """A new key for a terminal (the old one stops working); the plain key is returned once, never stored."""
    term = get_terminal(session, code=code)
    check_staff(actor, term.institution_code)
    forget_key(term.key_prefix)
    prefix = secrets.token_hex(4)
    secret_part = secrets.token_urlsafe(24)
    term.key_prefix, term.key_hash, term.key_issued_at = prefix, _hash(secret_part), now()
    _audit(session, actor, "terminal.key", term, None)
    return f"{KEY_PREFIX}{prefix}_{secret_part}"


@dataclass(frozen=True)
class _Known:
    key_hash: str
    principal: Principal
    until: float


_KEYS: dict[str, _Known] = {}
KEY_TTL = 30.0  # seconds a verified key or terminal is trusted without reading its row (revocation delay)


def forget_key(prefix: str | None) -> None:
    """Drop a key from this process's memory (at once; other processes within KEY_TTL)."""
    if prefix:
        _KEYS.pop(prefix, None)


def terminal_principal(term: Terminal | TerminalRef) -> Principal:
    """The principal a terminal acts as: its institution's uploader, via 'terminal' (booking channel)."""
    return Principal(
        subject=f"terminal:{term.code}",
        role=Role.uploader,
        institution_code=term.institution_code,
        via="terminal",
        name=term.code,
    )


def _split(plain: str) -> tuple[str, str]:
    if not plain.startswith(KEY_PREFIX) or plain.count("_") < 2:
        raise Unauthorized("终端密钥格式错误", code="bad-terminal-key")
    prefix, secret_part = plain[len(KEY_PREFIX) :].split("_", 1)
    return prefix, secret_part


def verify_key_cached(plain: str) -> Principal | None:
    """The principal of a key verified a moment ago, without the database; None when not remembered."""
    prefix, secret_part = _split(plain)
    known = _KEYS.get(prefix)
    if known is None or known.until < time.monotonic():
        return None
    if not hmac.compare_digest(known.key_hash, _hash(secret_part)):
        raise Unauthorized("终端密钥无效或已停用", code="bad-terminal-key")
    return known.principal


def verify_key(session: Session, plain: str) -> Principal:
    """The terminal principal a key stands for, or Unauthorized (removed terminals' keys are refused)."""
    hit = verify_key_cached(plain)
    if hit is not None:
        return hit
    prefix, secret_part = _split(plain)
    term = session.scalar(select(Terminal).where(Terminal.key_prefix == prefix))
    digest = _hash(secret_part)
    if (
        term is None
        or term.key_hash is None
        or term.status == "removed"
        or not hmac.compare_digest(term.key_hash, digest)
    ):
        raise Unauthorized("终端密钥无效或已停用", code="bad-terminal-key")
    principal = terminal_principal(term)
    _KEYS[prefix] = _Known(digest, principal, time.monotonic() + KEY_TTL)
    return principal


# ------------------------------------------------------------------ transactions


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
    """A posted transaction and whether this call created it (False: an identical replay)."""

    txn: TerminalTransaction
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


_SKEW = timedelta(minutes=5)  # a terminal clock a little ahead is tolerated


@dataclass(frozen=True)
class TerminalRef:
    """What posting needs of a terminal (cached for KEY_TTL seconds: one INSERT per posted transaction)."""

    id: int
    code: str
    institution_code: str
    status: str


_REFS: dict[str, tuple[float, TerminalRef]] = {}


def terminal_ref(session: Session, *, code: str) -> TerminalRef:
    """A terminal's reference by code, from this process's memory when fresh, else from the database."""
    hit = _REFS.get(code)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    term = get_terminal(session, code=code)
    ref = TerminalRef(term.id, term.code, term.institution_code, term.status)
    if len(_REFS) > 100_000:
        _REFS.clear()
    _REFS[code] = (time.monotonic() + KEY_TTL, ref)
    return ref


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
    """`resolve_terminal` from this process's memory only (no database); None when not remembered."""
    hit = _REFS.get(_terminal_code(actor, terminal_code))
    if hit is None or hit[0] <= time.monotonic():
        return None
    return _check_ref(actor, hit[1])


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


def resolve_terminal(session: Session, *, actor: Principal, terminal_code: str | None) -> TerminalRef:
    """The terminal a post is for: the key's own terminal, or one of the caller institution's terminals."""
    return _check_ref(actor, terminal_ref(session, code=_terminal_code(actor, terminal_code)))


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
        return Posted(_same(existing, txn), False)
    if txn.kind == "issue_card" and txn.outcome == "ok" and txn.card_no:
        _issue_at_terminal(session, terminal, txn)
    return Posted(TerminalTransaction(id=new_id, **values), True)  # not added: the row is written


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


def today_slots(session: Session, *, hospital_code: str, limit: int = 40) -> list[dict[str, Any]]:
    """Today's slots at a hospital with public places left (Beijing time), for a terminal's 当日挂号."""
    t = now()
    local = t.astimezone(SHANGHAI)
    end = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    out = []
    for slot in booking.find_slots(
        session, hospital_code=hospital_code, start_from=t, start_to=end, free_only=True, limit=limit
    ):
        a = booking.availability(slot, at=t)
        if a.bookable <= 0:
            continue
        out.append(
            {
                "id": slot.id,
                "department": booking.department_name(slot.department_code),
                "start": slot.starts_at.astimezone(SHANGHAI).strftime("%H:%M"),
                "end": slot.ends_at.astimezone(SHANGHAI).strftime("%H:%M"),
                "left": a.bookable,
            }
        )
    return out
