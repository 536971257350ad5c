"""Settings read from the environment (CONTRACT section 5), in one place.

Each service subclasses `ServiceSettings` to add its own knobs and defaults;
nothing else in the code reads `os.environ`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "localhost:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # CA bundle for SSL/SASL_SSL; the system trust store is used when unset.
    ssl_cafile: Path | None = None


# CONSUMER_LINGER_MS's bounds, for a service that sets its own default (records, console).
LingerMs = Annotated[int, Field(ge=0, le=5000)]


class ServiceSettings(BaseSettings):
    """What every service needs; subclass it and set `service_name`/`http_port`."""

    model_config = SettingsConfigDict(extra="ignore", env_file=".env", env_file_encoding="utf-8")

    service_name: str = "kap"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    database_url: str = ""
    var_dir: Path = Path("var")

    kap_jwt_secret: SecretStr | None = None
    kap_jwt_jwks_url: str | None = None
    kap_jwt_audience: str | None = None

    # Optional JSON file overriding rule defaults for the network and per site.
    rules_file: Path | None = None
    # How the schema is made: Alembic migrations (deployments) or create_all (unit tests).
    db_schema: Literal["migrate", "create_all"] = "migrate"

    # OTLP/HTTP collector for trace spans (e.g. http://otel-collector:4318); none = not exported.
    otel_exporter_otlp_endpoint: str | None = None

    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"

    # Outbox relay: how often it looks for unsent events when nothing woke it.
    outbox_poll_seconds: float = Field(default=0.5, gt=0)
    outbox_batch_size: int = Field(default=500, ge=1)
    # On SQLite, mark sent rows beside the sending instead of before the next batch
    # (OutboxRelay: pipelined); False restores the serial relay (benchmark comparisons).
    outbox_pipelined: bool = True
    # Operators may pause publishing (e.g. during a broker migration); events
    # keep accumulating safely in the outbox and go out once resumed.
    outbox_relay_enabled: bool = True

    # How often the durable-timer worker looks for due timers.
    timer_poll_seconds: float = Field(default=1.0, gt=0)

    # How long the broker may hold this service's fetches to gather more events (Kafka's
    # fetch.max.wait.ms, with a fetch.min.bytes only a backlog fills): each consumer then
    # takes what arrived in that time as one batch, instead of waking the moment any
    # event arrives. 0 (the default): at once. For a reader that may lag by this much
    # (records, the console's live feed): on the machine that also runs the alert path
    # its work then stays out of the few milliseconds after each event, when the alert
    # path needs the cores (kap_shared.messaging.linger; bench/README.md, alert rounds
    # 17 and 19).
    consumer_linger_ms: LingerMs = 0

    # Bounded in-process retries before a message is dead-lettered.
    consumer_max_attempts: int = Field(default=3, ge=1)
    consumer_retry_backoff_seconds: float = Field(default=0.2, ge=0)

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    # Used when this service creates missing topics at start-up.
    kafka_topic_partitions: int = Field(default=3, ge=1)
    kafka_topic_replication: int = Field(default=1, ge=1)

    @property
    def resolved_database_url(self) -> str:
        """An async SQLAlchemy URL: SQLite under `var/` unless DATABASE_URL says otherwise."""
        return async_database_url(
            self.database_url or f"sqlite:///{self.var_dir / f'{self.service_name}.db'}"
        )


class VitalsBatchSettings(BaseModel):
    """The tuning of a service that consumes kap.monitoring.vitals.v1 in batches
    (monitoring, records: one database transaction per batch, offsets committed behind it,
    `kap_shared.messaging.batch_consumer`), mixed into its settings:
    `class MonitoringSettings(ServiceSettings, VitalsBatchSettings)`."""

    vitals_batch_max_records: int = Field(default=5000, ge=1, le=50_000)
    # How long one poll waits for readings (it returns as soon as any are there; an empty
    # poll is followed by the next one, without faststream's idle sleep:
    # kap_shared.messaging.batches), so on a quiet topic it only sets how often the idle
    # consumer asks again.
    vitals_batch_timeout_ms: int = Field(default=20, ge=1)
    # A second, short read right after a batch's poll (kap_shared.messaging.batches)
    # when the batch is at least this old (the consumer is behind): it takes the answer
    # aiokafka prefetched meanwhile, so under load a batch holds what was produced up to
    # its start, not up to the previous batch's (about one batch time off every
    # reading's wait). It returns on arrival. A fresher batch is not topped up: the
    # read would mostly wait for readings not produced yet. 0: off; off as well for a
    # consumer that lingers (CONSUMER_LINGER_MS): its next fetch is held at the broker.
    vitals_batch_top_up_ms: int = Field(default=10, ge=0)
    vitals_max_partition_fetch_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # A batch's offsets are committed behind it, at most once this often (what was stored
    # meanwhile goes along; kap_shared.messaging.offsets): fewer broker requests at a
    # clinic's rate, where every reading is a batch, for up to this much more redelivered
    # (and deduplicated) after a crash. Before a rebalance and at shutdown: at once.
    vitals_batch_commit_interval_ms: int = Field(default=1000, ge=0, le=60_000)
    # Retries of a batch after a transient (database) error, before it is rewound and
    # redelivered; readings are never dead-lettered for a database outage.
    vitals_batch_retry_backoff_seconds: float = Field(default=0.5, ge=0)


# libpq query parameters asyncpg does not take; `sslmode` is renamed to `ssl`.
_LIBPQ_ONLY = frozenset(
    {
        "sslcert",
        "sslkey",
        "sslrootcert",
        "sslcrl",
        "target_session_attrs",
        "channel_binding",
        "gssencmode",
    }
)


def async_database_url(url: str) -> str:
    """A DATABASE_URL as written (`sqlite:///...`, `postgresql://...`) as the async
    SQLAlchemy URL the services open (aiosqlite, asyncpg)."""
    if url.startswith("sqlite:///"):
        return url.replace("sqlite:///", "sqlite+aiosqlite:///", 1)
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return _asyncpg_url("postgresql+asyncpg://" + url[len(prefix) :])
    return url


def _asyncpg_url(url: str) -> str:
    """Managed PostgreSQL URLs say `?sslmode=require`; asyncpg calls it `ssl`."""
    base, _, query = url.partition("?")
    if not query:
        return url
    params = []
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "sslmode":
            params.append(f"ssl={value}")
        elif name not in _LIBPQ_ONLY:
            params.append(pair)
    return base + ("?" + "&".join(params) if params else "")
