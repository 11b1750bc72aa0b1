"""The data steward's work: the review queue, merge and separate decisions, unmerge. Every decision is
an event that can be undone, and every one is in the audit log."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from rhip.clock import now
from rhip.errors import Conflict, Invalid, NotFound
from rhip.identity.models import ACTIVE, MERGED, OPEN, MergeEvent, PatientRecord, Person, Review
from rhip.identity.schemas import ReviewRead
from rhip.identity.service import record_read
from rhip.security.service import audit

DECISIONS = ("merge", "separate")
COMPARED = ("name", "sex", "birth_date", "id_number", "phone", "district")


def differing(a: Any, b: Any) -> list[str]:
    """The compared fields whose values differ between two records (both present)."""
    out = []
    for f in COMPARED:
        x, y = getattr(a, f), getattr(b, f)
        if x is not None and y is not None and x != y:
            out.append(f)
    return out


def review_read(session: Session, r: Review) -> ReviewRead:
    """A review item with both records and the differing fields."""
    rec = session.get(PatientRecord, r.record_id)
    if rec is None:
        raise NotFound(f"审核项的记录不存在：{r.record_id}", code="record-not-found")
    cand = session.get(PatientRecord, r.candidate_record_id) if r.candidate_record_id else None
    if cand is None:
        cand = session.scalars(
            select(PatientRecord).where(PatientRecord.person_id == r.candidate_person_id).limit(1)
        ).first()
    a = record_read(rec)
    b = record_read(cand) if cand is not None else None
    return ReviewRead(
        id=r.id,
        status=r.status,
        probability=r.probability,
        record=a,
        candidate_person_id=r.candidate_person_id,
        candidate=b,
        levels=r.levels,
        differing=differing(a, b) if b is not None else [],
        created_at=r.created_at,
        decided_by=r.decided_by,
        decided_at=r.decided_at,
    )


def get_reviews(
    session: Session, *, status: str = OPEN, limit: int = 50, offset: int = 0
) -> list[ReviewRead]:
    """Review items by status, most probable first."""
    q = (
        select(Review)
        .where(Review.status == status)
        .order_by(Review.probability.desc(), Review.id)
        .limit(limit)
        .offset(offset)
    )
    return [review_read(session, r) for r in session.scalars(q)]


def count_reviews(session: Session, *, status: str = OPEN) -> int:
    """How many review items have this status."""
    return int(session.scalar(select(func.count()).select_from(Review).where(Review.status == status)) or 0)


def merge_persons(
    session: Session,
    *,
    from_person_id: str,
    to_person_id: str,
    actor: str,
    reason: str | None = None,
    review_id: int | None = None,
) -> MergeEvent:
    """Move every record of one person to another; the first is marked merged into the second."""
    if from_person_id == to_person_id:
        raise Conflict("不能把一个人合并到自己", code="merge-same-person")
    src, dst = session.get(Person, from_person_id), session.get(Person, to_person_id)
    if src is None or dst is None:
        raise NotFound("要合并的人员不存在", code="person-not-found")
    if src.status != ACTIVE or dst.status != ACTIVE:
        raise Conflict("已被合并的人员不能再合并", code="person-not-active")
    record_ids = list(
        session.scalars(select(PatientRecord.id).where(PatientRecord.person_id == from_person_id))
    )
    when = now()
    session.execute(
        update(PatientRecord)
        .where(PatientRecord.person_id == from_person_id)
        .values(
            person_id=to_person_id,
            pinned=True,
            band="auto",
            linked_by=f"steward:{actor}"[:48],
            updated_at=when,
        )
    )
    src.status, src.merged_into, src.updated_at = MERGED, to_person_id, when
    dst.updated_at = when
    event = MergeEvent(
        kind="merge",
        from_person_id=from_person_id,
        to_person_id=to_person_id,
        record_ids=record_ids,
        review_id=review_id,
        actor=actor,
        reason=(reason or "")[:255] or None,
        at=when,
    )
    session.add(event)
    session.flush()
    audit(
        session,
        actor=actor,
        action="identity.merge",
        target=to_person_id,
        detail={"from": from_person_id, "records": len(record_ids), "event": event.id},
    )
    return event


def decide(
    session: Session, *, review_id: int, decision: str, actor: str, reason: str | None = None
) -> ReviewRead:
    """Merge the review's record's person into the candidate, or keep them apart (both pinned)."""
    if decision not in DECISIONS:
        raise Invalid("decision 只能是 merge 或 separate", code="bad-decision")
    r = session.get(Review, review_id)
    if r is None:
        raise NotFound(f"审核项不存在：{review_id}", code="review-not-found")
    if r.status != OPEN:
        raise Conflict(f"审核项已处理（{r.status}）", code="review-decided")
    rec = session.get(PatientRecord, r.record_id)
    if rec is None:
        raise NotFound("审核项的记录不存在", code="record-not-found")
    if decision == "merge":
        if rec.person_id != r.candidate_person_id:
            merge_persons(
                session,
                from_person_id=rec.person_id,
                to_person_id=r.candidate_person_id,
                actor=actor,
                reason=reason,
                review_id=r.id,
            )
        r.status = "merged"
    else:
        rec.pinned = True
        r.status = "separated"
        audit(session, actor=actor, action="identity.separate", target=rec.person_id, detail={"review": r.id})
    r.decided_by, r.decided_at = actor[:128], now()
    session.flush()
    return review_read(session, r)


def unmerge(
    session: Session, *, person_id: str, actor: str, event_id: int | None = None, reason: str | None = None
) -> MergeEvent:
    """Undo a merge into this person (the latest, or the given event): its records go back to the
    person they came from, which is active again."""
    q = select(MergeEvent).where(
        MergeEvent.to_person_id == person_id, MergeEvent.kind == "merge", MergeEvent.undone.is_(False)
    )
    if event_id is not None:
        q = q.where(MergeEvent.id == event_id)
    event = session.scalars(q.order_by(MergeEvent.id.desc()).limit(1)).first()
    if event is None:
        raise NotFound("没有可撤销的合并", code="merge-not-found")
    src = session.get(Person, event.from_person_id)
    if src is None:
        raise NotFound("原人员不存在", code="person-not-found")
    when = now()
    moved = list(
        session.scalars(
            select(PatientRecord.id).where(
                PatientRecord.id.in_(event.record_ids), PatientRecord.person_id == person_id
            )
        )
    )
    if moved:
        session.execute(
            update(PatientRecord)
            .where(PatientRecord.id.in_(moved))
            .values(person_id=src.id, pinned=True, linked_by=f"steward:{actor}"[:48], updated_at=when)
        )
    src.status, src.merged_into, src.updated_at = ACTIVE, None, when
    event.undone = True
    if event.review_id is not None:
        review = session.get(Review, event.review_id)
        if review is not None:
            review.status, review.decided_by, review.decided_at = "separated", actor[:128], when
    undo = MergeEvent(
        kind="unmerge",
        from_person_id=person_id,
        to_person_id=src.id,
        record_ids=moved,
        review_id=event.review_id,
        actor=actor,
        reason=(reason or "")[:255] or None,
        at=when,
    )
    session.add(undo)
    session.flush()
    audit(
        session,
        actor=actor,
        action="identity.unmerge",
        target=person_id,
        detail={"to": src.id, "records": len(moved), "event": event.id},
    )
    return undo


def events_of(session: Session, *, person_id: str) -> list[MergeEvent]:
    """Merges and unmerges touching a person, newest first."""
    q = (
        select(MergeEvent)
        .where((MergeEvent.from_person_id == person_id) | (MergeEvent.to_person_id == person_id))
        .order_by(MergeEvent.id.desc())
    )
    return list(session.scalars(q))


def parse_day(text: str | None) -> date | None:
    """A YYYY-MM-DD date, or None; a precise error for anything else."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(f"日期格式应为 YYYY-MM-DD：{text[:20]}", code="bad-date") from None
