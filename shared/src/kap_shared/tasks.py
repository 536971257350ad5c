"""Background tasks of a service's own loops (the timer worker, the console's live feed,
notifications' delivery workers): how one is stopped."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Cancel `task` (if running) and wait until it has stopped, so nothing it does
    overlaps what the caller does next; its CancelledError is the expected end."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
