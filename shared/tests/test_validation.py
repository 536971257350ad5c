"""kap_shared.validation: the identifier pattern and the clock skew every service uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from kap_shared.validation import CLOCK_SKEW, Identifier, in_the_future

IDENTIFIER = TypeAdapter(Identifier)


@pytest.mark.parametrize("value", ["site-a", "rx.1", "urn:kap:s_1", "A" * 64])
def test_identifier_accepts_plain_ids(value: str) -> None:
    assert IDENTIFIER.validate_python(value) == value


@pytest.mark.parametrize("value", ["", "a b", "rx@clinic", "a/b", "é", "A" * 65])
def test_identifier_refuses_what_would_need_escaping(value: str) -> None:
    with pytest.raises(ValidationError):
        IDENTIFIER.validate_python(value)


def test_clock_skew_is_a_few_seconds_not_a_minute() -> None:
    now = datetime(2026, 1, 1, 9, tzinfo=UTC)
    assert not in_the_future(now + CLOCK_SKEW, now)
    assert in_the_future(now + CLOCK_SKEW + timedelta(microseconds=1), now)
    # The stricter of the copies that drifted (5 s in monitoring, 60 s in scheduling).
    assert in_the_future(now + timedelta(seconds=30), now)
