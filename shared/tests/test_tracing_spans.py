"""Spans are real OpenTelemetry spans: children of the incoming context, exported."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from kap_shared import tracing

INCOMING = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure_tracing("unit", processor=SimpleSpanProcessor(exporter))
    yield exporter
    tracing.configure_tracing("unit")


def test_consumer_span_is_a_child_of_the_message_context(exported: InMemorySpanExporter) -> None:
    with tracing.traced("kap.intake.events.v1 process", INCOMING, SpanKind.CONSUMER) as span:
        inner = tracing.current_traceparent()
    assert inner == tracing.traceparent_of(span)
    (finished,) = exported.get_finished_spans()
    assert finished.kind is SpanKind.CONSUMER
    assert f"{finished.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert finished.parent is not None
    assert f"{finished.parent.span_id:016x}" == "b7ad6b7169203331"
    assert finished.resource.attributes["service.name"] == "kap-unit"


def test_without_incoming_context_a_new_root_trace_starts(exported: InMemorySpanExporter) -> None:
    with tracing.traced("GET /inbox", None, SpanKind.SERVER):
        pass
    (finished,) = exported.get_finished_spans()
    assert finished.parent is None
    assert finished.kind is SpanKind.SERVER
