"""Issue 8 (MBC-1 at scheduling), end to end over HTTP and the real broker: a
patient with an active plan is re-screened at intake with PHQ-9 item 9 = 1; the
PatientScreened puts the same dosing hold at scheduling as an in-session
SafetyConcernRaised (409 SCH-HOLD-1, nothing stored), reaches the prescriber and the
therapist, and a prescriber clears it. Database-independent: SQLite only."""

from __future__ import annotations

from typing import Any

import pytest
from flows import apis
from scheduling_flows import Course, consent, create_site, plan_when, refer, scheduling, screen
from support import eventually

from kap_local.platform import Platform

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


@pytest.mark.parametrize("platform", ["sqlite"], indirect=True)
async def test_rescreen_with_item_9_holds_dosing_until_a_prescriber_clears_it(
    platform: Platform,
) -> None:
    site = await create_site(platform, "site-rescreen")
    patient_id = await refer(platform, site)
    route = {"route": "intranasal_esketamine"}  # no preparation sessions (KAP-1)
    assert (await screen(platform, site, patient_id, **route))["outcome"] == "eligible"
    await consent(platform, site, patient_id, "treatment")
    await consent(platform, site, patient_id, "rems_enrollment")
    plan = await plan_when(platform, site, patient_id, consents=("treatment", "rems_enrollment"))

    # Notifications learns the care team from TreatmentPlanCreated (scheduling's topic);
    # topics are not ordered relative to each other, so the re-screening (intake's topic)
    # is sent once the therapist has been told about the plan.
    async def plan_announced() -> bool:
        response = await apis(platform)["notifications"].request(
            "GET", "/inbox?limit=500", as_=site.as_(plan["therapist_id"])
        )
        return any(
            (n["source_event_type"], n["patient_id"]) == ("TreatmentPlanCreated", patient_id)
            for n in response.json()
        )

    await eventually(plan_announced, timeout=60)

    rescreened = await screen(platform, site, patient_id, **route, phq9=[2, 2, 2, 2, 2, 2, 2, 2, 1])
    assert (rescreened["outcome"], rescreened["reasons"]) == ("needs_review", ["MBC-1"])

    async def holds() -> list[dict[str, Any]]:
        response = await scheduling(platform).request(
            "GET", f"/patients/{patient_id}/plan", as_=site.coordinator_
        )
        found: list[dict[str, Any]] = response.json()["holds"]
        return found

    (hold,) = await eventually(holds, timeout=60)
    assert (hold["source"], hold["value"], hold["severity"]) == (
        "PHQ-9 item 9 (re-screening)",
        1.0,
        "critical",
    )

    course = Course(platform, site, plan)
    dosing = course.booking("dosing", site.at(0, "09:00", week=1), room_id=site.rooms[0])
    refused = await scheduling(platform).request(
        "POST", "/sessions", as_=site.coordinator_, json_body=dosing
    )
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "SCH-HOLD-1"
    assert "a prescriber must clear the hold" in error["message"]
    after = await scheduling(platform).request(
        "GET", f"/patients/{patient_id}/plan", as_=site.coordinator_
    )
    assert after.json()["sessions"] == []  # nothing stored

    # The urgent screening review reaches the plan's prescriber and its therapist.
    async def told(who: str) -> bool:
        response = await apis(platform)["notifications"].request(
            "GET", "/inbox?limit=500", as_=site.as_(who)
        )
        return any(
            (n["source_event_type"], n["patient_id"], n["priority"])
            == ("PatientScreened", patient_id, "urgent")
            for n in response.json()
        )

    await eventually(lambda: told(plan["therapist_id"]), timeout=60)
    await eventually(lambda: told(plan["prescriber_id"]), timeout=60)

    cleared = await scheduling(platform).request(
        "POST",
        f"/patients/{patient_id}/holds/{hold['hold_id']}/clear",
        as_=site.as_(plan["prescriber_id"]),
        json_body={"reason": "Risk assessment done; safety plan in place."},
    )
    assert cleared.status_code == 200, cleared.text
    booked = await scheduling(platform).request(
        "POST", "/sessions", as_=site.coordinator_, json_body=dosing
    )
    assert booked.status_code == 201, booked.text
