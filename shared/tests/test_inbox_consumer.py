"""Idempotent consumption: the inbox and `EventConsumer.handle` on a real SQLite database."""

from __future__ import annotations

import uuid

import pytest

from kap_shared.events import (
    EVENT_TYPES,
    Envelope,
    OutcomeRecorded,
    PatientScreened,
    SafetyConcernRaised,
    VitalsRecorded,
)
from kap_shared.messaging import inbox, upserts
from kap_shared.messaging.consumer import EventConsumer
from kap_shared.messaging.unit_of_work import UnitOfWork

from .dbsupport import CareTask, Sessions, care_tasks, inbox_rows, outbox_rows
from .examples import EXAMPLE_DATA, example

pytestmark = pytest.mark.filterwarnings("ignore:(?s).*session.exec:DeprecationWarning")

GROUP = "notifications"


def event(event_type: str) -> Envelope:
    return EVENT_TYPES[event_type].model_validate(example(event_type, event_id=str(uuid.uuid4())))


# --- inbox.claim --------------------------------------------------------------------------


async def claim_and_commit(sessions: Sessions, group: str, event_id: str) -> bool:
    async with sessions() as session:
        claimed = await inbox.claim(session, group, event_id, "OutcomeRecorded")
        await session.commit()
        return claimed


async def test_claim_is_true_once_per_group_and_event(sessions: Sessions) -> None:
    event_id = str(uuid.uuid4())
    assert await claim_and_commit(sessions, GROUP, event_id) is True
    assert await claim_and_commit(sessions, GROUP, event_id) is False
    assert await claim_and_commit(sessions, "scheduling", event_id) is True
    assert await claim_and_commit(sessions, GROUP, str(uuid.uuid4())) is True

    rows = await inbox_rows(sessions)
    assert [(r.consumer_group, r.event_id) for r in rows].count((GROUP, event_id)) == 1
    assert len(rows) == 3
    assert all(r.event_type == "OutcomeRecorded" and r.processed_at for r in rows)


async def test_second_claim_in_the_same_transaction_is_false(sessions: Sessions) -> None:
    event_id = str(uuid.uuid4())
    async with sessions() as session:
        assert await inbox.claim(session, GROUP, event_id, "VitalsAlert") is True
        assert await inbox.claim(session, GROUP, event_id, "VitalsAlert") is False


async def test_claim_in_a_rolled_back_transaction_does_not_persist(sessions: Sessions) -> None:
    event_id = str(uuid.uuid4())
    async with sessions() as session:
        assert await inbox.claim(session, GROUP, event_id, "VitalsAlert") is True
        await session.rollback()
    assert await inbox_rows(sessions) == []
    assert await claim_and_commit(sessions, GROUP, event_id) is True


# --- EventConsumer.handle -----------------------------------------------------------------


class Recorder:
    """A handler that writes state and publishes a follow-up event, as services do."""

    def __init__(self, fail_times: int = 0) -> None:
        self.calls: list[str] = []
        self.fail_times = fail_times

    async def __call__(self, event: OutcomeRecorded, uow: UnitOfWork) -> None:
        self.calls.append(str(event.event_id))
        uow.session.add(CareTask(patient_id=event.patient_id, kind="review-outcome"))
        uow.publish(
            SafetyConcernRaised.caused_by(
                event, producer="monitoring", data=EXAMPLE_DATA["SafetyConcernRaised"]
            )
        )
        await uow.session.flush()
        if len(self.calls) <= self.fail_times:
            raise RuntimeError("smtp relay unavailable")


def consumer(sessions: Sessions, handler: Recorder, commits: list[int]) -> EventConsumer:
    return EventConsumer(
        group_id=GROUP,
        sessions=sessions,
        handlers={OutcomeRecorded: handler},
        on_commit=lambda _rows: commits.append(1),
    )


async def test_handler_runs_once_and_its_effects_commit_with_the_inbox_claim(
    sessions: Sessions,
) -> None:
    handler, commits = Recorder(), list[int]()
    outcome = event("OutcomeRecorded")

    assert await consumer(sessions, handler, commits).handle(outcome) is True

    assert handler.calls == [str(outcome.event_id)]
    assert [(t.patient_id, t.kind) for t in await care_tasks(sessions)] == [
        (outcome.patient_id, "review-outcome")
    ]
    (claimed,) = await inbox_rows(sessions)
    assert (claimed.consumer_group, claimed.event_id, claimed.event_type) == (
        GROUP,
        str(outcome.event_id),
        "OutcomeRecorded",
    )
    (follow_up,) = await outbox_rows(sessions)
    assert follow_up.event_type == "SafetyConcernRaised"
    assert follow_up.payload["causation_id"] == str(outcome.event_id)
    assert follow_up.payload["correlation_id"] == outcome.correlation_id
    assert commits == [1]


async def test_redelivered_event_is_skipped(sessions: Sessions) -> None:
    handler, commits = Recorder(), list[int]()
    outcome = event("OutcomeRecorded")
    events = consumer(sessions, handler, commits)

    assert await events.handle(outcome) is True
    # At-least-once delivery: the same event arrives again (relay retry, rebalance...).
    redelivered = OutcomeRecorded.model_validate_json(outcome.to_json())
    assert await events.handle(redelivered) is False

    assert handler.calls == [str(outcome.event_id)]
    assert len(await care_tasks(sessions)) == 1
    assert len(await outbox_rows(sessions)) == 1
    assert commits == [1]


async def test_redelivery_is_skipped_across_consumer_instances(sessions: Sessions) -> None:
    # Another instance of the same service (same group, same database) gets the redelivery.
    first, second = Recorder(), Recorder()
    outcome = event("OutcomeRecorded")
    assert await consumer(sessions, first, []).handle(outcome) is True
    assert await consumer(sessions, second, []).handle(outcome) is False
    assert second.calls == []


async def test_handler_failure_rolls_back_its_writes_and_the_claim(sessions: Sessions) -> None:
    handler, commits = Recorder(fail_times=1), list[int]()
    outcome = event("OutcomeRecorded")
    events = consumer(sessions, handler, commits)

    with pytest.raises(RuntimeError, match="smtp relay unavailable"):
        await events.handle(outcome)

    assert await care_tasks(sessions) == []
    assert await inbox_rows(sessions) == []
    assert await outbox_rows(sessions) == []
    assert commits == []

    # The retry runs the handler again and now succeeds, exactly once.
    assert await events.handle(outcome) is True
    assert handler.calls == [str(outcome.event_id)] * 2
    assert len(await care_tasks(sessions)) == 1
    assert len(await inbox_rows(sessions)) == 1
    assert len(await outbox_rows(sessions)) == 1
    assert commits == [1]


@pytest.mark.parametrize("event_type", ["VitalsRecorded", "PatientScreened", "AlertEscalated"])
async def test_event_without_a_handler_is_ignored(sessions: Sessions, event_type: str) -> None:
    handler = Recorder()
    assert await consumer(sessions, handler, []).handle(event(event_type)) is False
    assert handler.calls == []
    assert await inbox_rows(sessions) == []


def test_consumer_subscribes_only_to_topics_carrying_handled_types(sessions: Sessions) -> None:
    async def noop(event: Envelope, uow: UnitOfWork) -> None:
        return None

    events = EventConsumer(
        group_id=GROUP,
        sessions=sessions,
        handlers={PatientScreened: noop, OutcomeRecorded: noop, SafetyConcernRaised: noop},
    )
    assert sorted(events.topics) == ["kap.intake.events.v1", "kap.monitoring.events.v1"]

    vitals_only = EventConsumer(group_id=GROUP, sessions=sessions, handlers={VitalsRecorded: noop})
    assert vitals_only.topics == ["kap.monitoring.vitals.v1"]


async def test_the_claim_is_built_once_and_each_claim_keeps_its_own_values(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim runs for every consumed event: its statement is built once per dialect
    and its values bound at each execution (building it cost more Python than running it)."""
    built: list[object] = []
    build = upserts.insert_on_conflict

    def counting(*args: object) -> object:
        built.append(args)
        return build(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(inbox, "insert_on_conflict", counting)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    assert [await claim_and_commit(sessions, GROUP, event_id) for event_id in ids] == [True] * 3
    assert await claim_and_commit(sessions, GROUP, ids[1]) is False
    assert len(built) <= 1  # once in this process (maybe by an earlier test), not per claim
    assert sorted(r.event_id for r in await inbox_rows(sessions)) == sorted(ids)
