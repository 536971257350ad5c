"""`python -m kap_monitoring`: run the monitoring service (HTTP + Kafka) in one process."""

from kap_shared.service.serve import serve

from .bootstrap import build
from .config import MonitoringSettings


def main() -> None:
    serve(MonitoringSettings(), build)


if __name__ == "__main__":
    main()
