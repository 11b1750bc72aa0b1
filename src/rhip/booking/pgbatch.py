"""PostgreSQL bookings on the event loop, sent together: group commit through rhip_book_many.

The JSON booking route on PostgreSQL does not open a SQLAlchemy session or go to the thread pool: it
queues its booking here and awaits the answer. Each process keeps a few async psycopg connections (in
autocommit); whenever one is free it takes every booking queued meanwhile (up to MAX_BATCH) and sends
them as ONE call of rhip_book_many (migration 0013_booking_book_many): one statement, one transaction,
one commit for the lot. At low load a batch is one booking and costs one round trip, as before; under
a flash crowd bookings pile up while the connections are busy, so the batches grow by themselves —
no timer, no added wait.

Each booking in a batch is still decided by the one conditional UPDATE, a person's limits still hold
(their lock row, then their earlier bookings in the same batch are visible), an idempotency key still
books once (a repeat in the same batch is a replay). Lock order: the function locks every person of
the batch in person-id order, then the slots in slot-id order, so batches never deadlock each other.
Other transactions may still lock in another order (a cancellation that books a waitlisted person,
the reflow job); when PostgreSQL breaks such a deadlock by failing a batch — or a batch fails for any
other reason, such as one bad value — every booking of it is retried alone, each its own transaction
(a single booking is retried up to three times on deadlock), so one request's failure is its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple, TypeVar

import psycopg
from psycopg import errors as pg_errors

from rhip.booking import soldout
from rhip.booking.booker import Prepared, actor_institution
from rhip.booking.refusals import refuse
from rhip.booking.rules import Rules
from rhip.booking.soldout import forget_full, remember_full
from rhip.clock import now
from rhip.db.engine import Database, libpq_url
from rhip.db.loops import PerLoop
from rhip.security.service import Principal

log = logging.getLogger(__name__)
T = TypeVar("T")

# per process: batches in flight at once; 1, 2 and 3 measured alike on two cores, 2 lets one batch
# proceed while another waits on a slot's row lock
CONNECTIONS = 2
MAX_BATCH = 64  # bookings per call: larger batches hold their slots' row locks longer
PLACES_CHANNEL = "rhip_booking_places"  # NOTIFY'd by migration 0014's trigger when places may come back
# a slot-full answer is remembered this many times SOLD_OUT_TTL when the listener is live (it is told of
# every return at once; the TTL is only a backstop)
LISTENED_TTL = 10
SINGLE_RETRIES = 3  # a booking retried alone after its batch failed: tries on deadlock

# %b: the arrays go in PostgreSQL's binary format, which psycopg writes ~3x faster than text (~4 us of
# worker CPU per booking at 32 per batch) and the server reads without parsing text
MANY_SQL = (
    "SELECT * FROM rhip_book_many(%b::bigint[], %b::text[], %b::text[], %b::text[], %b::timestamptz[], "
    "%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::bigint[], %b::text[], "
    "%b, %b, %b, %b)"
)
_DEFAULTS = Rules()
# the platform's defaults; the function applies the '*' and hospital rows of booking_rules over them
_LIMITS = (_DEFAULTS.limit_dept_day, _DEFAULTS.limit_day, _DEFAULTS.limit_week, _DEFAULTS.prepay_minutes)


class Answer(NamedTuple):
    """One answer of rhip_book_many: the code, the refusal's details, the appointment as stored."""

    code: str
    at: datetime | None
    n: int | None
    keys: list[str] | None
    id: int | None
    slot_id: int | None
    schedule_id: int | None
    hospital_code: str | None
    department_code: str | None
    service_date: date | None
    starts_at: datetime | None
    ends_at: datetime | None
    person_id: str | None
    person_name: str | None
    channel: str | None
    tranche: str | None
    status: str | None
    hold_expires_at: datetime | None
    checked_in_at: datetime | None
    cancel_reason: str | None
    referral_id: int | None
    created_at: datetime | None


class Entry(NamedTuple):
    """One booking's arguments, in the order of rhip_book_many's arrays."""

    slot_id: int
    pid: str
    tranche: str
    key: str | None
    at: datetime
    role: str
    inst: str | None
    subject: str
    person_name: str | None
    channel: str
    referral_id: int | None
    actor_institution: str | None


@dataclass
class Batcher:
    """One process's connections on one event loop, and the bookings waiting for one of them."""

    conninfo: str
    loop: asyncio.AbstractEventLoop
    size: int = CONNECTIONS
    _queue: list[tuple[Entry, asyncio.Future[Answer]]] = field(default_factory=list)
    _idle: list[psycopg.AsyncConnection[Any]] = field(default_factory=list)
    _busy: int = 0
    _scheduled: bool = False
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # the sold-out memory's invalidation (see _listen): LISTEN connected, notifications seen so far,
    # the count below which no slot-full answer is remembered, the count at each slot's last return
    _live: bool = False
    _seen: int = 0
    _floor: int = 0
    _returned: dict[int, int] = field(default_factory=dict)
    _listener: asyncio.Task[None] | None = None
    _listen_conn: psycopg.AsyncConnection[Any] | None = None

    def start_listening(self) -> None:
        """Start following place returns (NOTIFY rhip_booking_places) on this loop."""
        if self._listener is None:
            self._listener = self.loop.create_task(self._listen())

    async def _listen(self) -> None:
        # every slot whose places may come back (a cancellation, a reflow, a clinic stop, in any process)
        # is forgotten here as soon as its transaction commits; while this connection is down nothing
        # is remembered, so a stale "full" can only live for the notification's delivery time
        while True:
            try:
                conn = self._listen_conn = await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True
                )
                await conn.execute(f"LISTEN {PLACES_CHANNEL}")
                self._reset(live=True)
                async for note in conn.notifies():
                    self._seen += 1
                    slot_id = int(note.payload)
                    self._returned[slot_id] = self._seen
                    forget_full(slot_id)
                    if len(self._returned) > 100_000:  # bounded: forgetting every slot is always safe
                        self._reset(live=True)
            except asyncio.CancelledError:
                self._reset(live=False)
                raise
            except (psycopg.Error, OSError, ValueError) as exc:  # server or network gone, a bad payload
                log.warning("booking place-return listener lost (%s); retrying", type(exc).__name__)
            self._reset(live=False)
            if self._listen_conn is not None:
                await self._listen_conn.close()
            await asyncio.sleep(1.0)

    def _reset(self, *, live: bool) -> None:
        self._seen += 1
        self._floor = self._seen
        self._returned.clear()
        forget_full()
        self._live = live

    def trusts(self, slot_id: int, seen: int) -> bool:
        """Whether a slot-full answer to a batch sent when `seen` notifications had come may be remembered."""
        return self._live and seen >= self._floor and self._returned.get(slot_id, 0) <= seen

    async def book(self, entry: Entry) -> Answer:
        """Queue one booking and wait for its answer (or its batch's error)."""
        fut: asyncio.Future[Answer] = self.loop.create_future()
        self._queue.append((entry, fut))
        if not self._scheduled:
            # at the end of this turn of the loop: requests read in the same turn go together
            self._scheduled = True
            self.loop.call_soon(self._dispatch)
        return await fut

    def _dispatch(self) -> None:
        self._scheduled = False
        while self._queue and (self._idle or self._busy + len(self._idle) < self.size):
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            conn = self._idle.pop() if self._idle else None
            self._busy += 1
            task = self.loop.create_task(self._run(conn, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(
        self, conn: psycopg.AsyncConnection[Any] | None, batch: list[tuple[Entry, asyncio.Future[Answer]]]
    ) -> None:
        try:
            if conn is None:
                conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
            await _send(conn, batch)
        except Exception as exc:  # the connection failed: its bookings get the error (500), not a retry
            for _entry, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
        finally:
            self._busy -= 1
            if conn is not None and not conn.closed and not conn.broken:
                self._idle.append(conn)
            elif conn is not None:
                await conn.close()
            if self._queue:
                self._dispatch()

    async def close(self) -> None:
        """Close the idle connections and the listener (at shutdown)."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._listen_conn is not None:
            await self._listen_conn.close()
        while self._idle:
            await self._idle.pop().close()

    def abandon(self) -> None:
        """Close the connections of a loop that is gone (no await possible there any more)."""
        self._reset(live=False)
        if self._listen_conn is not None:
            self._listen_conn.pgconn.finish()
        while self._idle:
            self._idle.pop().pgconn.finish()


async def _execute(conn: psycopg.AsyncConnection[Any], entries: list[Entry]) -> list[Answer]:
    columns = [list(col) for col in zip(*entries, strict=True)]
    cur = await conn.execute(MANY_SQL, [*columns, *_LIMITS], prepare=True)
    return [Answer(*row) for row in await cur.fetchall()]


async def _send(
    conn: psycopg.AsyncConnection[Any], batch: list[tuple[Entry, asyncio.Future[Answer]]]
) -> None:
    """One call for the batch; when it fails as a whole (deadlock, one bad value) each booking alone."""
    try:
        answers = await _execute(conn, [entry for entry, _fut in batch])
    except psycopg.Error as exc:
        if conn.broken or conn.closed:
            raise  # the connection is lost: whether it committed is unknown, so nothing is retried
        if len(batch) == 1 and not isinstance(exc, _ROLLED_BACK):
            raise
        log.info("booking batch of %d failed (%s): each booking again alone", len(batch), type(exc).__name__)
        for entry, fut in batch:
            await _send_alone(conn, entry, fut)
        return
    for (_entry, fut), answer in zip(batch, answers, strict=True):
        if not fut.done():
            fut.set_result(answer)


# the transaction was rolled back by the database to break a cycle: trying again can succeed
_ROLLED_BACK = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure, pg_errors.TransactionRollback)


async def _send_alone(conn: psycopg.AsyncConnection[Any], entry: Entry, fut: asyncio.Future[Answer]) -> None:
    for attempt in range(1, SINGLE_RETRIES + 1):
        try:
            (answer,) = await _execute(conn, [entry])
        except psycopg.Error as exc:
            if conn.broken or conn.closed:
                raise
            if isinstance(exc, _ROLLED_BACK) and attempt < SINGLE_RETRIES:
                continue
            if not fut.done():
                fut.set_exception(exc)  # this booking's own failure
            return
        if not fut.done():
            fut.set_result(answer)
        return


def _new_batcher(url: str, loop: asyncio.AbstractEventLoop) -> Batcher:
    found = Batcher(libpq_url(url), loop)
    found.start_listening()
    return found


_BATCHERS: PerLoop[Batcher] = PerLoop(_new_batcher)


def _batcher(url: str) -> Batcher:
    return _BATCHERS.get(url)


async def close_all() -> None:
    """Close the running loop's booking connections (the app's shutdown)."""
    await _BATCHERS.close_running()


async def book(
    url: str,
    engine_key: int,
    req: Prepared,
    *,
    slot_id: int,
    actor: Principal,
    person_name: str | None,
    referral_id: int | None = None,
) -> tuple[Answer, bool]:
    """Book one checked request on PostgreSQL: the appointment as stored and whether this call made it.

    Raises the refusing rule (409/403/404) like booker.book; the call is its batch's own transaction.
    """
    entry = Entry(
        slot_id,
        req.pid,
        req.tranche,
        req.key,
        now(),
        actor.role.value,
        actor.institution_code,
        actor.subject,
        person_name,
        req.channel,
        referral_id,
        actor_institution(actor),
    )
    batcher = _batcher(url)
    seen = batcher._seen
    answer = await batcher.book(entry)
    if answer.code in ("booked", "replay"):
        return answer, answer.code == "booked"
    if answer.code == "slot-full" and answer.keys is not None and batcher.trusts(slot_id, seen):
        # remembered only while the listener reports every place that comes back, and only when none
        # came back for the slot since the batch was sent; the TTL is a backstop
        remember_full(engine_key, slot_id, req.tranche, answer.keys, ttl=soldout.SOLD_OUT_TTL * LISTENED_TTL)
    refuse(answer.code, req.tranche, at=answer.at, n=answer.n)


def listening(db: Database) -> bool:
    """Whether this process follows the database's place returns (NOTIFY), so it may remember sold-out slots.

    The listener connects after the process's first booking on a loop; until it is live, a slot-full
    answer is not remembered (a place returned meanwhile would go unseen).
    """
    return any(found._live for found in _BATCHERS.of_url(db.url))


def batched(db: Database) -> bool:
    """Whether bookings on this database go through the batcher (PostgreSQL) or one by one (SQLite)."""
    return db.engine.dialect.name == "postgresql"


class Blocking:
    """A private event loop for a synchronous caller (the demo): its bookings take the batched path.

    Each run() drives the loop until the booking is answered; the loop's connection stays open between
    calls, so a sequential caller pays one round trip per booking, as on the single-call path.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        """Run one booking coroutine to its answer (or its refusal)."""
        return self.loop.run_until_complete(call)

    def close(self) -> None:
        """Close this loop's connections, then the loop."""

        self.loop.run_until_complete(_BATCHERS.close_running())
        self.loop.close()
