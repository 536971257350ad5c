"""The platform's one retry policy (kap_shared.retry, on tenacity)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from tenacity import AsyncRetrying

from kap_shared.retry import backoff_seconds, bounded, until_up


def test_backoff_doubles_from_the_first_delay_up_to_the_cap() -> None:
    assert [backoff_seconds(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert backoff_seconds(3, first=0.1, cap=1) == pytest.approx(0.4)


async def failing(retrying: AsyncRetrying, errors: Sequence[BaseException]) -> int:
    """Run a block that raises `errors` in turn (then succeeds); return the tries."""
    calls = 0
    async for attempt in retrying:
        with attempt:
            calls += 1
            if calls <= len(errors):
                raise errors[calls - 1]
    return calls


async def test_until_up_retries_until_it_works() -> None:
    retrying = until_up("test.unavailable", first=0.001, cap=0.002)
    assert await failing(retrying, [ConnectionError("not yet")] * 3) == 4


async def test_bounded_gives_up_after_its_attempts_with_the_last_error() -> None:
    retrying = bounded("test.retry", attempts=3, first=0.001)
    errors = [TimeoutError(f"try {n}") for n in (1, 2, 3, 4)]
    with pytest.raises(TimeoutError, match="try 3"):
        await failing(retrying, errors)
    assert retrying.statistics["attempt_number"] == 3


async def test_bounded_does_not_retry_what_it_is_told_to_give_up_on() -> None:
    retrying = bounded("test.retry", attempts=5, first=0.001, give_up_on=(ValueError,))
    with pytest.raises(ValueError, match="stays bad"):
        await failing(retrying, [ValueError("bad input stays bad")] * 5)
    assert retrying.statistics["attempt_number"] == 1
