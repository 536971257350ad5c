"""`python -m kap_notifications`: run the notifications service (HTTP + Kafka) in one process."""

from kap_shared.service.serve import serve

from .bootstrap import build
from .config import NotificationsSettings


def main() -> None:
    serve(NotificationsSettings(), build)


if __name__ == "__main__":
    main()
