"""`python -m kap_notifications`: run the notifications service (HTTP + Kafka) in one process.

Like `kap_shared.service.serve`, plus one thing: on SIGTERM/SIGINT the live
inbox streams are ended at once. uvicorn waits for open responses before
shutting the app down, and an SSE stream never ends by itself, so without
this every shutdown would stall for the whole graceful timeout.
"""

from __future__ import annotations

import logging
from types import FrameType

import uvicorn

from kap_shared.logging import configure_logging

from .adapters.hub import InboxHub
from .bootstrap import build
from .config import NotificationsSettings


def main() -> None:
    settings = NotificationsSettings()
    configure_logging(settings.log_level, settings.log_format, settings.service_name)
    # httpx logs every request URL at INFO; a provider's webhook URL may carry a key.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    app = build(settings)
    hub: InboxHub = app.state.inbox_hub
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,  # structlog owns logging
            access_log=False,
            timeout_graceful_shutdown=20,
        )
    )
    handle_exit = server.handle_exit

    def end_streams_then_exit(sig: int, frame: FrameType | None) -> None:
        hub.close_threadsafe()
        handle_exit(sig, frame)

    server.handle_exit = end_streams_then_exit  # type: ignore[method-assign]
    server.run()


if __name__ == "__main__":
    main()
