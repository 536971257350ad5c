"""Debian's Chromium for the console's browser tests and benchmarks, driven by Playwright.

Playwright is given this binary (`executable_path`); `playwright install` is never used
(deploy/local/install-chromium.sh installs the package). A missing browser fails loudly:
a browser test never skips.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import Browser, Playwright

CHROMIUM = Path(os.environ.get("KAP_CHROMIUM", "/usr/bin/chromium"))


class ChromiumMissing(RuntimeError):
    pass


async def launch(playwright: Playwright) -> Browser:
    """Chromium, headless, as the tests and benchmarks run it (no sandbox: CI runs as root)."""
    if not CHROMIUM.exists():  # noqa: ASYNC240 - one stat, before the browser starts
        raise ChromiumMissing(
            f"{CHROMIUM} is missing: run deploy/local/install-chromium.sh (the browser tests "
            "never download a browser)"
        )
    return await playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
