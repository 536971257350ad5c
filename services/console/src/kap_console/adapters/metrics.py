"""Prometheus metrics on the console's `/metrics`: the platform's HTTP and consumer
metrics (`kap_shared.service.metrics`, the same names as every service) plus what a
backend-for-frontend costs: each call to a service's API, by service, method and
outcome, and its latency. A board is a handful of calls; a jump here is a regression."""

from __future__ import annotations

from kap_shared.service.metrics import ServiceMetrics

# Service-call latencies are milliseconds to a few seconds (the board's budget: 150 ms).
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ConsoleMetrics(ServiceMetrics):
    def __init__(self) -> None:
        super().__init__()
        self.service_calls = self.counter(
            "kap_console_service_calls_total",
            "Calls the console made to a service's API (outcome: the status, or unreachable)",
            "service",
            "method",
            "outcome",
        )
        self.service_call_latency = self.histogram(
            "kap_console_service_call_duration_seconds",
            "Latency of the console's calls to a service's API",
            "service",
            "method",
            buckets=CALL_BUCKETS,
        )
        self.live_listeners = self.gauge(
            "kap_console_live_listeners", "Browsers connected to GET /live on this instance"
        )
