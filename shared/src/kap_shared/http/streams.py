"""The queue behind one open Server-Sent Events stream (the console's GET /live,
notifications' GET /inbox/stream).

Bounded: a client too slow to keep up is closed ("lagging"; its queue would grow
without bound) and reconnects. Closing drops what was not yet sent: the client
reconnects and reloads, or replays from the last item it did get, in order.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class Closed(Exception):
    """The stream ended (the service is shutting down, or the client fell behind)."""


class StreamQueue(Generic[T]):
    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[T | None] = asyncio.Queue(maxsize=size)
        self.closed = False
        self.reason = ""

    def offer(self, item: T) -> bool:
        """Queue `item` for the stream; whether it was queued (a full queue closes it)."""
        if self.closed:
            return False
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.close("lagging")
            return False
        return True

    def close(self, reason: str = "closed") -> None:
        if self.closed:
            return
        self.closed, self.reason = True, reason
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def next(self, timeout: float) -> T | None:
        """The next item; None after `timeout` seconds of quiet (time for a keep-alive).
        Raises Closed once the stream is closed."""
        try:
            item = await asyncio.wait_for(self.queue.get(), timeout=timeout)
        except TimeoutError:
            if self.closed:
                raise Closed(self.reason) from None
            return None
        if item is None:
            raise Closed(self.reason)
        return item
