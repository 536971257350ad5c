"""Monitoring's fail-closed gates end to end (issue 8): real Kafka, the services as
processes, one scenario driving every gate over HTTP. Each refusal is a 409 whose
code is the rule id and whose details say what would clear it; a refused dose or
discharge publishes nothing (checked on the topic at the end). The database does
not matter here: SQLite only."""

from __future__ import annotations

from typing import Any

import pytest
from monitoring_flows import ESKETAMINE, IV, STABLE, Window
from support import TopicReader

from kap_local.platform import Platform
from kap_shared.events import topics
from kap_shared.events.enums import Route

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]
ESK = Route.INTRANASAL_ESKETAMINE


def refused(response: Any, rule_id: str) -> dict[str, Any]:
    assert response.status_code == 409, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == rule_id, error
    assert error["details"]["blockers"][0]["rule_id"] == rule_id
    assert error["details"]["blockers"][0]["clear"]  # what would clear it
    return error


@pytest.mark.parametrize("platform", ["sqlite"], indirect=True)
async def test_every_gate_refuses_naming_its_rule_and_publishes_nothing(
    platform: Platform,
) -> None:
    accepted: dict[str, int] = {}  # DoseAdministered expected per session

    # -- a backdated dose: before check-in (3 h ago) minus the 5-minute tolerance.
    backdated = await Window(platform).open()
    error = refused(await backdated.try_dose(190, **IV), "MON-DOSE-2")
    assert "earliest_allowed" in error["details"]["blockers"][0]
    accepted[backdated.session_id] = 0

    # -- discharge with a missing reading (no SpO2), then with it.
    missing = await Window(platform).open()
    await missing.dose(61, **IV)
    no_spo2 = {k: v for k, v in STABLE.items() if k != "spo2"}
    await missing.vitals(**no_spo2)
    await missing.assess()
    error = refused(await missing.post("/discharge"), "KET-DIS-2")
    assert error["details"]["blockers"][0]["latest_at"] is None
    await missing.vitals(spo2=97)
    cleared = await missing.post("/discharge")
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["signed_by"] == missing.prescriber[0]
    accepted[missing.session_id] = 1

    # -- discharge with a stale reading (charted 31 minutes ago; maximum age 30).
    stale = await Window(platform).open()
    await stale.dose(61, **IV)
    await stale.vitals(31, **STABLE)
    await stale.assess()
    error = refused(await stale.post("/discharge"), "KET-DIS-3")
    assert "stale" in error["message"]
    accepted[stale.session_id] = 1

    # -- dissociation unresolved.
    dissociated = await Window(platform).open()
    await dissociated.dose(61, **IV)
    await dissociated.ready(dissociation="mild", cadss_total=9)
    error = refused(await dissociated.post("/discharge"), "SPR-GOAL")
    assert (await dissociated.state())["discharge"]["blockers"][0]["rule_id"] == "SPR-GOAL"
    accepted[dissociated.session_id] = 1

    # -- low blood pressure at discharge (hypotension: below 90 systolic).
    hypotensive = await Window(platform).open()
    await hypotensive.dose(61, **IV)
    await hypotensive.ready(bp_systolic=86, bp_diastolic=54)
    refused(await hypotensive.post("/discharge"), "KET-DIS-3")
    accepted[hypotensive.session_id] = 1

    # -- a dose during an open critical alert, then after the prescriber resolved it.
    alerting = await Window(platform, route=ESK).open()
    await alerting.first_device(10)
    [alert] = (await alerting.vitals(spo2=84))["alerts"]
    assert alert["rule_id"] == "KET-MON-SPO2"
    error = refused(await alerting.try_dose(0, **ESKETAMINE, device_number=2), "KET-MON-SPO2")
    assert alert["alert_id"] in error["details"]["blockers"][0]["clear"]
    resolved = await alerting.post(
        f"/alerts/{alert['alert_id']}/resolve", {"reason": "treated"}, as_=alerting.prescriber
    )
    assert resolved.status_code == 200, resolved.text
    await alerting.dose(0, **ESKETAMINE, device_number=2)
    accepted[alerting.session_id] = 2

    # -- a dose after an in-session PHQ-9 item 9 (MBC-1).
    concern = await Window(platform).open()
    measure = await concern.api.request(
        "POST",
        f"/patients/{concern.patient_id}/measures",
        as_=concern.nurse,
        json_body={
            "instrument": "PHQ-9",
            "items": [1, 1, 1, 1, 1, 1, 1, 1, 1],
            "session_id": concern.session_id,
        },
    )
    assert measure.status_code == 201, measure.text
    refused(await concern.try_dose(0, **IV), "MBC-1")
    accepted[concern.session_id] = 0

    # -- device spacing (SPR-ADM-2): device 2 three minutes after device 1.
    spacing = await Window(platform, route=ESK).open()
    await spacing.first_device(3)
    error = refused(await spacing.try_dose(0, **ESKETAMINE, device_number=2), "SPR-ADM-2")
    assert "next_allowed_at" in error["details"]["blockers"][0]
    accepted[spacing.session_id] = 1

    # -- 84 mg on a first session (SPR-ADM-3): the first induction dose is 56 mg.
    first_session = await Window(platform, route=ESK).open()
    await first_session.first_device(12)
    await first_session.dose(6, **ESKETAMINE, device_number=2)
    refused(await first_session.try_dose(0, **ESKETAMINE, device_number=3), "SPR-ADM-3")
    accepted[first_session.session_id] = 2

    # Nothing of the refusals reached the topic: only the accepted doses, one discharge.
    async with TopicReader(platform.bootstrap, topics.MONITORING_EVENTS) as events:

        def of(session_id: str, event_type: str) -> list[dict[str, Any]]:
            return [
                e
                for e in events.events
                if e["event_type"] == event_type and e["data"].get("session_id") == session_id
            ]

        await events.wait_for(
            lambda _: (
                bool(of(missing.session_id, "DischargeCleared"))
                and len(of(first_session.session_id, "DoseAdministered")) == 2
            ),
            timeout=60,
        )
        doses = {s: len(of(s, "DoseAdministered")) for s in accepted}
        assert doses == accepted
        discharged = [s for s in accepted if of(s, "DischargeCleared")]
        assert discharged == [missing.session_id]
        [given] = of(alerting.session_id, "DoseAdministered")[:1]
        assert given["data"]["concomitant_medications"] == []  # SPR-PRE-7, published
        assert given["data"]["charted_at"] is not None
        [ended] = of(missing.session_id, "DoseAdministered")
        assert ended["data"]["dosing_ended_at"] is not None  # KET-DIS-6 counts from it
