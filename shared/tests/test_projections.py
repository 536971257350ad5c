"""kap_shared.projections: the columns a view of a booked session copies from
SessionScheduled, and upsert, which keeps a projected row when an event is seen again."""

from __future__ import annotations

from kap_shared.events import SessionScheduled, TreatmentPlanCreated
from kap_shared.projections import PlanColumns, booked_session, planned, upsert

from .dbsupport import CareTask, Sessions, care_tasks
from .examples import example


def test_booked_session_copies_the_session_fields_of_session_scheduled() -> None:
    message = example("SessionScheduled")
    columns = booked_session(SessionScheduled.model_validate(message))
    wire = message["data"]
    # The subject comes from the envelope, the session from `data` (phase as its code).
    assert (columns["patient_id"], columns["site_id"]) == (
        message["patient_id"],
        message["site_id"],
    )
    for name in ("session_id", "plan_id", "phase", "therapist_id", "prescriber_id"):
        assert columns[name] == wire[name], name
    assert columns["starts_at"].isoformat().startswith(wire["starts_at"][:19])
    assert set(columns) == {
        "session_id",
        "patient_id",
        "site_id",
        "plan_id",
        "phase",
        "starts_at",
        "ends_at",
        "therapist_id",
        "prescriber_id",
    }


async def test_upsert_creates_once_then_updates_only_the_values(sessions: Sessions) -> None:
    async with sessions() as session:
        created = await upsert(
            session, CareTask, 1, {"kind": "first"}, when_new={"id": 1, "patient_id": "pt-1"}
        )
        await session.commit()
    assert (created.id, created.patient_id, created.kind) == (1, "pt-1", "first")

    async with sessions() as session:
        # Seen again: `values` change; `when_new` is for a new row only.
        await upsert(
            session, CareTask, 1, {"kind": "again"}, when_new={"id": 1, "patient_id": "pt-2"}
        )
        await session.commit()
    assert [(t.id, t.patient_id, t.kind) for t in await care_tasks(sessions)] == [
        (1, "pt-1", "again")
    ]


def test_planned_copies_the_plan_columns_of_treatment_plan_created() -> None:
    message = example("TreatmentPlanCreated")
    values = planned(TreatmentPlanCreated.model_validate(message))
    wire = message["data"]
    assert set(values) == set(PlanColumns.model_fields)
    assert (values["patient_id"], values["site_id"]) == (
        message["patient_id"],
        message["site_id"],
    )
    for name in ("plan_id", "route", "protocol", "prescriber_id"):
        assert values[name] == wire[name], name
