"""Notifications' own Prometheus metrics, on the runtime's registry (/metrics)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge


class NotificationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.created = Counter(
            "kap_notifications_created_total",
            "Notifications created",
            ["channel", "priority"],
            registry=registry,
        )
        self.deliveries = Counter(
            "kap_notifications_delivery_attempts_total",
            "External delivery attempts by outcome (delivered, retry, failed)",
            ["channel", "outcome", "error"],
            registry=registry,
        )
        self.escalations = Counter(
            "kap_notifications_escalations_total",
            "Escalation levels fired",
            ["level"],
            registry=registry,
        )
        self.acknowledgements = Counter(
            "kap_notifications_acknowledgements_total", "Acknowledgements", registry=registry
        )
        self.stream_clients = Gauge(
            "kap_notifications_stream_clients",
            "Connected GET /inbox/stream clients",
            registry=registry,
        )

    def track_stream_clients(self, count: Callable[[], int]) -> None:
        self.stream_clients.set_function(lambda: float(count()))
