"""`kap-token`: mint a development JWT.

uv run kap-token --sub dr-ada --role prescriber --sites site-north
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta

from ..events.enums import Role
from .tokens import mint_token

DEV_SECRET = "kap-development-only-secret-change-me-in-production"  # noqa: S105 - development default, documented


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kap-token", description=__doc__)
    parser.add_argument("--sub", required=True, help="clinician or device id")
    parser.add_argument("--role", required=True, choices=[r.value for r in Role])
    parser.add_argument("--sites", required=True, help="comma-separated site ids ('*' = all)")
    parser.add_argument("--hours", type=float, default=12.0)
    parser.add_argument("--secret", default=os.environ.get("KAP_JWT_SECRET", DEV_SECRET))
    args = parser.parse_args(argv)
    token = mint_token(
        args.secret,
        sub=args.sub,
        role=args.role,
        sites=[s for s in args.sites.split(",") if s],
        ttl=timedelta(hours=args.hours),
    )
    sys.stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
