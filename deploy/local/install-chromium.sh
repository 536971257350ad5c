#!/usr/bin/env bash
# Make sure Debian's Chromium (/usr/bin/chromium) exists for the console's browser tests,
# installing the `chromium` package if it does not. Playwright drives this binary
# (executable_path); `playwright install` is never used. Idempotent.
set -euo pipefail

CHROMIUM=${KAP_CHROMIUM:-/usr/bin/chromium}
if [[ -x $CHROMIUM ]]; then
    echo "chromium: $("$CHROMIUM" --version 2>/dev/null || echo present)" >&2
    exit 0
fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >&2
[[ -x $CHROMIUM ]] || { echo "chromium install failed: $CHROMIUM missing" >&2; exit 1; }
echo "chromium: $("$CHROMIUM" --version 2>/dev/null || echo installed)" >&2
