"""Plain aiokafka clients for operator tools, configured like the services' broker.

`KAFKA_BOOTSTRAP_SERVERS`, `KAFKA_SECURITY_PROTOCOL`, `KAFKA_SASL_*` and
`KAFKA_SSL_CAFILE` go through the same `kafka_security()` the services use,
and faststream's own translation to aiokafka arguments, so a tool connects
to a secured cluster exactly as the services do.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka.security import parse_security

from ..messaging.broker import kafka_security
from ..settings import KafkaSettings


def client_kwargs(settings: KafkaSettings, *, client_id: str = "kap-ops") -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (consumer, producer, admin)."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": client_id,
    }
    kwargs.update(parse_security(kafka_security(settings)))
    return kwargs


def reader(settings: KafkaSettings, *, client_id: str = "kap-ops") -> AIOKafkaConsumer:
    """A consumer outside any consumer group: it reads, it never commits offsets."""
    return AIOKafkaConsumer(
        **client_kwargs(settings, client_id=client_id),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


def writer(settings: KafkaSettings, *, client_id: str = "kap-ops") -> AIOKafkaProducer:
    """An idempotent producer (acks=all): a retry never duplicates or reorders."""
    return AIOKafkaProducer(
        **client_kwargs(settings, client_id=client_id),
        enable_idempotence=True,
        acks="all",
    )


def admin(settings: KafkaSettings, *, client_id: str = "kap-ops") -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_kwargs(settings, client_id=client_id))


async def partitions_of(settings: KafkaSettings, topic: str) -> list[int] | None:
    """The topic's partition ids, or None when the topic does not exist."""
    client = admin(settings)
    await client.start()
    try:
        described = await client.describe_topics([topic])
    finally:
        await client.close()
    for entry in described:
        if entry.get("topic") == topic and entry.get("error_code") == 0:
            return sorted(int(p["partition"]) for p in entry.get("partitions", []))
    return None
