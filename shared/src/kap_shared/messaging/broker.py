"""Kafka plumbing on faststream: the broker factory, the dead-letter
middleware, and the sender the outbox relay uses.

Consumers commit only after the handler finished (never the auto-commit
default, which loses messages): `AckPolicy.NACK_ON_ERROR` commits on success
and seeks back on error. The dead-letter middleware turns "error after
bounded retries" into "published to <topic>.dlq, then success", so the
partition keeps flowing; if even the dead-letter publish fails, the error
propagates and the message is redelivered rather than lost.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)
from pydantic import ValidationError

from ..events.topics import dead_letter_topic
from ..logging import get_logger
from ..retry import bounded
from ..settings import KafkaSettings
from .errors import PermanentError
from .outbox import OutboxRow

log = get_logger(__name__)

# Errors no retry can fix: the message itself is bad.
NON_RETRYABLE: tuple[type[BaseException], ...] = (
    ValidationError,
    UnicodeDecodeError,
    json.JSONDecodeError,
    PermanentError,
)

# Header names on dead letters (CONTRACT section 2).
DLQ_ERROR = "x-dlq-error"
DLQ_ERROR_TYPE = "x-dlq-error-type"
DLQ_GROUP = "x-dlq-consumer-group"
DLQ_TOPIC = "x-dlq-original-topic"
DLQ_PARTITION = "x-dlq-original-partition"
DLQ_OFFSET = "x-dlq-original-offset"
DLQ_ATTEMPTS = "x-dlq-attempts"


def kafka_security(settings: KafkaSettings) -> BaseSecurity | None:
    """faststream security object from KAFKA_SECURITY_PROTOCOL / KAFKA_SASL_*."""
    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context: ssl.SSLContext | None = None
    use_ssl = protocol in ("SSL", "SASL_SSL")
    if use_ssl:
        context = ssl.create_default_context(
            cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None
        )
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    if not settings.sasl_username or settings.sasl_password is None:
        raise ValueError(f"KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required for {protocol}")
    mechanisms: dict[str | None, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
        "PLAIN": SASLPlaintext,
        None: SASLPlaintext,
        "SCRAM-SHA-256": SASLScram256,
        "SCRAM-SHA-512": SASLScram512,
    }
    cls = mechanisms[settings.sasl_mechanism]
    return cls(
        settings.sasl_username,
        settings.sasl_password.get_secret_value(),
        ssl_context=context,
        use_ssl=use_ssl,
    )


def create_broker(
    settings: KafkaSettings,
    *,
    client_id: str,
    middlewares: tuple[Any, ...] = (),
) -> KafkaBroker:
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=client_id,
        security=kafka_security(settings),
        # Idempotent producer: retries never duplicate or reorder within a partition.
        enable_idempotence=True,
        middlewares=middlewares,
        graceful_timeout=15.0,
        logger=None,
    )


def dead_letter_headers(
    error: BaseException,
    *,
    consumer_group: str,
    topic: str,
    partition: int,
    offset: int,
    attempts: int,
) -> dict[str, str]:
    """The headers a dead letter carries on top of the original message's: the error, the
    consumer group and where the message was read (CONTRACT section 2)."""
    return {
        DLQ_ERROR: str(error)[:1000],
        DLQ_ERROR_TYPE: type(error).__name__,
        DLQ_GROUP: consumer_group,
        DLQ_TOPIC: topic,
        DLQ_PARTITION: str(partition),
        DLQ_OFFSET: str(offset),
        DLQ_ATTEMPTS: str(attempts),
    }


async def publish_dead_letter(
    broker: KafkaBroker,
    record: Any,
    value: bytes,
    headers: Mapping[str, str],
    *,
    error: BaseException,
    consumer_group: str,
    attempts: int,
) -> None:
    """Publish a message that cannot be processed to `<topic>.dlq`, keeping its key and
    headers and naming the error, consumer group and original topic/partition/offset
    (CONTRACT section 2). Raises when the broker refuses: the caller then must not
    commit, so the message is redelivered rather than lost. `record` is the aiokafka
    ConsumerRecord the message came in."""
    await broker.publish(
        value,
        dead_letter_topic(record.topic),
        key=record.key,
        headers={
            **headers,
            **dead_letter_headers(
                error,
                consumer_group=consumer_group,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                attempts=attempts,
            ),
        },
    )
    log.error(
        "consumer.dead_lettered",
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        consumer_group=consumer_group,
        error_type=type(error).__name__,
        error=str(error)[:300],
    )


def dead_letter_middleware(
    consumer_group: str,
    *,
    max_attempts: int = 3,
    backoff_seconds: float = 0.2,
    on_dead_letter: Callable[[str, str], None] = lambda topic, error: None,
) -> type[BaseMiddleware]:
    """A broker middleware: bounded retries, then `<topic>.dlq` with provenance headers."""

    class DeadLetterMiddleware(BaseMiddleware):
        async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
            retrying = bounded(
                "consumer.retry",
                attempts=max_attempts,
                first=backoff_seconds,
                give_up_on=NON_RETRYABLE,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        return await call_next(msg)
            except Exception as exc:
                await self._dead_letter(msg, exc, retrying.statistics["attempt_number"])
            return None

        async def _dead_letter(
            self, msg: StreamMessage[Any], error: BaseException, attempts: int
        ) -> None:
            record = msg.raw_message
            broker: KafkaBroker = self.context.get_local("broker") or self.context.get("broker")
            await publish_dead_letter(
                broker,
                record,
                msg.body,
                {k: str(v) for k, v in (msg.headers or {}).items()},
                error=error,
                consumer_group=consumer_group,
                attempts=attempts,
            )
            on_dead_letter(record.topic, type(error).__name__)

    return DeadLetterMiddleware


def outbox_sender(broker: KafkaBroker) -> Callable[[Sequence[OutboxRow]], Awaitable[None]]:
    """Send a batch in order and wait for every ack (pipelined, not one by one)."""

    async def send(rows: Sequence[OutboxRow]) -> None:
        futures = [
            await broker.publish(
                json.dumps(row.payload, separators=(",", ":")).encode(),
                row.topic,
                key=row.key.encode(),
                headers=row.headers,
                no_confirm=True,
            )
            for row in rows
        ]
        await asyncio.gather(*futures)

    return send
