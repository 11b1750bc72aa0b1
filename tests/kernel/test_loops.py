"""db.loops: a loop's batcher is its own — another loop's shutdown neither closes nor abandons it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from rhip.db.loops import PerLoop


@dataclass
class Bound:
    url: str
    loop: asyncio.AbstractEventLoop
    events: list[str] = field(default_factory=list)

    async def close(self) -> None:
        assert asyncio.get_running_loop() is self.loop  # closed on its own loop only
        self.events.append("closed")

    def abandon(self) -> None:
        assert self.loop.is_closed()  # abandoned only once its loop has gone
        self.events.append("abandoned")


def _in_a_thread(fn: Callable[[], None]) -> None:
    """Run `fn` in a thread of its own: the suite's main thread may hold a running loop of another test's."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    if failed:
        raise failed[0]


def test_each_loop_keeps_its_own_and_closes_only_its_own() -> None:
    _in_a_thread(_each_loop_keeps_its_own)


def _each_loop_keeps_its_own() -> None:
    made: list[Bound] = []

    def make(url: str, loop: asyncio.AbstractEventLoop) -> Bound:
        made.append(Bound(url, loop))
        return made[-1]

    per: PerLoop[Bound] = PerLoop(make)

    async def two_gets() -> tuple[Bound, Bound, Bound]:
        return per.get("pg://a"), per.get("pg://a"), per.get("pg://b")

    # a server's loop in its own thread, kept running, as the live test server's is
    server_loop = asyncio.new_event_loop()
    thread = threading.Thread(target=server_loop.run_forever, daemon=True)
    thread.start()
    try:
        on_server = asyncio.run_coroutine_threadsafe(two_gets(), server_loop).result(5)
        assert on_server[0] is on_server[1] and on_server[0] is not on_server[2]

        # a test client's loop comes and goes beside it (its lifespan's shutdown closes the running loop's)
        client_loop = asyncio.new_event_loop()
        mine = client_loop.run_until_complete(two_gets())
        assert mine[0] is not on_server[0] and mine[0].loop is client_loop
        assert {id(b) for b in per.of_url("pg://a")} == {id(mine[0]), id(on_server[0])}  # from any thread
        client_loop.run_until_complete(per.close_running())
        client_loop.close()
        assert mine[0].events == ["closed"] and mine[2].events == ["closed"]
        assert on_server[0].events == [] and on_server[2].events == []  # the server's are untouched

        again = asyncio.run_coroutine_threadsafe(two_gets(), server_loop).result(5)
        assert again[0] is on_server[0]  # still the server's own, not a new one
    finally:
        asyncio.run_coroutine_threadsafe(per.close_running(), server_loop).result(5)
        server_loop.call_soon_threadsafe(server_loop.stop)
        thread.join(5)
    assert on_server[0].events == ["closed"]


def test_a_closed_loops_objects_are_abandoned_when_found() -> None:
    _in_a_thread(_closed_loops_are_abandoned)


def _closed_loops_are_abandoned() -> None:
    per: PerLoop[Bound] = PerLoop(Bound)
    gone = asyncio.new_event_loop()
    old = gone.run_until_complete(_get(per))
    gone.close()  # its shutdown never ran (a test client torn down without its lifespan, say)
    fresh = asyncio.new_event_loop()
    try:
        new = fresh.run_until_complete(_get(per))
        assert new is not old and old.events == ["abandoned"] and new.events == []
    finally:
        fresh.close()


async def _get(per: PerLoop[Bound]) -> Bound:
    return per.get("pg://a")
