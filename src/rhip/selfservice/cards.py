"""Cards: physical card issuance (市民卡/医疗卡/就诊卡) and the electronic health card (电子健康卡) with its
static and dynamic QR codes and their resolution.

THE CODES ARE THIS PLATFORM'S OWN FORMAT, NOT THE NATIONAL ONE: the national electronic health card's QR
payload is not public. Static: ``RHIPEHC0:<card id>:<random token>`` (to be shown with a second factor:
the last four characters of the ID number). Dynamic: ``RHIPEHC1:<payload>.<tag>`` where payload is
base64url of ``<card id>|<expiry, unix seconds>|<nonce>`` and tag the first 16 bytes of HMAC-SM3 over it
under a key derived from the platform's secret; valid DYNAMIC_TTL seconds and usable once (the nonce is
unique in selfservice_card_uses)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, literal, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from rhip.booking import service as booking
from rhip.clock import SHANGHAI, now
from rhip.db.engine import dialect_insert
from rhip.errors import Conflict, Forbidden, Invalid, NotFound
from rhip.security.models import AuditEvent
from rhip.security.roles import Role
from rhip.security.service import Principal
from rhip.selfservice.models import CardBaseline, CardIssue, CardUse, HealthCard

STATIC_PREFIX = "RHIPEHC0:"
DYNAMIC_PREFIX = "RHIPEHC1:"
DYNAMIC_TTL = 60  # seconds
TAG_BYTES = 16
CHANNELS = {"window": "人工窗口", "terminal": "自助机", "doctor": "医生工作站", "app": "服务号/小程序"}


def _sm3_hmac(key: bytes, msg: bytes) -> bytes:
    """HMAC-SM3 (RFC 2104 over GB/T 32905 SM3): hashlib when OpenSSL has sm3, else gmssl."""
    if "sm3" in hashlib.algorithms_available:
        return hmac.new(key, msg, "sm3").digest()
    return _gmssl_hmac(key, msg)


def _gmssl_hmac(key: bytes, msg: bytes) -> bytes:
    from gmssl import sm3

    def digest(data: bytes) -> bytes:
        return bytes.fromhex(sm3.sm3_hash(list(data)))

    block = 64
    if len(key) > block:
        key = digest(key)
    key = key.ljust(block, b"\0")
    inner = digest(bytes(b ^ 0x36 for b in key) + msg)
    return digest(bytes(b ^ 0x5C for b in key) + inner)


@lru_cache(maxsize=8)
def _key(secret: str) -> bytes:
    """The QR signing key, derived from the platform's secret (HMAC-SM3 of a fixed label)."""
    return _sm3_hmac(secret.encode(), b"rhip electronic health card QR v1")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ------------------------------------------------------------------ physical cards


def card_counts(session: Session, *, start: datetime, end: datetime) -> dict[str, int]:
    """Cards issued in [start, end) per institution (window and terminal together)."""
    rows = session.execute(
        select(CardIssue.institution_code, func.count())
        .where(CardIssue.issued_at >= start, CardIssue.issued_at < end)
        .group_by(CardIssue.institution_code)
    ).all()
    return {code: int(n) for code, n in rows}


def issue_cards(
    session: Session, *, institution_code: str, cards: list[tuple[str, datetime]], card_type: str = "medical"
) -> int:
    """Record physical cards issued at an institution's windows, (card number, time) each; a card number
    already recorded is skipped. Returns how many were new."""
    if card_type not in ("citizen", "medical", "visit"):
        raise Invalid("卡类型应为 citizen、medical 或 visit", code="bad-card-type")
    rows = [
        {"institution_code": institution_code, "card_type": card_type, "card_no": no, "channel": "window",
         "issued_at": at}
        for no, at in cards
    ]  # fmt: skip
    if not rows:
        return 0
    table = CardIssue.__table__
    stmt = (
        dialect_insert(session, table)
        .on_conflict_do_nothing(index_elements=["institution_code", "card_type", "card_no"])
        .returning(table.c.id)
    )
    return len(session.connection().execute(stmt, rows).all())


def set_card_baseline(session: Session, *, before_month: str, cards: int, source: str) -> None:
    """Cards issued before a month that the platform holds no rows for (总开卡量 carried over)."""
    row = session.scalar(select(CardBaseline).where(CardBaseline.before_month == before_month))
    if row is None:
        session.add(CardBaseline(before_month=before_month, cards=cards, source=source))
    else:
        row.cards, row.source = cards, source


def cards_to_date(session: Session, *, month: str, end: datetime) -> int:
    """总开卡量 at a month's end: the latest baseline not after the month plus the cards recorded since."""
    base = session.execute(
        select(CardBaseline.before_month, CardBaseline.cards)
        .where(CardBaseline.before_month <= month)
        .order_by(CardBaseline.before_month.desc())
        .limit(1)
    ).first()
    q = select(func.count()).select_from(CardIssue).where(CardIssue.issued_at < end)
    if base is not None:
        y, m = (int(x) for x in base[0].split("-"))
        q = q.where(CardIssue.issued_at >= datetime(y, m, 1, tzinfo=SHANGHAI))
    return (int(base[1]) if base else 0) + int(session.scalar(q) or 0)


# ------------------------------------------------------------------ the electronic health card


def issue_health_card(session: Session, *, id_number: str, name: str) -> HealthCard:
    """The real-name resident's electronic health card, created on first request (one per ID number)."""
    number = booking.person_id(id_number)
    card = session.scalar(select(HealthCard).where(HealthCard.id_number == number))
    if card is not None:
        return card
    if not name.strip():
        raise Invalid("实名领卡须给出姓名", code="name-required")
    card = HealthCard(
        card_id="EHC" + "".join(secrets.choice("0123456789") for _ in range(17)),
        id_number=number,
        person_id=None,  # the EMPI (rhip.identity) fills it once it links this ID number
        name=name.strip(),
        static_code=secrets.token_urlsafe(18),
        status="active",
        issued_at=now(),
    )
    session.add(card)
    session.flush()
    return card


def get_health_card(session: Session, *, id_number: str) -> HealthCard:
    """A resident's health card by ID number, or NotFound."""
    card = session.scalar(select(HealthCard).where(HealthCard.id_number == booking.person_id(id_number)))
    if card is None:
        raise NotFound("尚未领取电子健康卡", code="no-health-card")
    return card


def static_code(card: HealthCard) -> str:
    """The static QR text (shown with a second factor)."""
    return f"{STATIC_PREFIX}{card.card_id}:{card.static_code}"


def dynamic_code(card: HealthCard, *, secret: str, ttl: int = DYNAMIC_TTL) -> tuple[str, datetime]:
    """A fresh dynamic QR text, signed with HMAC-SM3, valid `ttl` seconds and usable once."""
    if card.status != "active":
        raise Conflict("电子健康卡已冻结", code="card-frozen")
    expires = int(now().timestamp()) + ttl
    payload = f"{card.card_id}|{expires}|{secrets.token_hex(8)}".encode()
    tag = _sm3_hmac(_key(secret), payload)[:TAG_BYTES]
    return f"{DYNAMIC_PREFIX}{_b64(payload)}.{_b64(tag)}", datetime.fromtimestamp(expires, tz=now().tzinfo)


@dataclass(frozen=True)
class Resolved:
    """A resolved code: the card's fields the answer needs and the use recorded."""

    card_id: str
    name: str
    id_number: str
    person_id: str | None
    code_kind: str
    channel: str
    use_id: int


def channel_of(actor: Principal, requested: str | None) -> str:
    """The use channel: a terminal key 自助机, a doctor 医生工作站, else as asked (default window)."""
    if actor.via == "terminal":
        return "terminal"
    if actor.role is Role.doctor:
        return "doctor"
    chosen = requested or "window"
    if chosen not in CHANNELS:
        raise Invalid(f"用卡渠道应为 {'、'.join(CHANNELS)}", code="bad-channel")
    return chosen


def resolve(
    session: Session,
    *,
    code: str,
    actor: Principal,
    secret: str,
    second_factor: str | None = None,
    channel: str | None = None,
    id_shown: str = "masked",
) -> Resolved:
    """The card a QR code stands for, recording one use and its audit event (`card.resolve`, with
    `id_shown` saying whether the answer shows the ID number in full); refused when forged, expired,
    replayed or the card is frozen. The code's signature, expiry and form are checked before any
    statement; a dynamic code then costs one statement on PostgreSQL."""
    chan = channel_of(actor, channel)
    code = code.strip()
    if code.startswith(DYNAMIC_PREFIX):
        card_id, nonce = _check_dynamic(code[len(DYNAMIC_PREFIX) :], secret)
        kind = "dynamic"
    elif code.startswith(STATIC_PREFIX):
        card_id, nonce = _check_static(session, code[len(STATIC_PREFIX) :], second_factor), None
        kind = "static"
    else:
        raise Invalid("不是本平台的电子健康卡二维码", code="bad-code")
    at = now()
    params = {
        "card_id": card_id,
        "at": at,
        "channel": chan,
        "institution_code": actor.institution_code,
        "actor": actor.subject[:128],
        "role": actor.role.value,
        "code_kind": kind,
        "nonce": nonce,
        "detail": {"kind": kind, "channel": chan, "id_number": id_shown},
    }
    row = _record_use(session, params)
    if row is None:
        raise NotFound("电子健康卡不存在", code="no-health-card")
    if row.status != "active":
        raise Conflict("电子健康卡已冻结", code="card-frozen")
    if row.use_id is None:  # the nonce is unique: a second use of the same dynamic code inserted nothing
        raise Conflict("该动态码已使用过（重放）", code="code-replayed")
    return Resolved(row.card_id, row.name, row.id_number, row.person_id, kind, chan, int(row.use_id))


_CARDS: Table = HealthCard.__table__  # type: ignore[assignment]
_USES: Table = CardUse.__table__  # type: ignore[assignment]
_EVENTS: Table = AuditEvent.__table__  # type: ignore[assignment]
_USE_COLUMNS = ("card_id", "at", "channel", "institution_code", "actor", "code_kind", "nonce")
_EVENT_COLUMNS = ("at", "actor", "role", "institution_code", "action", "target", "outcome", "detail")
_ROW_FIELDS = ("card_id", "name", "id_number", "person_id", "status", "use_id")  # what _record_use gives
_CARD_ROW = tuple(_CARDS.c[n] for n in ("id", "card_id", "name", "id_number", "person_id", "status"))


def _use_values(source: Any) -> list[Any]:
    """The card-use row's values (in _USE_COLUMNS' order) with the card id `source`."""
    return [source, bindparam("at", type_=_USES.c.at.type), bindparam("channel"),
            bindparam("institution_code"), bindparam("actor"), bindparam("code_kind"),
            bindparam("nonce")]  # fmt: skip


def _event_values(target: Any) -> list[Any]:
    """The audit event's values (`card.resolve`, outcome ok) for the card id `target`."""
    return [bindparam("at", type_=_EVENTS.c.at.type), bindparam("actor"), bindparam("role"),
            bindparam("institution_code"), literal("card.resolve"), target, literal("ok"),
            bindparam("detail", type_=_EVENTS.c.detail.type)]  # fmt: skip


@lru_cache(maxsize=1)
def _one_statement() -> Any:
    """PostgreSQL: the card's row, the use (skipped when the card is not active or the nonce was used)
    and the audit event (only when the use was recorded), in one statement built once."""
    card = select(*_CARD_ROW).where(_CARDS.c.card_id == bindparam("card_id")).cte("card")
    use = (
        postgresql.insert(_USES)
        .from_select(_USE_COLUMNS, select(*_use_values(card.c.id)).where(card.c.status == "active"))
        .on_conflict_do_nothing(index_elements=["nonce"])
        .returning(_USES.c.id)
        .cte("use")
    )
    event = (
        insert(_EVENTS)
        .from_select(_EVENT_COLUMNS, select(*_event_values(card.c.card_id)).join_from(card, use, true()))
        .cte("event")
    )
    return (
        select(*(card.c[n] for n in _ROW_FIELDS[:-1]), use.c.id.label("use_id"))
        .select_from(card.outerjoin(use, true()))
        .add_cte(event)
    )


def _record_use(session: Session, params: dict[str, Any]) -> Any:
    """Record a use of the card `params["card_id"]` and its audit event; the card's row with `use_id`
    (None when nothing was recorded), or None when there is no such card."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        return conn.execute(_one_statement(), params).first()
    card = conn.execute(select(*_CARD_ROW).where(_CARDS.c.card_id == params["card_id"])).first()
    if card is None or card.status != "active":
        return card and _with_use(card, None)
    use = sqlite.insert(_USES).values({c: params[c] for c in _USE_COLUMNS} | {"card_id": card.id})
    if params["nonce"] is not None:
        use = use.on_conflict_do_nothing(index_elements=["nonce"])
    use_id = conn.scalar(use.returning(_USES.c.id))
    if use_id is not None:
        event = {c: params.get(c) for c in _EVENT_COLUMNS} | {"target": card.card_id}
        conn.execute(insert(_EVENTS).values(event | {"action": "card.resolve", "outcome": "ok"}))
    return _with_use(card, use_id)


@dataclass(frozen=True)
class _Row:
    card_id: str
    name: str
    id_number: str
    person_id: str | None
    status: str
    use_id: int | None


def _with_use(card: Any, use_id: int | None) -> _Row:
    return _Row(card.card_id, card.name, card.id_number, card.person_id, card.status, use_id)


def _check_dynamic(body: str, secret: str) -> tuple[str, str]:
    """The card id and nonce of a dynamic code whose signature and expiry hold."""
    try:
        p64, t64 = body.split(".", 1)
        payload, tag = _unb64(p64), _unb64(t64)
        card_id, expires, nonce = payload.decode().split("|")
        exp = int(expires)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("二维码格式错误", code="bad-code") from None
    if not hmac.compare_digest(_sm3_hmac(_key(secret), payload)[:TAG_BYTES], tag):
        raise Invalid("二维码签名不符（伪造或已篡改）", code="bad-signature")
    if exp <= int(now().timestamp()):
        raise Conflict("动态码已过期，请刷新后再出示", code="code-expired")
    return card_id, nonce


def _check_static(session: Session, body: str, second_factor: str | None) -> str:
    """The card id of a static code whose token and second factor (ID number's last four) hold."""
    card_id, _, token = body.partition(":")
    card = (
        session.connection()
        .execute(select(_CARDS.c.static_code, _CARDS.c.id_number).where(_CARDS.c.card_id == card_id))
        .first()
    )
    if card is None or not hmac.compare_digest(card.static_code, token):
        raise Invalid("静态码无效", code="bad-code")
    if not second_factor or second_factor.strip().upper() != card.id_number[-4:]:
        raise Forbidden("静态码须同时核对身份证号后四位", code="second-factor")
    return card_id


def uses_by_channel(session: Session, *, start: datetime, end: datetime) -> dict[str, int]:
    """Health-card uses in [start, end) by channel."""
    rows = session.execute(
        select(CardUse.channel, func.count())
        .where(CardUse.at >= start, CardUse.at < end)
        .group_by(CardUse.channel)
    ).all()
    return {c: int(n) for c, n in rows}
