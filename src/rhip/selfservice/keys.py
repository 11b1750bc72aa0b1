"""Terminal keys and what a worker remembers of its terminals.

A key is `rhipt_<prefix>_<secret>`; only the SHA-256 of the secret is stored. A verified key, and the
reference of a terminal that posted, are remembered in the worker for KEY_TTL seconds, so that a posted
transaction costs one INSERT and nothing else: a key replaced or a terminal removed in another worker
stops working within that time, in the same worker at once (`forget`). A remembered key is still
compared with the presented one (its hash, in constant time) on every request."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.errors import NotFound, Unauthorized
from rhip.security.roles import Role
from rhip.security.service import Principal
from rhip.selfservice.models import Terminal

KEY_PREFIX = "rhipt_"
KEY_TTL = 30.0  # seconds a verified key or terminal is trusted without reading its row (revocation delay)
MAX_REMEMBERED = 100_000


@dataclass(frozen=True)
class TerminalRef:
    """What posting needs of a terminal (remembered for KEY_TTL seconds)."""

    id: int
    code: str
    institution_code: str
    status: str


@dataclass(frozen=True)
class _Known:
    key_hash: str
    principal: Principal
    until: float


_KEYS: dict[str, _Known] = {}  # key prefix -> the verified key
_REFS: dict[str, tuple[float, TerminalRef]] = {}  # terminal code -> (until, reference)


def get_terminal(session: Session, *, code: str) -> Terminal:
    """One terminal by its code, or NotFound."""
    term = session.scalar(select(Terminal).where(Terminal.code == code))
    if term is None:
        raise NotFound(f"终端不存在：{code}", code="no-terminal")
    return term


def forget(*, prefix: str | None = None, code: str | None = None) -> None:
    """Drop a key and a terminal from this worker's memory (at once; other workers within KEY_TTL)."""
    if prefix:
        _KEYS.pop(prefix, None)
    if code:
        _REFS.pop(code, None)


def forget_key(prefix: str | None) -> None:
    """Drop a key from this worker's memory."""
    forget(prefix=prefix)


def _hash(secret_part: str) -> str:
    return hashlib.sha256(secret_part.encode()).hexdigest()


def new_key(term: Terminal) -> str:
    """Give a terminal a new key (the old one forgotten); the plain key is returned, only its hash kept."""
    forget(prefix=term.key_prefix)
    prefix = secrets.token_hex(4)
    secret_part = secrets.token_urlsafe(24)
    term.key_prefix, term.key_hash, term.key_issued_at = prefix, _hash(secret_part), now()
    return f"{KEY_PREFIX}{prefix}_{secret_part}"


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
    if len(_KEYS) > MAX_REMEMBERED:
        _KEYS.clear()
    _KEYS[prefix] = _Known(digest, principal, time.monotonic() + KEY_TTL)
    _remember(term)  # the terminal's reference too: its first post needs no other read
    return principal


def _remember(term: Terminal) -> TerminalRef:
    ref = TerminalRef(term.id, term.code, term.institution_code, term.status)
    if len(_REFS) > MAX_REMEMBERED:
        _REFS.clear()
    _REFS[term.code] = (time.monotonic() + KEY_TTL, ref)
    return ref


def terminal_ref(session: Session, *, code: str) -> TerminalRef:
    """A terminal's reference by code, from this worker's memory when fresh, else from the database."""
    hit = remembered_ref(code)
    return hit if hit is not None else _remember(get_terminal(session, code=code))


def remembered_ref(code: str) -> TerminalRef | None:
    """A terminal's reference from this worker's memory only; None when not remembered or stale."""
    hit = _REFS.get(code)
    if hit is None or hit[0] <= time.monotonic():
        return None
    return hit[1]
