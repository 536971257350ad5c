"""`python -m kap_console`: run the care-team console (HTTP + its live Kafka reader).

On SIGTERM/SIGINT the live streams end at once, so shutdown does not wait for
Server-Sent Events responses that never end by themselves.
"""

from kap_shared.service.serve import ending_streams, serve

from .bootstrap import build
from .config import ConsoleSettings


def main() -> None:
    serve(ConsoleSettings(), build, on_exit_signal=ending_streams("live_hub"))


if __name__ == "__main__":
    main()
