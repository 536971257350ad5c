"""W3C trace context (CONTRACT section 1: the `traceparent` header)."""

from __future__ import annotations

import contextvars
import re

import pytest

from kap_shared.tracing import continue_trace, current_traceparent, trace_id_of

# Sampled; W3C Trace Context level 2 may add the "random trace id" flag (0x02).
TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-0[13]$")
INCOMING = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def in_fresh_context(incoming: str | None) -> tuple[str, str | None]:
    """continue_trace in an isolated context: (returned value, current value after)."""

    def run() -> tuple[str, str | None]:
        return continue_trace(incoming), current_traceparent()

    return contextvars.Context().run(run)


def test_valid_traceparent_keeps_the_trace_id_with_a_new_span() -> None:
    value, current = in_fresh_context(INCOMING)
    assert TRACEPARENT.match(value)
    assert trace_id_of(value) == "0af7651916cd43dd8448eb211c80319c"
    assert value.split("-")[2] != "b7ad6b7169203331", "a child span gets its own parent-id"
    assert current == value


def test_surrounding_whitespace_is_optional_whitespace_of_the_header() -> None:
    """HTTP strips a header's optional whitespace; the W3C propagator does the same."""
    value, _ = in_fresh_context(f" {INCOMING} ")
    assert trace_id_of(value) == "0af7651916cd43dd8448eb211c80319c"


def test_unsampled_incoming_trace_is_still_continued() -> None:
    value, _ = in_fresh_context(INCOMING[:-2] + "00")
    assert trace_id_of(value) == "0af7651916cd43dd8448eb211c80319c"


@pytest.mark.parametrize(
    "incoming",
    [
        None,
        "",
        "garbage",
        "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",  # W3C: lowercase only
        "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",  # trace id too short
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033-01",  # parent id too short
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",  # no flags
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # forbidden version
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",  # v00 has 4 fields
    ],
)
def test_invalid_traceparent_starts_a_new_trace(incoming: str | None) -> None:
    first, current = in_fresh_context(incoming)
    second, _ = in_fresh_context(incoming)
    assert TRACEPARENT.match(first)
    assert current == first
    assert trace_id_of(first) != "0af7651916cd43dd8448eb211c80319c"
    assert trace_id_of(first) != trace_id_of(second), "new traces get random ids"


@pytest.mark.parametrize(
    "incoming",
    [
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
    ],
    ids=["zero-trace-id", "zero-parent-id"],
)
def test_all_zero_ids_are_invalid_and_start_a_new_trace(incoming: str) -> None:
    value, _ = in_fresh_context(incoming)
    assert trace_id_of(value) != trace_id_of(incoming)
    assert trace_id_of(value) != "0" * 32


def test_no_trace_is_current_in_a_fresh_context() -> None:
    assert contextvars.Context().run(current_traceparent) is None


@pytest.mark.parametrize(
    ("value", "trace_id"),
    [(INCOMING, "0af7651916cd43dd8448eb211c80319c"), ("nope", None), (None, None)],
)
def test_trace_id_of(value: str | None, trace_id: str | None) -> None:
    assert trace_id_of(value) == trace_id


@pytest.mark.parametrize("flags", [0x00, 0x01, 0x03])
def test_traceparent_of_writes_what_the_w3c_propagator_writes(flags: int) -> None:
    """traceparent_of formats the header itself (issue 13: cheaper per request); it
    must stay byte for byte what OpenTelemetry's propagator injects."""
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from kap_shared.tracing import trace_id_of_span, traceparent_of

    for trace_id, span_id in ((0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331), (1, 1)):
        span = NonRecordingSpan(SpanContext(trace_id, span_id, False, TraceFlags(flags)))
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier, trace.set_span_in_context(span))
        assert traceparent_of(span) == carrier["traceparent"]
        assert trace_id_of_span(span) == trace_id_of(carrier["traceparent"])
