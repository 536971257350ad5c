"""Prometheus metrics every service exposes on `/metrics`."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from ..db_sqlite import writer_queue_of

# Where the outbox relay's time goes per published batch (OutboxRelay stages), in
# buckets fine enough for the alert path's milliseconds.
RELAY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# SQLite's writer waits and checkpoint passes: most are under a millisecond; a writer
# gives up at the busy timeout (30 s).
SQLITE_BUCKETS = (0.0005, *RELAY_BUCKETS, 10.0, 30.0)


class ServiceMetrics:
    """The platform's metrics on one registry; a service adds its own with `counter`,
    `histogram` and `gauge` (e.g. the console's `ConsoleMetrics`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = self.counter(
            "kap_http_requests_total", "HTTP requests", "method", "route", "status"
        )
        self.http_latency = self.histogram(
            "kap_http_request_duration_seconds", "HTTP request latency", "method", "route"
        )
        self.events_consumed = self.counter(
            "kap_events_consumed_total",
            "Events processed by this service's consumers",
            "topic",
            "event_type",
            "outcome",
        )
        self.handler_latency = self.histogram(
            "kap_event_handler_duration_seconds", "Event handler latency", "topic"
        )
        self.dead_letters = self.counter(
            "kap_dead_letters_total", "Messages sent to a dead-letter topic", "topic", "error_type"
        )
        self.consumer_lag = self.gauge(
            "kap_consumer_lag",
            "Messages behind the partition's end, for this service's consumer group",
            "topic",
            "partition",
        )
        self.offset_commits = self.counter(
            "kap_consumer_offset_commits_total",
            "Offset commits of this service's batch consumers (committed behind the batches)",
            "topic",
            "outcome",
        )
        self.outbox_backlog = self.gauge(
            "kap_outbox_backlog", "Events written but not yet published"
        )
        self.outbox_relay_latency = self.histogram(
            "kap_outbox_relay_seconds",
            "Outbox relay: notify -> sending, sending -> acknowledged, marking sent",
            "stage",
            buckets=RELAY_BUCKETS,
        )
        self.timers_due = self.gauge(
            "kap_timers_due", "Durable timers whose time has come and that have not fired"
        )
        self.outbox_oldest_age = self.gauge(
            "kap_outbox_oldest_unsent_age_seconds", "Age of the oldest unsent outbox event"
        )

    def watch_database(self, engine: AsyncEngine) -> None:
        """On SQLite: how long transactions wait for this process's writer lock, how long
        each WAL checkpoint pass takes (`locked`: the one writers wait for), and what the
        WAL holds that is not yet copied into the database (read at each scrape). Nothing
        on PostgreSQL, whose own statistics say this."""
        if engine.dialect.name != "sqlite":
            return
        writers = writer_queue_of(engine)
        self._sqlite_writer_wait = self.histogram(
            "kap_sqlite_writer_wait_seconds",
            "Time a transaction waited for this process's SQLite writer lock",
            buckets=SQLITE_BUCKETS,
        )
        self._sqlite_checkpoint = self.histogram(
            "kap_sqlite_checkpoint_seconds",
            "WAL checkpoint passes: passive, unlocked, locked (holding the writers)",
            "pass",
            buckets=SQLITE_BUCKETS,
        )
        if writers.checkpointer is not None:
            checkpointer = writers.checkpointer
            self.gauge(
                "kap_sqlite_wal_uncopied_bytes",
                "WAL bytes not yet copied into the database file",
            ).set_function(lambda: checkpointer.wal().waiting)
        writers.watch(self)

    def writer_waited(self, seconds: float) -> None:
        self._sqlite_writer_wait.observe(seconds)

    def checkpoint_pass(self, kind: str, seconds: float) -> None:
        self._sqlite_checkpoint.labels(kind).observe(seconds)

    def counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def histogram(
        self,
        name: str,
        documentation: str,
        *labels: str,
        buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
    ) -> Histogram:
        return Histogram(name, documentation, labels, buckets=buckets, registry=self.registry)

    def gauge(self, name: str, documentation: str, *labels: str) -> Gauge:
        return Gauge(name, documentation, labels, registry=self.registry)
