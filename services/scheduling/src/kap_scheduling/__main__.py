"""`python -m kap_scheduling`: run the scheduling service (HTTP + Kafka) in one process."""

from kap_shared.service.serve import serve

from .bootstrap import build
from .config import SchedulingSettings


def main() -> None:
    serve(SchedulingSettings(), build)


if __name__ == "__main__":
    main()
