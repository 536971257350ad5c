"""The queue behind one open Server-Sent Events stream (the console's GET /live,
notifications' GET /inbox/stream), and the response that writes one.

Bounded: a client too slow to keep up is closed ("lagging"; its queue would grow
without bound) and reconnects. Closing drops what was not yet sent: the client
reconnects and reloads, or replays from the last item it did get, in order.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

from fastapi.sse import ServerSentEvent, format_sse_event
from starlette.responses import StreamingResponse

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
        Raises Closed once the stream is closed.

        The stream's task waits on the queue itself: `asyncio.wait_for` (Python 3.11)
        would wrap the wait in a task of its own, and an item offered after a commit
        reached the stream three event-loop turns later instead of one, each turn as long
        as whatever else was ready then (the outbox relay, the consumer's offset commit;
        issue 13, the alert path's last hop)."""
        try:
            async with asyncio.timeout(timeout):
                item = await self.queue.get()
        except TimeoutError:
            if self.closed:
                raise Closed(self.reason) from None
            return None
        if item is None:
            raise Closed(self.reason)
        return item


class EventStream(StreamingResponse):
    """A Server-Sent Events response written by the request's own task (`event_stream`).

    Deliberately not FastAPI's `EventSourceResponse`: FastAPI runs an endpoint declared
    with that class as a generator and passes every event through two more tasks and
    two memory streams (a keep-alive inserter), so on a busy process a push waited for
    three event-loop turns instead of one (issue 13: the alert path's last hop). Declare
    the route with `response_class=EventStream, responses=EVENT_STREAM_RESPONSES` for the
    same OpenAPI description.
    """

    media_type = "text/event-stream"


# The 200 response as FastAPI describes its own SSE routes (OpenAPI 3.2 `itemSchema`).
_SSE_EVENT = {
    "type": "object",
    "properties": {
        "data": {"type": "string"},
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
}
EVENT_STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {"itemSchema": _SSE_EVENT}}}
}


def event_stream(events: AsyncIterator[ServerSentEvent]) -> EventStream:
    """`events` (the stream's own iterator, which sends its own keep-alive comments while
    idle) as an SSE response: each event is encoded (`fastapi.sse.format_sse_event`, data
    as JSON) and written as soon as `events` yields it."""

    async def encoded() -> AsyncIterator[bytes]:
        async for event in events:
            yield _encode(event)

    return EventStream(encoded(), headers=_SSE_HEADERS)


# What FastAPI sets on its own SSE responses: no caching, no buffering in nginx.
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _encode(event: ServerSentEvent) -> bytes:
    data = event.raw_data
    if data is None and event.data is not None:
        data = json.dumps(event.data)  # as FastAPI encodes it
    return format_sse_event(
        data_str=data, event=event.event, id=event.id, retry=event.retry, comment=event.comment
    )
