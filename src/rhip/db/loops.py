"""Objects bound to one event loop — a batcher's asynchronous connections — one per database URL and loop.

A server process runs one loop. A test process runs several at once: the live server's thread beside each
test client's. A loop's connections must never be closed from another loop's thread: closing them there
pulled their sockets from under that loop's selector, and uvloop, handed the same descriptor number for the
next accepted connection, never answered it (the live-server hangs of session 10). So each loop keeps its
own, a loop's shutdown closes only its own, and those of a loop that has closed are dropped when found.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class LoopBound(Protocol):
    loop: asyncio.AbstractEventLoop

    async def close(self) -> None: ...

    def abandon(self) -> None: ...


T = TypeVar("T", bound=LoopBound)


class PerLoop(Generic[T]):
    """`make(url, loop)`'s object for each database URL and running loop."""

    def __init__(self, make: Callable[[str, asyncio.AbstractEventLoop], T]) -> None:
        self._make = make
        # keyed by the loop's id: the loop is held by its object, so the id is not reused while stored
        self._items: dict[tuple[str, int], T] = {}

    def get(self, url: str) -> T:
        """The running loop's object for `url` (made on first use)."""
        loop = asyncio.get_running_loop()
        found = self._items.get((url, id(loop)))
        if found is None:
            self._drop_closed()
            found = self._items[(url, id(loop))] = self._make(url, loop)
        return found

    def of_url(self, url: str) -> list[T]:
        """Every loop's object for `url` (from any thread: what the process as a whole holds)."""
        return [item for (u, _loop), item in list(self._items.items()) if u == url]

    async def close_running(self) -> None:
        """Close the running loop's objects (its shutdown); drop those of loops that have closed."""
        loop = asyncio.get_running_loop()
        for key, item in list(self._items.items()):
            if item.loop is loop:
                del self._items[key]
                await item.close()
        self._drop_closed()

    def _drop_closed(self) -> None:
        for key, item in list(self._items.items()):
            if item.loop.is_closed():
                del self._items[key]
                item.abandon()
