"""Create the contract's topics (and their `.dlq` twins) when missing.

Consumers subscribe at start-up; a topic that does not exist yet would
leave them unassigned until the next metadata refresh, so every service
makes sure the topics exist first. Creating an existing topic is a no-op.
"""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from ..events.topics import ALL_TOPICS, dead_letter_topic, retention_ms
from ..settings import KafkaSettings
from .broker import kafka_security


async def ensure_topics(settings: KafkaSettings, *, partitions: int, replication: int) -> None:
    security = kafka_security(settings)
    kwargs: dict[str, object] = {"bootstrap_servers": settings.bootstrap_servers}
    if security is not None:
        kwargs["security_protocol"] = settings.security_protocol
        kwargs["ssl_context"] = security.ssl_context
        if settings.sasl_mechanism or settings.sasl_username:
            kwargs["sasl_mechanism"] = settings.sasl_mechanism or "PLAIN"
            kwargs["sasl_plain_username"] = settings.sasl_username
            kwargs["sasl_plain_password"] = (
                settings.sasl_password.get_secret_value() if settings.sasl_password else None
            )
    admin = AIOKafkaAdminClient(**kwargs)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = [t for topic in ALL_TOPICS for t in (topic, dead_letter_topic(topic))]
        missing = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=replication,
                topic_configs={"retention.ms": str(retention_ms(name))},
            )
            for name in names
            if name not in existing
        ]
        if missing:
            # Another service may have created them meanwhile.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    finally:
        await admin.close()
