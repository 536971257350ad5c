"""`kap-records rebuild`, a command-line entrypoint: drop the projection, replay the topics.

Reads every topic from its beginning up to the end offsets seen at the start,
outside any consumer group (nothing committed; the live `records` group keeps its
offsets), and runs each event through the same projector as the live consumer,
in replay mode: no form is opened and nothing is published (the forms' own events
on kap.records.events.v1 are replayed instead). The forms themselves, with what
clinicians completed, are records' own state and are kept. Events that expired
from a topic (vitals readings may: docs/deploy.md) are not in the rebuilt record.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pydantic
from aiokafka import TopicPartition
from sqlalchemy import delete

from kap_shared.db import create_tables
from kap_shared.events.catalog import decode
from kap_shared.events.topics import ALL_TOPICS
from kap_shared.logging import get_logger
from kap_shared.messaging.consumer import EventConsumer
from kap_shared.messaging.inbox import InboxMessage
from kap_shared.migrations import migrations_dir, upgrade
from kap_shared.ops.kafka import partitions_of, reader

from ..adapters.tables import PROJECTION, REGISTRY
from ..bootstrap import runtime_for
from ..config import RecordsSettings
from .stream import handlers

log = get_logger(__name__)


async def rebuild(settings: RecordsSettings) -> dict[str, int]:
    runtime = runtime_for(settings)
    try:
        if settings.db_schema == "migrate":
            # Alembic runs its own event loop: off this one, as the runtime does.
            await asyncio.to_thread(
                upgrade, settings.resolved_database_url, migrations_dir("kap_records")
            )
        else:
            await create_tables(runtime.engine, [REGISTRY.metadata])
        group = f"records-rebuild-{uuid.uuid4().hex[:12]}"
        async with runtime.sessions() as session, session.begin():
            for table in PROJECTION:
                await session.execute(delete(table))
        consumer = EventConsumer(
            group_id=group,
            sessions=runtime.sessions,
            handlers=handlers(settings.records_rules, live=False),
        )
        counts = await _replay(settings, consumer)
        async with runtime.sessions() as session, session.begin():
            await session.execute(
                delete(InboxMessage).where(InboxMessage.consumer_group == group)  # type: ignore[arg-type]
            )
        log.info("rebuild.done", **counts)
        return counts
    finally:
        await runtime.engine.dispose()


async def _replay(settings: RecordsSettings, consumer: EventConsumer) -> dict[str, int]:
    kafka = reader(settings.kafka, client_id="kap-records-rebuild")
    await kafka.start()
    counts = {"events": 0, "projected": 0, "skipped": 0}
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in ALL_TOPICS
            for p in await partitions_of(settings.kafka, topic) or ()
        ]
        if not partitions:
            return counts
        kafka.assign(partitions)
        await kafka.seek_to_beginning(*partitions)
        ends: dict[TopicPartition, int] = await kafka.end_offsets(partitions)
        remaining = {tp for tp, end in ends.items() if end > await kafka.position(tp)}
        while remaining:
            batches: dict[TopicPartition, Any] = await kafka.getmany(
                *remaining, timeout_ms=1000, max_records=1000
            )
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        break
                    counts["events"] += 1
                    try:
                        event = decode(tp.topic, record.value)
                    except (pydantic.ValidationError, ValueError) as exc:
                        counts["skipped"] += 1
                        log.warning("rebuild.undecodable", topic=tp.topic, error=repr(exc)[:200])
                        continue
                    if await consumer.process(event) == "processed":
                        counts["projected"] += 1
            for tp in list(remaining):
                if await kafka.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await kafka.stop()
    return counts
