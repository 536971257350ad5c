"""`python -m kap_intake`: run the intake service (HTTP + Kafka) in one process."""

from kap_shared.service.serve import serve

from .bootstrap import build
from .config import IntakeSettings


def main() -> None:
    serve(IntakeSettings(), build)


if __name__ == "__main__":
    main()
