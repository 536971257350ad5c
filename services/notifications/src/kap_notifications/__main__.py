"""`python -m kap_notifications`: run the notifications service (HTTP + Kafka) in one process.

On SIGTERM/SIGINT the live inbox streams end at once, so shutdown does not stall
for the whole graceful timeout waiting for SSE responses that never end.
"""

from fastapi import FastAPI

from kap_shared.service.serve import serve

from .adapters.hub import InboxHub
from .bootstrap import build
from .config import NotificationsSettings


def _end_streams(app: FastAPI) -> None:
    hub: InboxHub = app.state.inbox_hub
    hub.close_threadsafe()


def main() -> None:
    serve(NotificationsSettings(), build, on_exit_signal=_end_streams)


if __name__ == "__main__":
    main()
