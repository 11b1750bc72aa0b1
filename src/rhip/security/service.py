"""Security services: hashing, users, tokens, API keys and the audit log. Callers own the transaction."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from rhip.security.models import ApiKey, AuditEvent, RevokedToken, User
from rhip.security.passwords import check_password
from rhip.security.roles import Role

_hasher = PasswordHasher()
# checked when no such user exists, so a missing account costs the same time as a wrong password
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
JWT_ALGORITHM = "HS256"
API_KEY_PREFIX = "rhip_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a subject with one role, maybe bound to an institution."""

    subject: str
    role: Role
    institution_code: str | None = None
    via: str = "token"
    name: str | None = None
    jti: str | None = None
    expires: int = 0


def hash_password(password: str) -> str:
    """Argon2id hash of a password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise Invalid(
            f"未知角色：{value}（可选：{', '.join(r.value for r in Role)}）", code="unknown-role"
        ) from None


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str | None = None,
    institution_code: str | None = None,
) -> User:
    """Create a user; the username must be new and the password at least 8 characters."""
    r = _role(role)
    check_password(password, username=username)
    if r is Role.uploader and not institution_code:
        raise Invalid("数据上传员必须属于一个机构", code="institution-required")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"用户名已存在：{username}", code="username-taken")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=r.value,
        institution_code=institution_code,
        active=True,
        created_at=now(),
        verified_at=now(),  # created by an administrator, who checked who it is for
        verified_via="admin",
    )
    session.add(user)
    session.flush()
    audit(session, actor="system", action="user.create", target=username, detail={"role": r.value})
    return user


def authenticate(session: Session, *, username: str, password: str) -> User:
    """The active user with these credentials, or Unauthorized (the caller audits the failure)."""
    user = session.scalar(select(User).where(User.username == username[:64]))
    # a missing user costs the same argon2 check as a wrong password: timing tells nothing
    ok = verify_password(user.password_hash if user is not None else _DUMMY_HASH, password)
    if user is None or not user.active or not ok:
        raise Unauthorized("用户名或密码错误", code="bad-credentials")
    if user.verified_at is None:
        raise Forbidden(
            "账号尚未完成实名核验：请重新注册并输入短信验证码，或携带身份证到医院窗口核验",
            code="account-unverified",
        )
    audit(session, actor=username, role=user.role, action="login", institution_code=user.institution_code)
    return user


def issue_token(
    secret: str,
    *,
    subject: str,
    role: str,
    institution_code: str | None = None,
    ttl: timedelta = timedelta(hours=12),
    name: str | None = None,
) -> str:
    """A signed bearer token (JWT, HS256) for one subject and role."""
    r = _role(role)
    issued = now()
    claims: dict[str, Any] = {
        "sub": subject,
        "role": r.value,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if institution_code:
        claims["inst"] = institution_code
    if name:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


# Verified tokens, by (secret, token): a signature is checked once per token, not per request (PyJWT
# costs ~60 µs a call). Only the signature and claims are cached; expiry is checked on every call.
_VERIFIED: dict[tuple[str, str], tuple[Principal, int]] = {}
_VERIFIED_MAX = 10_000


def decode_token(secret: str, token: str) -> Principal:
    """The principal a token names, or Unauthorized when it is bad or expired."""
    hit = _VERIFIED.get((secret, token))
    if hit is None:
        hit = _verify_token(secret, token)
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.clear()
        _VERIFIED[(secret, token)] = hit
    principal, exp = hit
    # expiry is checked against our clock so tests can move time
    if exp <= int(now().timestamp()):
        raise Unauthorized("令牌已过期，请重新登录", code="token-expired")
    return principal


def _verify_token(secret: str, token: str) -> tuple[Principal, int]:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["exp", "sub", "role"], "verify_exp": False},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"令牌无效：{exc}", code="bad-token") from None
    try:
        role = Role(claims["role"])
    except ValueError:
        raise Unauthorized("令牌中的角色无效", code="bad-token") from None
    principal = Principal(
        subject=str(claims["sub"]),
        role=role,
        institution_code=claims.get("inst"),
        via="token",
        name=claims.get("name"),
        jti=str(claims["jti"]) if claims.get("jti") else None,
        expires=int(claims["exp"]),
    )
    return principal, int(claims["exp"])


def _key_hash(secret_part: str) -> str:
    return hashlib.sha256(secret_part.encode()).hexdigest()


def create_api_key(session: Session, *, institution_code: str, name: str) -> tuple[ApiKey, str]:
    """A new API key for an institution; the plain key is returned once and never stored."""
    prefix = secrets.token_hex(4)
    secret_part = secrets.token_urlsafe(32)
    key = ApiKey(
        prefix=prefix,
        key_hash=_key_hash(secret_part),
        institution_code=institution_code,
        name=name,
        created_at=now(),
    )
    session.add(key)
    session.flush()
    audit(session, actor="system", action="api_key.create", target=prefix, institution_code=institution_code)
    return key, f"{API_KEY_PREFIX}{prefix}_{secret_part}"


def verify_api_key(session: Session, plain: str) -> Principal:
    """The uploader principal an API key stands for, or Unauthorized."""
    if not plain.startswith(API_KEY_PREFIX) or plain.count("_") < 2:
        raise Unauthorized("API 密钥格式错误", code="bad-api-key")
    prefix, secret_part = plain[len(API_KEY_PREFIX) :].split("_", 1)
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if (
        key is None
        or key.revoked_at is not None
        or not hmac.compare_digest(key.key_hash, _key_hash(secret_part))
    ):
        raise Unauthorized("API 密钥无效或已吊销", code="bad-api-key")
    return Principal(
        subject=f"apikey:{prefix}", role=Role.uploader, institution_code=key.institution_code, via="api_key"
    )


def revoke_api_key(session: Session, *, prefix: str) -> ApiKey:
    """Revoke an API key by its prefix."""
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None:
        raise NotFound(f"API 密钥不存在：{prefix}")
    key.revoked_at = now()
    audit(
        session, actor="system", action="api_key.revoke", target=prefix, institution_code=key.institution_code
    )
    return key


def audit(
    session: Session,
    *,
    actor: str,
    action: str,
    role: str | None = None,
    target: str | None = None,
    outcome: str = "ok",
    institution_code: str | None = None,
    detail: dict[str, Any] | None = None,
    client_addr: str | None = None,
    user_agent: str | None = None,
) -> AuditEvent:
    """Append one event to the audit log (in the caller's transaction); long values are cut to fit."""
    event = AuditEvent(
        at=now(),
        actor=(actor or "")[:128],
        role=role[:32] if role else None,
        action=action[:64],
        target=target[:255] if target else None,
        outcome=outcome[:16],
        institution_code=institution_code[:32] if institution_code else None,
        detail=detail,
        client_addr=client_addr[:64] if client_addr else None,
        user_agent=user_agent[:255] if user_agent else None,
    )
    session.add(event)
    return event


def audit_events(
    session: Session, *, limit: int = 100, offset: int = 0, action: str | None = None
) -> list[AuditEvent]:
    """The newest audit events first."""
    q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
    if action:
        q = q.where(AuditEvent.action == action)
    return list(session.scalars(q))


def revoke_token(session: Session, principal: Principal) -> None:
    """Withdraw a token before its expiry (sign-out); idempotent."""
    if not principal.jti:
        return
    from rhip.db.engine import dialect_insert

    expires = datetime.fromtimestamp(principal.expires or int(now().timestamp()), tz=UTC)
    session.execute(
        dialect_insert(session, RevokedToken)
        .values(jti=principal.jti[:64], revoked_at=now(), expires_at=expires)
        .on_conflict_do_nothing(index_elements=["jti"])
    )


def revoked_since(session: Session, since: datetime | None) -> list[tuple[str, datetime]]:
    """Token ids revoked at or after `since` (all unexpired ones when None), with their revocation time."""
    q = select(RevokedToken.jti, RevokedToken.revoked_at)
    q = (
        q.where(RevokedToken.expires_at > now())
        if since is None
        else q.where(RevokedToken.revoked_at >= since)
    )
    return [(jti, at) for jti, at in session.execute(q)]
