"""Prometheus metrics every service exposes on `/metrics`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "kap_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "kap_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )
        self.events_consumed = Counter(
            "kap_events_consumed_total",
            "Events processed by this service's consumers",
            ["topic", "event_type", "outcome"],
            registry=self.registry,
        )
        self.handler_latency = Histogram(
            "kap_event_handler_duration_seconds",
            "Event handler latency",
            ["topic"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "kap_dead_letters_total",
            "Messages sent to a dead-letter topic",
            ["topic", "error_type"],
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "kap_consumer_lag",
            "Messages behind the partition's end, for this service's consumer group",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "kap_outbox_backlog", "Events written but not yet published", registry=self.registry
        )
        # Where the outbox relay's time goes per published batch (OutboxRelay stages),
        # in buckets fine enough for the alert path's milliseconds.
        self.outbox_relay_latency = Histogram(
            "kap_outbox_relay_seconds",
            "Outbox relay: notify -> sending, sending -> acknowledged, marking sent",
            ["stage"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.outbox_oldest_age = Gauge(
            "kap_outbox_oldest_unsent_age_seconds",
            "Age of the oldest unsent outbox event",
            registry=self.registry,
        )
