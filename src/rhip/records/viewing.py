"""One record view, one transaction: the access is decided, its log row written first (fail closed) and the
data read in the same transaction; nothing leaves unless that transaction commits. Every entry point that
reads a person's record (the JSON API, the pages, FHIR, CDS Hooks) goes through `view`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from rhip.errors import RhipError, Unavailable
from rhip.records import consent, service
from rhip.records.consent import Access
from rhip.records.models import RecordEntry
from rhip.security.service import Principal

T = TypeVar("T")


def view(
    session: Session,
    *,
    principal: Principal,
    person_id: str | None,
    action: str,
    read: Callable[[Access], T],
    detail: str = "",
) -> tuple[Access, T]:
    """Decide and log the access, then `read(access)` in the same transaction; commit, then answer.

    A refusal is committed (logged) and raised as Forbidden; a domain error of the read (a report not in
    the record, say) leaves the attempt logged and is raised after the commit; a failed log write or commit
    returns nothing (503 audit-unavailable). `person_id` None: the resident's own record."""
    failure: RhipError | None = None
    tx = session.begin()
    try:
        access = consent.decide(session, principal=principal, person_id=person_id)
        consent.log(session, principal=principal, access=access, action=action, detail=detail)
        if access.allowed:
            try:
                result = read(access)
            except RhipError as exc:
                failure = exc
    except BaseException:
        tx.rollback()
        raise
    try:
        tx.commit()
    except SQLAlchemyError as exc:
        raise Unavailable("审计日志写入失败，本次调阅未返回任何数据", code="audit-unavailable") from exc
    if not access.allowed:
        raise consent.refusal(access)
    if failure is not None:
        raise failure
    return access, result


def report_view(
    session: Session, *, principal: Principal, person_id: str | None, entry_id: int
) -> RecordEntry:
    """One lab or exam report, as a logged view (NotFound, logged, when it is not in the record)."""
    _a, entry = view(
        session,
        principal=principal,
        person_id=person_id,
        action="report",
        detail=f"entry {entry_id}",
        read=lambda access: service.report(session, access=access, entry_id=entry_id),
    )
    return entry
