"""`python -m kap_notifications`: run the notifications service (HTTP + Kafka) in one process.

On SIGTERM/SIGINT the live inbox streams end at once, so shutdown does not stall
for the whole graceful timeout waiting for SSE responses that never end.
"""

from kap_shared.service.serve import ending_streams, serve

from .bootstrap import build
from .config import NotificationsSettings


def main() -> None:
    serve(NotificationsSettings(), build, on_exit_signal=ending_streams("inbox_hub"))


if __name__ == "__main__":
    main()
