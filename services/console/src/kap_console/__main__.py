"""`python -m kap_console`: run the care-team console (HTTP + its live Kafka reader).

On SIGTERM/SIGINT the live streams end at once, so shutdown does not wait for
Server-Sent Events responses that never end by themselves.
"""

from fastapi import FastAPI

from kap_shared.service.serve import serve

from .adapters.live import LiveHub
from .bootstrap import build
from .config import ConsoleSettings


def _end_streams(app: FastAPI) -> None:
    hub: LiveHub = app.state.live_hub
    hub.close_threadsafe()


def main() -> None:
    serve(ConsoleSettings(), build, on_exit_signal=_end_streams)


if __name__ == "__main__":
    main()
