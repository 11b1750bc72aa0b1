"""The one async entry for a booking, for every entry point (JSON API, FHIR, pages, demo, other domains).

It chooses the path by database: on PostgreSQL the booking is queued on the event loop with the other
bookings of the moment and sent in one call (pgbatch; the call is its own transaction), on SQLite it runs
the statement-by-statement write (booker.book) in a worker thread with a session held only for it. Either
way the request's own checks and the sold-out memory answer first, on the event loop, and the answer is the
appointment as stored (a pgbatch.Answer: the appointment's columns as attributes) with whether this call made
it; refusals raise the rule (409/403/404/422).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from rhip.booking import pgbatch
from rhip.booking.booker import book as book_one, refuse_from_memory
from rhip.booking.models import Appointment
from rhip.booking.pgbatch import Answer
from rhip.db.engine import Database
from rhip.security.service import Principal


def answer_of(appointment: Appointment, created: bool) -> Answer:
    """An appointment row as the batched path answers it (read while its session is open)."""
    values: dict[str, Any] = {f: getattr(appointment, f, None) for f in Answer._fields}
    values.update(code="booked" if created else "replay", at=None, n=None, keys=None)
    return Answer(**values)


async def book(
    db: Database,
    *,
    slot_id: int,
    person: str,
    actor: Principal,
    person_name: str | None = None,
    channel: str | None = None,
    tranche: str | None = None,
    idempotency_key: str | None = None,
) -> tuple[Answer, bool]:
    """Book one place (real name) as its own transaction: the appointment and whether this call made it."""
    req = refuse_from_memory(
        db.engine,
        slot_id=slot_id,
        person=person,
        actor=actor,
        tranche=tranche,
        channel=channel,
        idempotency_key=idempotency_key,
    )
    if pgbatch.batched(db):
        return await pgbatch.book(
            db.url, id(db.engine), req, slot_id=slot_id, actor=actor, person_name=person_name
        )

    def alone() -> tuple[Answer, bool]:
        with db.session() as session, session.begin():
            done = book_one(
                session,
                slot_id=slot_id,
                person=person,
                person_name=person_name,
                actor=actor,
                channel=channel,
                tranche=tranche,
                idempotency_key=idempotency_key,
                alone=True,  # this transaction is the booking and nothing else
            )
            return answer_of(done.appointment, done.created), done.created

    return await run_in_threadpool(alone)
