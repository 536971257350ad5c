"""The platform's one retry policy (tenacity): exponential backoff, capped.

* `until_up` retries forever, for what a service needs before it can work at all
  (its database and the broker at start-up: start-up order must not matter).
* `bounded` retries a few times, for a handler that may succeed on a second try
  (a lock timeout, a broker hiccup) before its message goes to the dead letters.
* `backoff_seconds` is the same curve for loops that wait rather than retry (the
  outbox relay's poll interval after a failed publish).

Each failure before a wait is logged once, with the attempt and the next delay.
"""

from __future__ import annotations

from collections.abc import Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from .logging import get_logger

log = get_logger(__name__)

# Start-up retries: 0.5 s, 1, 2, 4, 8, then every 10 s.
FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 10.0


def backoff_seconds(
    attempt: int, first: float = FIRST_DELAY_SECONDS, cap: float = MAX_DELAY_SECONDS
) -> float:
    """The wait before try `attempt + 1` after `attempt` failures (1-based)."""
    return float(min(first * 2 ** (attempt - 1), cap))


def _log_before_sleep(event: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            event,
            attempt=state.attempt_number,
            error=repr(error)[:300],
            retry_in=round(state.upcoming_sleep, 3),
        )

    return before_sleep


def until_up(
    event: str, *, first: float = FIRST_DELAY_SECONDS, cap: float = MAX_DELAY_SECONDS
) -> AsyncRetrying:
    """Retry any `Exception` forever (cancellation still stops it), logging `event`."""
    return AsyncRetrying(
        wait=wait_exponential(multiplier=first, max=cap),
        retry=retry_if_exception_type(Exception),
        before_sleep=_log_before_sleep(event),
        reraise=True,
    )


def bounded(
    event: str,
    *,
    attempts: int,
    first: float,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    give_up_on: tuple[type[BaseException], ...] = (),
) -> AsyncRetrying:
    """At most `attempts` tries, `first`, 2x`first`, ... apart, for errors of the types
    in `retry_on` except those in `give_up_on`. The last error is re-raised."""
    return AsyncRetrying(
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait_exponential(multiplier=first, max=MAX_DELAY_SECONDS * 6),
        retry=retry_if_exception_type(retry_on) & retry_if_not_exception_type(give_up_on),
        before_sleep=_log_before_sleep(event),
        reraise=True,
    )
