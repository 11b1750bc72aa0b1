"""Who may see a person's record (经患者授权): the resident always; a doctor of another institution only
while a consent is in force (a grant, a one-time code redeemed at the visit, or a recorded emergency); a
doctor's own institution its own records. Every decision is written to the access log before any data."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, bindparam, case, cast, func, or_, select
from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.db.base import UtcDateTime
from rhip.errors import Conflict, Forbidden, Invalid, NotFound, TooManyRequests
from rhip.identity import service as identity
from rhip.identity.service import PersonLinks
from rhip.records import audit
from rhip.records.models import AccessCode, AccessLog, Consent
from rhip.registry import service as registry
from rhip.security.roles import Role
from rhip.security.service import Principal

CODE_TTL = timedelta(minutes=10)
CODE_CONSENT = timedelta(hours=12)  # a visit: the rest of the working day
EMERGENCY = timedelta(hours=4)
MAX_GRANT_DAYS = 366
MAX_CODE_FAILURES = 5  # wrong codes per doctor and person in CODE_TTL, then refused
CLINICIANS = (Role.doctor, Role.family_doctor)
REFUSED = "records-consent-required"  # the error code of a refused view


@dataclass(frozen=True)
class Access:
    """What a caller may see of one person: everything, or only the named institution's own records."""

    person_id: str
    allowed: bool
    basis: str  # self | consent:N | emergency:N | own-institution | none
    institution_only: str | None = None
    keys: tuple[tuple[str, str], ...] = ()  # the person's (institution, local patient id) pairs
    id_numbers: tuple[str, ...] = ()  # the person's 18-digit ID numbers


def resident_person(session: Session, principal: Principal) -> str:
    """The person a resident's account is bound to (its real-name ID number), or NotFound."""
    found = identity.find_persons(session, id_number=principal.subject)
    if not found:
        raise NotFound("平台尚无与您实名信息对应的健康档案", code="records-no-person")
    return found[0]


def _person(session: Session, person_id: str) -> str:
    """The surviving person id (a merged person points to the one it was merged into)."""
    return identity.person_links(session, person_id=person_id).id


def _found(p: PersonLinks, allowed: bool, basis: str, only: str | None = None) -> Access:
    return Access(p.id, allowed, basis, only, p.keys, p.id_numbers)


def _in_force() -> list[ColumnElement[bool]]:
    """The conditions of a consent in force for a clinician at a time (its person aside), as bound parameters
    (`_basis_params`): the statement that carries them is built once."""
    t = bindparam("consent_at", type_=UtcDateTime())
    user = bindparam("consent_user", type_=String())
    return [
        Consent.grantee_institution == bindparam("consent_inst", type_=String()),
        or_(Consent.grantee_user.is_(None), Consent.grantee_user == user),
        Consent.starts_at <= t,
        Consent.ends_at > t,
        Consent.revoked_at.is_(None),
    ]


# emergencies first (their basis flags the view for review), then the consent that lasts longest
_PREFERRED = ((Consent.kind == "emergency").desc(), Consent.ends_at.desc())


def _consent_basis(person: ColumnElement[str]) -> ColumnElement[Any]:
    """The basis ("emergency:N" or "consent:N") of the consent in force for the clinician of `_basis_params`,
    as a scalar subquery on the person id: the EMPI read carries it, so a view's access is decided in one
    round trip."""
    label = case((Consent.kind == "emergency", "emergency"), else_="consent")
    return (
        select(label + ":" + cast(Consent.id, String))
        .where(Consent.person_id == person, *_in_force())
        .order_by(*_PREFERRED)
        .limit(1)
        .scalar_subquery()
    )


def _basis_params(principal: Principal) -> dict[str, Any]:
    """The bound parameters of `_consent_basis` for this clinician now."""
    return {
        "consent_inst": principal.institution_code or "",
        "consent_user": principal.subject,
        "consent_at": now(),
    }


def check(
    session: Session, *, principal: Principal, person_id: str | None, action: str, detail: str = ""
) -> Access:
    """Decide and log one access (the log row is written whatever the outcome, before any data).

    `person_id` None: the resident's own record (the person their real-name account is bound to)."""
    access = decide(session, principal=principal, person_id=person_id)
    log(session, principal=principal, access=access, action=action, detail=detail)
    return access


def log(session: Session, *, principal: Principal, access: Access, action: str, detail: str = "") -> None:
    """Write the access-log row of a decided access (Unavailable if it cannot be written)."""
    audit.write(
        session,
        principal=principal,
        person_id=access.person_id,
        action=action,
        basis=access.basis,
        outcome="allowed" if access.allowed else "refused",
        detail=detail,
    )


def decide(session: Session, *, principal: Principal, person_id: str | None) -> Access:
    """Who may see what of this person (nothing is logged here: `check` and `records.viewing` log)."""
    if principal.role == Role.resident:
        own = identity.person_links(session, person_id=resident_person(session, principal))
        try:
            ok = person_id is None or person_id == own.id or _person(session, person_id) == own.id
        except NotFound:
            ok = False
        return _found(own, True, "self") if ok else Access(person_id or own.id, False, "none")
    if person_id is None:
        return Access("", False, "none")
    clinician = principal.role in CLINICIANS
    try:
        # a clinician's consent is read with the person's keys (one statement); others need neither
        p = identity.person_links(
            session,
            person_id=person_id,
            also=_consent_basis if clinician else None,
            params=_basis_params(principal) if clinician else None,
        )
    except NotFound:
        return Access(person_id, False, "none")
    if not clinician:
        return Access(p.id, False, "none")
    if p.also:
        return _found(p, True, str(p.also))
    inst = principal.institution_code
    if inst and any(i == inst for i, _k in p.keys):
        return _found(p, True, "own-institution", inst)
    return Access(p.id, False, "none")


def refusal(access: Access) -> Forbidden:
    """The error for a refused access."""
    return Forbidden(
        "未获患者授权：请患者在 12320 或健康南京授权本机构，或出示一次性授权码；急诊可登记紧急调阅理由",
        code=REFUSED,
    )


# ----------------------------------------------------------------------------------------- grants


def grant(
    session: Session,
    *,
    principal: Principal,
    institution_code: str,
    doctor: str | None,
    days: int,
) -> Consent:
    """The resident authorises an institution (or one of its doctors) for a number of days."""
    if not 1 <= days <= MAX_GRANT_DAYS:
        raise Invalid(f"授权天数应为 1–{MAX_GRANT_DAYS}", code="records-grant-days")
    registry.get_institution(session, code=institution_code)
    person_id = resident_person(session, principal)
    t = now()
    c = Consent(
        person_id=person_id,
        kind="grant",
        grantee_institution=institution_code,
        grantee_user=(doctor or None),
        starts_at=t,
        ends_at=t + timedelta(days=days),
        created_by=principal.subject,
    )
    session.add(c)
    session.flush()
    return c


def consents_of(session: Session, *, person_id: str) -> list[Consent]:
    """A person's consents, newest first (all kinds, revoked and expired included)."""
    return list(
        session.scalars(
            select(Consent).where(Consent.person_id == person_id).order_by(Consent.created_at.desc())
        ).all()
    )


def revoke(session: Session, *, principal: Principal, consent_id: int) -> Consent:
    """The resident withdraws a grant (effective at once)."""
    person_id = resident_person(session, principal)
    c = session.get(Consent, consent_id)
    if c is None or c.person_id != person_id:
        raise NotFound("没有这项授权", code="records-consent-not-found")
    if c.revoked_at is not None:
        raise Conflict("该授权已撤销", code="records-consent-revoked")
    c.revoked_at = now()
    session.flush()
    return c


# ------------------------------------------------------------------------------ one-time codes


def _code_hash(secret: str, person_id: str, code: str) -> str:
    return hmac.new(secret.encode(), f"{person_id}:{code}".encode(), hashlib.sha256).hexdigest()


def new_code(session: Session, *, principal: Principal, secret: str) -> tuple[str, AccessCode]:
    """A six-digit code for the resident to read to the doctor (ten minutes, one use)."""
    person_id = resident_person(session, principal)
    code = f"{secrets.randbelow(10**6):06d}"
    row = AccessCode(
        person_id=person_id,
        code_hash=_code_hash(secret, person_id, code),
        expires_at=now() + CODE_TTL,
    )
    session.add(row)
    session.flush()
    return code, row


def redeem_failures(session: Session, *, principal: Principal, person_id: str) -> int:
    """Wrong codes this clinician entered for this person within the code lifetime."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(AccessLog)
            .where(
                AccessLog.actor == principal.subject,
                AccessLog.person_id == person_id,
                AccessLog.action == "redeem-code",
                AccessLog.outcome == "refused",
                AccessLog.at > now() - CODE_TTL,
            )
        )
        or 0
    )


def redeem(
    session: Session, *, principal: Principal, person_id: str, code: str, secret: str
) -> Consent | None:
    """A clinician turns the code into a visit-long consent; None when the code is wrong, used or expired.

    The attempt is logged either way; after MAX_CODE_FAILURES wrong codes the clinician is refused.
    """
    pid = _person(session, person_id)
    if redeem_failures(session, principal=principal, person_id=pid) >= MAX_CODE_FAILURES:
        raise TooManyRequests("授权码错误次数过多，请 10 分钟后再试", code="records-code-throttled")
    t = now()
    row = session.scalars(
        select(AccessCode)
        .where(AccessCode.code_hash == _code_hash(secret, pid, code.strip()), AccessCode.person_id == pid)
        .with_for_update()
    ).first()
    ok = row is not None and row.used_at is None and row.expires_at > t
    consent = None
    if ok and row is not None:
        row.used_at, row.used_by = t, principal.subject
        consent = Consent(
            person_id=pid,
            kind="code",
            grantee_institution=principal.institution_code or "",
            grantee_user=principal.subject,
            starts_at=t,
            ends_at=t + CODE_CONSENT,
            created_by=principal.subject,
        )
        session.add(consent)
        session.flush()
    audit.write(
        session,
        principal=principal,
        person_id=pid,
        action="redeem-code",
        basis=f"consent:{consent.id}" if consent else "none",
        outcome="allowed" if consent else "refused",
    )
    return consent


# ------------------------------------------------------------------------------- emergencies


def emergency(session: Session, *, principal: Principal, person_id: str, reason: str) -> Consent:
    """Break the glass: a short access with a stated reason, flagged for the auditor's review."""
    reason = (reason or "").strip()
    if len(reason) < 4:
        raise Invalid("紧急调阅必须说明理由（至少 4 个字）", code="records-emergency-reason")
    if principal.role not in CLINICIANS or not principal.institution_code:
        raise Forbidden("只有医疗机构的医生可以紧急调阅", code="records-emergency-role")
    pid = _person(session, person_id)
    t = now()
    c = Consent(
        person_id=pid,
        kind="emergency",
        grantee_institution=principal.institution_code,
        grantee_user=principal.subject,
        starts_at=t,
        ends_at=t + EMERGENCY,
        reason=reason[:500],
        created_by=principal.subject,
    )
    session.add(c)
    session.flush()
    audit.write(
        session,
        principal=principal,
        person_id=pid,
        action="emergency-access",
        basis=f"emergency:{c.id}",
        outcome="allowed",
        detail=reason,
    )
    return c


def emergencies_to_review(session: Session) -> list[Consent]:
    """Emergency accesses the auditor has not reviewed yet."""
    return list(
        session.scalars(
            select(Consent)
            .where(Consent.kind == "emergency", Consent.reviewed.is_(False))
            .order_by(Consent.created_at)
        ).all()
    )


def mark_reviewed(session: Session, *, consent_id: int) -> Consent:
    """The auditor has reviewed an emergency access."""
    c = session.get(Consent, consent_id)
    if c is None or c.kind != "emergency":
        raise NotFound("没有这次紧急调阅", code="records-emergency-not-found")
    c.reviewed = True
    session.flush()
    return c
