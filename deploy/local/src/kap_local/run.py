"""`make run`: the whole platform on this machine, on the embedded defaults.

Starts Kafka (from Maven jars) on 127.0.0.1:9092, the services and the care-team
console on their contract ports with SQLite databases under var/, seeds a demo clinic network,
prints the URLs and development tokens, and stops everything on Ctrl-C.

`--free-ports --kafka-port 0 --var-dir DIR` runs a second copy beside another
(the end-to-end test of `make run` does, next to the suite's own broker).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from kap_shared.auth.cli import DEV_SECRET

from .kafka import LocalKafka, ensure_jars
from .platform import DEFAULT_PORTS, Platform
from .seed import demo_tokens, dev_clinicians_spec, seed, seed_notifications

ROOT = Path(__file__).resolve().parents[4]


def _print_banner(platform: Platform, bootstrap: str, secret: str) -> None:
    tokens = demo_tokens(secret)
    out = sys.stdout
    out.write("\nKAP platform is up.\n\n")
    console = platform.url("console")
    out.write(
        f"  Care-team console   {console}/\n"
        "    sign in: open it, choose a seeded clinician (e.g. rn-north = nurse,\n"
        "    dr-north = prescriber, th-north = therapist, coord-north = coordinator)\n\n"
    )
    out.write(f"  Kafka           {bootstrap}\n")
    for name in platform.services:
        if name == "console":
            continue
        out.write(f"  {name:<15} {platform.url(name)}   (OpenAPI {platform.url(name)}/docs)\n")
    out.write(f"\n  Logs            {platform.work_dir / 'logs'}\n")
    out.write("\nDevelopment tokens (HS256, 12 h):\n")
    for clinician_id, token in tokens.items():
        out.write(f"  {clinician_id:<12} {token}\n")
    intake = platform.url("intake")
    out.write(
        "\nTry the first flow:\n"
        f'  export NURSE="{tokens["rn-north"]}"\n'
        f'  export THERAPIST="{tokens["th-north"]}"\n'
        f'  curl -s -XPOST {intake}/patients -H "Authorization: Bearer $NURSE" \\\n'
        '    -H \'content-type: application/json\' -d \'{"given_name":"Ada","family_name":"L",'
        '"date_of_birth":"1980-02-01","site_id":"site-north","indications":["trd"]}\'\n'
        f"  (then POST /patients/<id>/screenings, and GET {platform.url('notifications')}/inbox"
        " as $THERAPIST;\n   the README has the whole walk-through)\n"
        "\nCtrl-C stops everything.\n"
    )
    out.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--var-dir", type=Path, default=ROOT / "var")
    parser.add_argument(
        "--kafka-port", type=int, default=9092, help="0 = any free port (default 9092)"
    )
    parser.add_argument(
        "--free-ports",
        action="store_true",
        help="services on free ports instead of their contract ports (printed in the banner)",
    )
    args = parser.parse_args(argv)

    secret = os.environ.get("KAP_JWT_SECRET", DEV_SECRET)
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    ensure_jars()
    kafka = LocalKafka(work_dir=args.var_dir / "kafka", port=args.kafka_port or None)
    bootstrap = kafka.start()
    platform = Platform(
        bootstrap=bootstrap,
        work_dir=args.var_dir,
        jwt_secret=secret,
        ports=None if args.free_ports else DEFAULT_PORTS,
        log_format="json",
        service_env={"console": {"DEV_CLINICIANS": dev_clinicians_spec()}},
    )
    try:
        platform.start()
        seed(platform.url("scheduling"), secret)
        seed_notifications(platform.url("notifications"), secret)
        _print_banner(platform, bootstrap, secret)
        while not stop.wait(1.0):
            for service in platform.services.values():
                if service.proc is not None and service.proc.poll() is not None:
                    sys.stderr.write(f"{service.name} exited; last log lines:\n{service.tail()}\n")
                    return 1
        return 0
    finally:
        sys.stdout.write("\nstopping services and Kafka...\n")
        platform.stop()
        kafka.stop()
        sys.stdout.write("stopped.\n")


if __name__ == "__main__":
    raise SystemExit(main())
