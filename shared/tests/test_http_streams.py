"""kap_shared.http.streams.event_stream: the same bytes as FastAPI's own SSE routes,
written by the request's own task (no hand-off through other tasks per event)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.sse import EventSourceResponse, ServerSentEvent

from kap_shared.http.streams import EVENT_STREAM_RESPONSES, EventStream, event_stream

EVENTS = [
    ServerSentEvent(comment="connected", retry=3000),
    ServerSentEvent(event="notification", id="n-1", data={"title": "BP 210/125", "level": 1}),
    ServerSentEvent(event="change", raw_data='{"already": "json"}'),
    ServerSentEvent(comment="keep-alive"),
]


async def _events() -> AsyncIterator[ServerSentEvent]:
    for event in EVENTS:
        yield event


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/fastapi", response_class=EventSourceResponse)
    async def fastapi_stream() -> AsyncIterator[ServerSentEvent]:
        async for event in _events():
            yield event

    @app.get("/ours", response_class=EventStream, responses=EVENT_STREAM_RESPONSES)
    async def our_stream() -> EventStream:
        return event_stream(_events())

    return app


async def test_event_stream_writes_what_fastapis_sse_route_writes() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        theirs, ours = await http.get("/fastapi"), await http.get("/ours")

    assert ours.content == theirs.content
    assert b'data: {"title": "BP 210/125", "level": 1}\n' in ours.content
    for header in ("content-type", "cache-control", "x-accel-buffering"):
        assert ours.headers[header] == theirs.headers[header]
    paths = _app().openapi()["paths"]
    assert (
        paths["/ours"]["get"]["responses"]["200"]["content"]["text/event-stream"]["itemSchema"]
        == paths["/fastapi"]["get"]["responses"]["200"]["content"]["text/event-stream"][
            "itemSchema"
        ]
    )


async def test_each_event_is_sent_by_the_task_that_produced_it() -> None:
    """The push costs no event-loop turn beyond the stream's own wake-up: the task that
    takes the event from the stream's queue also writes it to the connection."""
    produced_in: list[asyncio.Task[Any] | None] = []
    sent_in: list[asyncio.Task[Any] | None] = []

    async def events() -> AsyncIterator[ServerSentEvent]:
        for event in EVENTS:
            produced_in.append(asyncio.current_task())
            yield event

    async def receive() -> MutableMapping[str, Any]:
        await asyncio.Event().wait()  # the client never disconnects
        return {}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            sent_in.append(asyncio.current_task())

    scope = {"type": "http", "asgi": {"spec_version": "2.4"}, "method": "GET"}
    await event_stream(events())(scope, receive, send)

    assert len(sent_in) == len(EVENTS)
    assert set(sent_in) == set(produced_in) == {asyncio.current_task()}
