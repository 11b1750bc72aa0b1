"""Plain terminal transactions on PostgreSQL, posted from the event loop and sent together.

A payment, print, enquiry, top-up or reported registration (no slot, no appointment, no card) touches one
table: the JSON route on PostgreSQL queues it here instead of going to the thread pool. Each process keeps
a few async psycopg connections in autocommit; whenever one is free it takes every transaction queued
meanwhile (up to MAX_BATCH) and inserts them with ONE statement (`INSERT … SELECT FROM unnest(…) ON
CONFLICT (terminal_id, txn_no) DO NOTHING RETURNING …`): one round trip and one commit for the lot. At low
load a batch is one transaction; under load batches grow by themselves (no timer, no added wait).

A transaction whose number was already posted gets no id back; the route then answers it through the
ordinary path (`terminals.post`: the first transaction when the content is the same, 409 otherwise). When
a batch fails as a whole each of its transactions is sent alone, so one bad row fails only itself.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import psycopg

from rhip.db.engine import Database, libpq_url
from rhip.db.loops import PerLoop

log = logging.getLogger(__name__)
CONNECTIONS = 2
MAX_BATCH = 256
COLUMNS = (
    ("terminal_id", "bigint"),
    ("institution_code", "text"),
    ("txn_no", "text"),
    ("kind", "text"),
    ("occurred_at", "timestamptz"),
    ("amount_fen", "bigint"),
    ("pay_method", "text"),
    ("outcome", "text"),
    ("error_code", "text"),
    ("duration_ms", "integer"),
    ("pages", "integer"),
    ("card_no", "text"),
    ("id_number", "text"),
    ("received_at", "timestamptz"),
)
SQL = (
    f"INSERT INTO selfservice_transactions ({', '.join(c for c, _t in COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'%s::{t}[]' for _c, t in COLUMNS)}) "
    "ON CONFLICT (terminal_id, txn_no) DO NOTHING RETURNING terminal_id, txn_no, id"
)
Row = tuple[Any, ...]  # the values of COLUMNS, in order


def as_row(values: dict[str, Any]) -> Row:
    """A transaction's row values (terminals.row_values) in COLUMNS order."""
    return tuple(values[c] for c, _t in COLUMNS)


def batched(db: Database) -> bool:
    """Whether plain transactions on this database go through the batcher (PostgreSQL only)."""
    return db.engine.dialect.name == "postgresql"


@dataclass
class Batcher:
    """One process's connections on one event loop, and the transactions waiting for one of them."""

    conninfo: str
    loop: asyncio.AbstractEventLoop
    _queue: list[tuple[Row, asyncio.Future[int | None]]] = field(default_factory=list)
    _idle: list[psycopg.AsyncConnection[Any]] = field(default_factory=list)
    _busy: int = 0
    _scheduled: bool = False
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def insert(self, row: Row) -> int | None:
        """Queue one row; its new id, or None when its (terminal, number) was posted before."""
        fut: asyncio.Future[int | None] = self.loop.create_future()
        self._queue.append((row, fut))
        if not self._scheduled:
            self._scheduled = True  # at the end of this turn of the loop: rows read meanwhile go together
            self.loop.call_soon(self._dispatch)
        return await fut

    def _dispatch(self) -> None:
        self._scheduled = False
        while self._queue and (self._idle or self._busy + len(self._idle) < CONNECTIONS):
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            conn = self._idle.pop() if self._idle else None
            self._busy += 1
            task = self.loop.create_task(self._run(conn, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(
        self, conn: psycopg.AsyncConnection[Any] | None, batch: list[tuple[Row, asyncio.Future[int | None]]]
    ) -> None:
        try:
            if conn is None:
                conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
            try:
                _answer(batch, await _execute(conn, [row for row, _f in batch]))
            except psycopg.Error:
                if conn.broken or conn.closed or len(batch) == 1:
                    raise
                log.info("transaction batch of %d failed: each row again alone", len(batch))
                for row, fut in batch:
                    try:
                        _answer([(row, fut)], await _execute(conn, [row]))
                    except psycopg.Error as exc:
                        if conn.broken or conn.closed:
                            raise
                        if not fut.done():
                            fut.set_exception(exc)
        except Exception as exc:  # the connection failed: the rows get the error (500), not a retry
            for _row, fut in batch:
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
        """Close the idle connections (at shutdown)."""
        while self._idle:
            await self._idle.pop().close()

    def abandon(self) -> None:
        """Drop the connections of a loop that is gone."""
        while self._idle:
            self._idle.pop().pgconn.finish()


async def _execute(conn: psycopg.AsyncConnection[Any], rows: list[Row]) -> list[tuple[int, str, int]]:
    columns = [list(col) for col in zip(*rows, strict=True)]
    cur = await conn.execute(SQL, columns, prepare=True)
    return [(int(t), str(n), int(i)) for t, n, i in await cur.fetchall()]


def _answer(
    batch: list[tuple[Row, asyncio.Future[int | None]]], inserted: list[tuple[int, str, int]]
) -> None:
    """Each row its id; a number repeated in the batch gets the id once (the others answer as replays)."""
    ids = {(t, n): i for t, n, i in inserted}
    for row, fut in batch:
        if not fut.done():
            fut.set_result(ids.pop((row[0], row[2]), None))


def _new_batcher(url: str, loop: asyncio.AbstractEventLoop) -> Batcher:
    return Batcher(libpq_url(url), loop)


_BATCHERS: PerLoop[Batcher] = PerLoop(_new_batcher)


async def insert(db: Database, row: Row) -> int | None:
    """Insert one plain transaction through this process's batcher; its id, or None for a replay."""
    return await _BATCHERS.get(db.url).insert(row)


async def close_all() -> None:
    """Close the running loop's batchers (the app's shutdown)."""
    await _BATCHERS.close_running()
