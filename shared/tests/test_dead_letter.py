"""Dead letters (CONTRACT section 2) and consumption through faststream's in-memory broker."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
import pytest
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from kap_shared.events import OutcomeRecorded, decode
from kap_shared.messaging.broker import dead_letter_middleware
from kap_shared.messaging.consumer import EventConsumer
from kap_shared.messaging.errors import PermanentError
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.tracing import current_traceparent, trace_id_of

from .dbsupport import Sessions, inbox_rows
from .examples import example

pytestmark = pytest.mark.filterwarnings("ignore:(?s).*session.exec:DeprecationWarning")

TOPIC = "kap.monitoring.events.v1"
DLQ = "kap.monitoring.events.v1.dlq"
GROUP = "notifications"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def outcome_json(**overrides: Any) -> bytes:
    return json.dumps(example("OutcomeRecorded", event_id=str(uuid.uuid4()), **overrides)).encode()


class Harness:
    """A broker with the dead-letter middleware, one failing subscriber and a DLQ spy."""

    def __init__(
        self,
        behaviour: Callable[[int, bytes], Awaitable[None]],
        *,
        max_attempts: int = 3,
        backoff_seconds: float = 0,
    ) -> None:
        self.attempts = 0
        self.dead: list[KafkaMessage] = []
        self.callbacks: list[tuple[str, str]] = []
        self.broker = KafkaBroker(
            middlewares=[
                dead_letter_middleware(
                    GROUP,
                    max_attempts=max_attempts,
                    backoff_seconds=backoff_seconds,
                    on_dead_letter=lambda topic, error: self.callbacks.append((topic, error)),
                )
            ]
        )

        @self.broker.subscriber(TOPIC, group_id=GROUP)
        async def handle(message: KafkaMessage) -> None:
            self.attempts += 1
            await behaviour(self.attempts, message.body)

        @self.broker.subscriber(DLQ, group_id="ops-dlq-spy")
        async def spy(message: KafkaMessage) -> None:
            self.dead.append(message)

    async def publish(self, body: bytes) -> None:
        async with TestKafkaBroker(self.broker) as broker:
            await broker.publish(
                body,
                TOPIC,
                key=b"pt-7f3c2a",
                headers={"event_type": "OutcomeRecorded", "traceparent": TRACEPARENT},
            )


async def always_value_error(attempt: int, body: bytes) -> None:
    raise ValueError(f"downstream said no (attempt {attempt})")


async def test_retryable_error_is_retried_max_attempts_then_dead_lettered() -> None:
    harness = Harness(always_value_error, max_attempts=3)
    body = outcome_json()

    await harness.publish(body)

    assert harness.attempts == 3
    (dead,) = harness.dead
    assert dead.body == body, "the dead letter carries the original bytes"
    assert isinstance(dead.raw_message, ConsumerRecord)
    assert dead.raw_message.key == b"pt-7f3c2a", "and the original key"
    headers = dead.headers
    assert headers["x-dlq-error"] == "downstream said no (attempt 3)"
    assert headers["x-dlq-error-type"] == "ValueError"
    assert headers["x-dlq-consumer-group"] == GROUP
    assert headers["x-dlq-original-topic"] == TOPIC
    # TestKafkaBroker builds a real aiokafka ConsumerRecord at partition 0, offset 0.
    assert headers["x-dlq-original-partition"] == "0"
    assert headers["x-dlq-original-offset"] == "0"
    assert headers["x-dlq-attempts"] == "3"
    # The original headers travel along (event type, trace).
    assert headers["event_type"] == "OutcomeRecorded"
    assert headers["traceparent"] == TRACEPARENT
    assert harness.callbacks == [(TOPIC, "ValueError")]


async def test_validation_error_is_dead_lettered_after_one_attempt() -> None:
    async def decode_it(attempt: int, body: bytes) -> None:
        decode(TOPIC, body)

    harness = Harness(decode_it, max_attempts=5)
    await harness.publish(b'{"event_type": "OutcomeRecorded", "patient_id": ')

    assert harness.attempts == 1, "a malformed message is not retried"
    (dead,) = harness.dead
    assert dead.headers["x-dlq-error-type"] == "ValidationError"
    assert "json" in dead.headers["x-dlq-error"].lower()
    assert dead.headers["x-dlq-attempts"] == "1"


async def test_contract_violation_names_the_field_in_the_dead_letter() -> None:
    async def decode_it(attempt: int, body: bytes) -> None:
        decode(TOPIC, body)

    harness = Harness(decode_it)
    bad = example("OutcomeRecorded")
    bad["data"]["instrument"] = "MADRS"
    await harness.publish(json.dumps(bad).encode())

    assert harness.attempts == 1
    (dead,) = harness.dead
    assert "data.instrument" in dead.headers["x-dlq-error"]


async def test_permanent_error_is_dead_lettered_after_one_attempt() -> None:
    async def unknown_session(attempt: int, body: bytes) -> None:
        raise PermanentError("session ses-404 does not exist")

    harness = Harness(unknown_session, max_attempts=4)
    await harness.publish(outcome_json())

    assert harness.attempts == 1
    (dead,) = harness.dead
    assert dead.headers["x-dlq-error-type"] == "PermanentError"
    assert dead.headers["x-dlq-error"] == "session ses-404 does not exist"


async def test_successful_handler_is_not_dead_lettered() -> None:
    async def ok(attempt: int, body: bytes) -> None:
        decode(TOPIC, body)

    harness = Harness(ok)
    await harness.publish(outcome_json())

    assert harness.attempts == 1
    assert harness.dead == []
    assert harness.callbacks == []


async def test_transient_error_that_clears_on_retry_is_not_dead_lettered() -> None:
    async def flaky(attempt: int, body: bytes) -> None:
        if attempt < 3:
            raise ConnectionError("smtp timeout")

    harness = Harness(flaky, max_attempts=3)
    await harness.publish(outcome_json())

    assert harness.attempts == 3
    assert harness.dead == []


async def test_retries_back_off_exponentially() -> None:
    harness = Harness(always_value_error, max_attempts=3, backoff_seconds=0.02)
    started = time.monotonic()
    await harness.publish(outcome_json())
    # Sleeps 0.02 after attempt 1 and 0.04 after attempt 2; none after the last.
    assert time.monotonic() - started >= 0.06
    assert harness.attempts == 3
    assert len(harness.dead) == 1


# --- EventConsumer through the broker -----------------------------------------------------


def consumer_with_dlq_spy(
    events: EventConsumer,
) -> tuple[KafkaBroker, list[KafkaMessage]]:
    """A broker running `events` behind the dead-letter middleware (no backoff), and
    the list a spy on the DLQ fills."""
    broker = KafkaBroker(middlewares=[dead_letter_middleware(GROUP, backoff_seconds=0)])
    events.subscribe(broker)
    dead: list[KafkaMessage] = []

    @broker.subscriber(DLQ, group_id="ops-dlq-spy")
    async def spy(message: KafkaMessage) -> None:
        dead.append(message)

    return broker, dead


async def test_event_consumer_end_to_end_dedupes_continues_trace_and_dead_letters(
    sessions: Sessions,
) -> None:
    seen: list[tuple[str, str | None]] = []

    async def on_outcome(event: OutcomeRecorded, uow: UnitOfWork) -> None:
        seen.append((str(event.event_id), trace_id_of(current_traceparent())))

    events = EventConsumer(
        group_id=GROUP, sessions=sessions, handlers={OutcomeRecorded: on_outcome}
    )
    broker, dead = consumer_with_dlq_spy(events)

    body = outcome_json()
    event_id = json.loads(body)["event_id"]
    headers = {"event_type": "OutcomeRecorded", "traceparent": TRACEPARENT}
    async with TestKafkaBroker(broker) as br:
        await br.publish(body, TOPIC, key=b"pt-7f3c2a", headers=headers)
        await br.publish(body, TOPIC, key=b"pt-7f3c2a", headers=headers)  # redelivery
        await br.publish(b"\x00not json", TOPIC, key=b"pt-7f3c2a")

    assert seen == [(event_id, "4bf92f3577b34da6a3ce929d0e0e4736")]
    assert [(r.consumer_group, r.event_id) for r in await inbox_rows(sessions)] == [
        (GROUP, event_id)
    ]
    (letter,) = dead
    assert letter.body == b"\x00not json"
    assert letter.headers["x-dlq-error-type"] == "ValidationError"
    assert letter.headers["x-dlq-consumer-group"] == GROUP
    assert letter.headers["x-dlq-original-topic"] == TOPIC


async def test_the_platforms_consumers_hand_no_message_to_a_worker_thread(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """faststream's own `KafkaMessage` parameter is resolved by fast_depends on a worker
    thread for every message (`anyio.to_thread.run_sync`); the platform's consumers
    resolve it on the event loop (`kap_shared.messaging.consumer.KafkaMessage`)."""
    handed_off: list[object] = []
    real_run_sync = anyio.to_thread.run_sync

    async def counting_run_sync(func: Any, *args: Any, **kwargs: Any) -> Any:
        handed_off.append(func)
        return await real_run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting_run_sync)
    seen: list[str] = []

    async def on_outcome(event: OutcomeRecorded, uow: UnitOfWork) -> None:
        seen.append(str(event.event_id))

    events = EventConsumer(
        group_id=GROUP, sessions=sessions, handlers={OutcomeRecorded: on_outcome}
    )
    broker = KafkaBroker()
    events.subscribe(broker)
    body = outcome_json()
    async with TestKafkaBroker(broker) as br:
        await br.publish(body, TOPIC, key=b"pt-7f3c2a", headers={"event_type": "OutcomeRecorded"})

    assert seen == [json.loads(body)["event_id"]]
    assert handed_off == []


async def test_tolerant_reader_skips_types_without_a_handler_and_dead_letters_bad_handled_ones(
    sessions: Sessions,
) -> None:
    """A type added by a producer that deployed first (or one this group does not
    handle) is skipped before validation: counted, never dead-lettered. A handled type
    that fails validation still goes to the DLQ, and the next good event is processed."""
    seen: list[str] = []
    observed: list[tuple[str, str, str]] = []

    async def on_outcome(event: OutcomeRecorded, uow: UnitOfWork) -> None:
        seen.append(str(event.event_id))

    events = EventConsumer(
        group_id=GROUP,
        sessions=sessions,
        handlers={OutcomeRecorded: on_outcome},
        observe=lambda topic, event_type, outcome, _s: observed.append(
            (topic, event_type, outcome)
        ),
    )
    broker, dead = consumer_with_dlq_spy(events)

    future = json.dumps(
        {"event_type": "OutcomeReviewed", "event_id": str(uuid.uuid4()), "data": {"x": [1]}}
    ).encode()
    known_unhandled = json.dumps(example("DoseAdministered", event_id=str(uuid.uuid4()))).encode()
    broken = json.loads(outcome_json())
    del broken["data"]["instrument"]
    good = outcome_json()
    async with TestKafkaBroker(broker) as br:
        # By header (as the outbox publishes) and, without a header, by the envelope's field.
        await br.publish(future, TOPIC, key=b"pt-1", headers={"event_type": "OutcomeReviewed"})
        await br.publish(future, TOPIC, key=b"pt-1")
        await br.publish(known_unhandled, TOPIC, key=b"pt-1")
        await br.publish(json.dumps(broken).encode(), TOPIC, key=b"pt-1")
        await br.publish(good, TOPIC, key=b"pt-1", headers={"event_type": "OutcomeRecorded"})

    assert seen == [json.loads(good)["event_id"]]
    assert [o for _t, _e, o in observed] == ["skipped", "skipped", "skipped", "processed"]
    assert observed[0] == (TOPIC, "OutcomeReviewed", "skipped")
    assert observed[2][1] == "DoseAdministered"
    (letter,) = dead
    assert letter.headers["x-dlq-error-type"] == "ValidationError"
    assert "data.instrument" in letter.headers["x-dlq-error"]


async def test_a_header_naming_a_handled_type_does_not_smuggle_another_payload(
    sessions: Sessions,
) -> None:
    """The header picks the class; the payload must still be that class."""

    async def on_outcome(event: OutcomeRecorded, uow: UnitOfWork) -> None:
        raise AssertionError("must not be called")

    events = EventConsumer(
        group_id=GROUP, sessions=sessions, handlers={OutcomeRecorded: on_outcome}
    )
    broker, dead = consumer_with_dlq_spy(events)

    dose = json.dumps(example("DoseAdministered", event_id=str(uuid.uuid4()))).encode()
    async with TestKafkaBroker(broker) as br:
        await br.publish(dose, TOPIC, key=b"pt-1", headers={"event_type": "OutcomeRecorded"})
    (letter,) = dead
    assert letter.headers["x-dlq-error-type"] == "ValidationError"
