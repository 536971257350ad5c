"""`GET /live`: Server-Sent Events telling an open page what changed.

Each message is a `LiveEvent` (event type, site, patient and session ids,
severity: never PHI) for the signed-in clinician's sites only; the page then
fetches the affected card or list through the normal, authorized routes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.sse import ServerSentEvent

from kap_shared.http.streams import Closed, EventStream, event_stream

from ..adapters.live import LiveHub
from .web import Session, settings_of

router = APIRouter(include_in_schema=False)


@router.get("/live", response_class=EventStream)
async def live(request: Request, sign_in: Session) -> EventStream:
    return event_stream(_changes(request, sign_in))


async def _changes(request: Request, sign_in: Session) -> AsyncIterator[ServerSentEvent]:
    hub: LiveHub = request.app.state.live_hub
    keepalive = settings_of(request).sse_keepalive_seconds
    subscription = hub.subscribe(sign_in.principal.sites)
    try:
        yield ServerSentEvent(comment="connected", retry=2000)
        while True:
            try:
                event = await subscription.next(keepalive)
            except Closed:
                return
            if event is None:
                yield ServerSentEvent(comment="keep-alive")
            else:
                yield ServerSentEvent(event="change", raw_data=event.to_json())
    finally:
        hub.unsubscribe(subscription)
