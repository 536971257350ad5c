"""`kap-records` (or `python -m kap_records`): run the records service (HTTP + Kafka);
`kap-records rebuild`: drop the projection and rebuild it from the topics."""

from __future__ import annotations

import argparse
import asyncio
import sys

from kap_shared.service.runtime import configure_service_logging
from kap_shared.service.serve import serve

from .bootstrap import build
from .config import RecordsSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="kap-records", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the service (the default)")
    commands.add_parser(
        "rebuild",
        help="drop the timeline projection and rebuild it from the topics, from the beginning",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "rebuild":
        from .entrypoints.rebuild import rebuild

        settings = RecordsSettings()
        configure_service_logging(settings)
        counts = asyncio.run(rebuild(settings))
        sys.stdout.write(
            f"rebuilt from {counts['events']} events ({counts['projected']} projected, "
            f"{counts['skipped']} undecodable)\n"
        )
        return
    serve(RecordsSettings(), build)


if __name__ == "__main__":
    main()
