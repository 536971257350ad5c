"""Background tasks of a service's own loops (the timer worker, the console's live feed,
notifications' delivery workers): how one is stopped."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from .logging import get_logger

log = get_logger(__name__)


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Cancel `task` (if running) and wait until it has stopped, so nothing it does
    overlaps what the caller does next; its CancelledError is the expected end."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def run_when_woken(
    work: Callable[[], Awaitable[object]],
    wake: asyncio.Event,
    *,
    poll_seconds: float,
    failed: str,
    **context: str,
) -> None:
    """A worker's loop: run `work` at once when `wake` is set (after a commit that made
    something due) and every `poll_seconds` anyway (what no wake-up announced, e.g. a
    deadline passing or another instance's commit). A failed run is logged as `failed`
    with `context` and the loop goes on; a wake-up during a run is kept for the next."""
    while True:
        wake.clear()
        try:
            await work()
        except Exception as exc:
            log.warning(failed, error=repr(exc)[:300], **context)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=poll_seconds)
