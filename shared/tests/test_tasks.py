"""A worker's loop runs when woken, not only when its poll interval comes round."""

from __future__ import annotations

import asyncio

from kap_shared.tasks import cancel_and_wait, run_when_woken


async def _until(condition: object, runs: list[int]) -> None:
    for _ in range(1000):  # event-loop turns, not time: the wake-up needs a few
        if condition == len(runs):
            return
        await asyncio.sleep(0)
    raise AssertionError(f"ran {len(runs)} times, expected {condition}")


async def test_a_wake_up_runs_the_work_at_once_and_a_failed_run_does_not_end_the_loop() -> None:
    runs: list[int] = []
    wake = asyncio.Event()

    async def work() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("database unavailable")

    # An hour's poll interval: only the wake-ups can make it run again within the test.
    task = asyncio.create_task(run_when_woken(work, wake, poll_seconds=3600, failed="x.failed"))
    try:
        await _until(1, runs)
        wake.set()
        await _until(2, runs)  # the failure was logged and the loop went on
        wake.set()
        await _until(3, runs)
    finally:
        await cancel_and_wait(task)
