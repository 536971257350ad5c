"""OpenTelemetry tracing with W3C trace context (CONTRACT: the `traceparent`
header), carried from the HTTP request through every Kafka hop.

- The HTTP middleware opens a SERVER span, child of the caller's `traceparent`.
- The consumer opens a CONSUMER span, child of the message's `traceparent`.
- The unit of work copies the current `traceparent` onto every outgoing event
  (outbox headers), so the next service's span joins the same trace.

Spans go to an OTLP collector when OTEL_EXPORTER_OTLP_ENDPOINT is set; without
one they are still created, so ids propagate and logs carry the trace id.
Headers are read and written by OpenTelemetry's W3C TraceContext propagator
(lowercase hex, no all-zero ids, version 00 exactly four fields); anything it
rejects starts a new trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanContext, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_W3C = TraceContextTextMapPropagator()

# The platform's own provider (not the global one), so libraries cannot swap it.
_provider = TracerProvider(resource=Resource.create({"service.name": "kap"}))
_tracer = _provider.get_tracer("kap_shared")


def configure_tracing(
    service_name: str, otlp_endpoint: str | None = None, processor: SpanProcessor | None = None
) -> None:
    """Name this process's spans and, when asked, export them."""
    global _provider, _tracer
    _provider = TracerProvider(resource=Resource.create({"service.name": f"kap-{service_name}"}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
        _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if processor is not None:
        _provider.add_span_processor(processor)
    _tracer = _provider.get_tracer("kap_shared")


def _parent(incoming: str | None) -> otel_context.Context:
    """The caller's span as parent; an empty context (a new trace) when absent or invalid."""
    carrier = {"traceparent": incoming} if incoming else {}
    return _W3C.extract(carrier, context=otel_context.Context())


def _format(span_context: SpanContext) -> str:
    if span_context.is_valid:
        # What the propagator writes for a valid context (a test holds them equal),
        # without the context copy and the span object it builds on every call.
        return (
            f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
            f"-{span_context.trace_flags:02x}"
        )
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=trace.set_span_in_context(trace.NonRecordingSpan(span_context)))
    return carrier["traceparent"]


@contextmanager
def traced(name: str, incoming: str | None, kind: SpanKind) -> Iterator[trace.Span]:
    """A span, child of `incoming` (or a new trace), current for the block."""
    with _tracer.start_as_current_span(name, context=_parent(incoming), kind=kind) as span:
        yield span


def traceparent_of(span: trace.Span) -> str:
    return _format(span.get_span_context())


def continue_trace(incoming: str | None) -> str:
    """Make a child span of `incoming` current (for code without a span block)."""
    span = _tracer.start_span("continue", context=_parent(incoming))
    span.end()
    otel_context.attach(trace.set_span_in_context(span))
    return _format(span.get_span_context())


def current_traceparent() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    return _format(span_context) if span_context.is_valid else None


def trace_id_of_span(span: trace.Span) -> str | None:
    """The trace id (32 hex) of a span of this process, for log lines."""
    span_context = span.get_span_context()
    return f"{span_context.trace_id:032x}" if span_context.is_valid else None


def trace_id_of(traceparent: str | None) -> str | None:
    span_context = trace.get_current_span(_parent(traceparent)).get_span_context()
    return f"{span_context.trace_id:032x}" if span_context.is_valid else None
