"""Small ASGI helpers for the platform's middlewares.

The middlewares are plain ASGI classes, not `@app.middleware("http")`
(Starlette's BaseHTTPMiddleware): that one runs the rest of the app in a task group
with memory streams per request, which cost more than the middlewares' own work in
issue 13's profile.
"""

from __future__ import annotations

from starlette.types import Message, Receive


async def buffered_body(receive: Receive) -> tuple[bytes, Receive]:
    """The request's whole body, and a `receive` that hands it to the app again."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    sent = False

    async def replay_receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay_receive
