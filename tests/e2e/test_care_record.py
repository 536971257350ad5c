"""Issue 10's DONE-WHEN over the real broker (SQLite only: records is a read model and
nothing here depends on the database engine): an esketamine patient from referral
through preparation, two dosing sessions and their integration sessions, then

* the timeline at records is complete (every event of every topic about the patient,
  vitals summarised per session), ordered, and its reading -> alert -> notification ->
  acknowledgement chain links up;
* session 1's REMS Patient Monitoring Form is `ready` (once a coordinator completed the
  fields no event carries) with the right values, and submitting it stops its
  reminders and overdue notice;
* session 2, missing its 40-minute BP, lists `bp_40_min` as missing; its PmfReminder
  and PmfOverdue fire (tests/rules/records.json: deadline 135 s after the session's
  end) and reach the coordinator's inbox;
* the FHIR Bundle validates against R4 (fhir.resources R4B);
* `kap-records rebuild` gives the same timeline.

Every dosing fact comes from the real monitoring, driven over its HTTP API at the
chair: readings (with coded dissociation), doses (lot numbers, concomitant
medications, SPR-PRE-3/4/7 answered), the prescriber's stability assessment and the
discharge; monitoring publishes what records and notifications consume, including the
critical BP alert it raises itself. The doses are charted 125 minutes back so that
the session need not last two hours (SPR-MON-3): tests/rules/monitoring.json lets this
site chart them up to 130 minutes before check-in (MON-DOSE-2).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from flows import register_recipient
from monitoring_flows import ESKETAMINE, FIRST_DEVICE, STABLE
from scheduling_flows import Course, create_site, enrolled
from support import (
    CARE_RECORD_RESOURCE_TYPES,
    Api,
    TopicReader,
    eventually,
    validated_fhir_resources,
)

from kap_local.platform import Platform
from kap_shared.events.topics import (
    ALL_TOPICS,
    INTAKE_EVENTS,
    MONITORING_VITALS,
    RECORDS_EVENTS,
)

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

SITE = "site-records"  # tests/rules/records.json shortens its PMF deadline
FIRST_DEVICE_MINUTES_AGO = 125  # the rules' deadline counts from here
Event = dict[str, Any]


async def dosing_session(
    course: Course, starts_at: datetime, *, with_40_min_bp: bool, critical_bp: bool
) -> tuple[str, Event]:
    """Book and check in at scheduling; at monitoring: readings, two devices (125 and 120
    min ago), the prescriber's assessment, the discharge; complete at scheduling. Returns
    the session id and monitoring's discharge."""
    sid = await course.check_in("dosing", starts_at, room_id=course.site.rooms[0])
    chair = await course.bedside(sid).opened()
    first = FIRST_DEVICE_MINUTES_AGO
    # The pre-dose BP (SPR-PRE-4), with the first dissociation assessment.
    await chair.vitals(first + 5, **{**STABLE, "bp_systolic": 128, "bp_diastolic": 80})
    if with_40_min_bp:
        # The monitor's 40-minute BP, charted before the doses are: the first dose finds
        # SPR-MON-1's check done, so no reminder timer races the reading. At most 140/90
        # (a BP before any dose above it awaits a prescriber's decision, SPR-PRE-5).
        await chair.vitals(
            first - 41, bp_systolic=138, bp_diastolic=88, heart_rate=76, spo2=97, sedation_moaas=4
        )
    for device in (1, 2):
        answers = {**FIRST_DEVICE, "concomitant_medications": ["benzodiazepine"]}
        await chair.dose(
            first - 5 * (device - 1),
            **ESKETAMINE,
            device_number=device,
            lot_number=f"LOT-{device}A",
            **(answers if device == 1 else {}),
        )
    # Sedated (MOAA/S 4: observed, yet above KET-MON-SED-SOFT's 3, so no warning pages
    # the prescriber) and dissociated.
    await chair.vitals(
        first - 20, heart_rate=76, spo2=96, sedation_moaas=4, dissociation="moderate"
    )
    if critical_bp:  # two readings above 180/110 at monitoring's ingest: KET-MON-BP
        for minutes_ago, bp in ((3.0, (186, 114)), (2.5, (184, 112))):
            await chair.vitals(
                minutes_ago, bp_systolic=bp[0], bp_diastolic=bp[1], heart_rate=88, spo2=97
            )
    # Back in range (ends the alert's episode), every discharge criterion charted, and
    # the prescriber's assessment.
    await chair.ready(bp_systolic=132, bp_diastolic=84)
    response = await chair.post("/discharge")
    assert response.status_code == 200, response.text
    discharged: Event = response.json()
    await course.completed(sid)
    return sid, discharged


async def topic_events(platform: Platform, patient_id: str) -> list[Event]:
    events: list[Event] = []
    for topic in ALL_TOPICS:
        async with TopicReader(platform.bootstrap, topic) as reader:
            await reader.poll(2.0)
            await reader.poll(0.5)
            events += [{**e, "_topic": topic} for e in reader.of_patient(patient_id)]
    return events


async def retention_of(platform: Platform, *names: str) -> dict[str, str]:
    """`retention.ms` of each topic, as the broker reports it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=platform.bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
    finally:
        await admin.close()
    found = {}
    for response in responses:
        for resource in response.resources:
            for entry in resource[4]:
                if entry[0] == "retention.ms":
                    found[resource[3]] = entry[1]
    return found


def pmf_events(events: list[Event], event_type: str, pmf_id: str) -> list[Event]:
    return [e for e in events if e["event_type"] == event_type and e["data"]["pmf_id"] == pmf_id]


@pytest.mark.parametrize("platform", ["sqlite"], indirect=True)
async def test_care_record_timeline_pmf_fhir_and_rebuild(platform: Platform) -> None:
    secret = platform.jwt_secret
    records = Api(platform.url("records"), secret)
    paging = Api(platform.url("notifications"), secret)
    site = await create_site(platform, SITE)
    admin = ("admin-1", "admin", [SITE])
    coordinator, prescriber = site.coordinator_, site.as_(site.prescribers[0])
    await register_recipient(platform, site.coordinator, "coordinator", SITE, as_=admin)

    # -- referral to integration: two dosing sessions, each followed by integration --------
    plan = await enrolled(platform, site, route="intranasal_esketamine")
    patient_id = plan["patient_id"]
    room = site.rooms[0]
    course = Course(platform, site, plan)
    for day in (0, 1):
        await course.run_session("preparation", site.at(day, "09:00"), room_id=room)
    session_1, discharged_1 = await dosing_session(
        course, site.at(0, "09:00", week=1), with_40_min_bp=True, critical_bp=True
    )

    # -- session 1's form: complete what no event carries, check the values, submit -------
    async def form_of(session_id: str) -> Event | None:
        response = await records.request("GET", f"/pmf?site_id={SITE}", as_=coordinator)
        assert response.status_code == 200, response.text
        forms = [f for f in response.json()["forms"] if f["session_id"] == session_id]
        return forms[0] if forms and forms[0]["fields"]["discharge"] else None

    form_1 = await eventually(lambda: form_of(session_1), timeout=60)
    pmf_1 = form_1["pmf_id"]
    completion = {
        "patient_rems_id": "PT-448812",
        "setting_rems_id": "HCS-20931",
        "vitals_acceptable_pre_dose": True,
        "vitals_acceptable_pre_completion": True,
        "ready_to_leave_minutes": 110,
    }

    async def first_reminder_of_1() -> bool:
        return bool(pmf_events(await topic_events(platform, patient_id), "PmfReminder", pmf_1))

    await eventually(first_reminder_of_1, timeout=60, interval=1.0)  # 15 s after the session
    response = await records.request(
        "PATCH", f"/pmf/{pmf_1}", as_=coordinator, json_body=completion
    )
    assert response.status_code == 200, response.text
    form_1 = response.json()
    assert (form_1["status"], form_1["missing_fields"]) == ("ready", [])
    fields = form_1["fields"]
    assert fields["prescriber_id"] == plan["prescriber_id"]
    assert [(d["device_number"], d["lot_number"]) for d in fields["doses"]] == [
        (1, "LOT-1A"),
        (2, "LOT-2A"),
    ]
    assert fields["total_dose_mg"] == 56
    assert fields["concomitant_medications"]["benzodiazepine"] is True
    bps = [fields[k] for k in ("bp_pre_dose", "bp_40_min", "bp_pre_discharge")]
    assert [(bp["systolic"], bp["diastolic"]) for bp in bps] == [(128, 80), (138, 88), (132, 84)]
    assert fields["sedation"]["observed"] is True
    assert fields["dissociation"] == {"observed": True, "resolved": True, "assessments": 3}
    # Monitoring's own count from the first device to the discharge (SPR-MON-3: >= 120).
    assert fields["monitoring_minutes"] == discharged_1["observed_minutes"]
    assert fields["monitoring_minutes"] >= FIRST_DEVICE_MINUTES_AGO
    # Signed by the prescriber whose stability assessment cleared it (SPR-DIS-1).
    assert fields["discharge"]["signed_by"] == discharged_1["signed_by"] == plan["prescriber_id"]
    assert [a["rule_id"] for a in fields["adverse_events"]] == ["KET-MON-BP"]
    response = await records.request(
        "POST", f"/pmf/{pmf_1}/submit", as_=coordinator, json_body={"confirmation": "REMS-7712"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "submitted"

    # -- the critical alert reached the prescriber's inbox: acknowledge it ----------------
    async def alert_notification() -> Event | None:
        response = await paging.request("GET", "/inbox", as_=prescriber)
        assert response.status_code == 200, response.text
        found = [n for n in response.json() if n["source_event_type"] == "VitalsAlert"]
        return found[0] if found else None

    alerted = await eventually(alert_notification, timeout=60)
    response = await paging.request(
        "POST", f"/notifications/{alerted['notification_id']}/ack", as_=prescriber
    )
    assert response.status_code == 200, response.text

    await course.run_session("integration", site.at(1, "09:00", week=1), room_id=room)

    # -- session 2 misses its 40-minute BP ----------------------------------------------
    session_2, _ = await dosing_session(
        course, site.at(3, "09:00", week=1), with_40_min_bp=False, critical_bp=False
    )
    await course.run_session("integration", site.at(4, "09:00", week=1), room_id=room)
    form_2 = await eventually(lambda: form_of(session_2), timeout=60)
    pmf_2 = form_2["pmf_id"]
    assert form_2["status"] == "incomplete"
    assert "bp_40_min" in form_2["missing_fields"]
    assert form_2["fields"]["patient_rems_id"] == "PT-448812"  # carried over
    response = await records.request("POST", f"/pmf/{pmf_2}/submit", as_=coordinator)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "SPR-PMF-1"

    # -- its reminders and overdue notice fire and reach the coordinator -------------------
    async def overdue_2() -> list[Event] | None:
        events = await topic_events(platform, patient_id)
        return events if pmf_events(events, "PmfOverdue", pmf_2) else None

    events = await eventually(overdue_2, timeout=240, interval=2.0)
    reminders_2 = pmf_events(events, "PmfReminder", pmf_2)
    assert reminders_2
    assert all("bp_40_min" in e["data"]["missing_fields"] for e in reminders_2)
    (overdue,) = pmf_events(events, "PmfOverdue", pmf_2)
    assert "bp_40_min" in overdue["data"]["missing_fields"]
    # submitted within its first reminder: session 1's later reminders and overdue never came
    # (they were due before session 2's overdue)
    assert len(pmf_events(events, "PmfReminder", pmf_1)) == 1
    assert pmf_events(events, "PmfOverdue", pmf_1) == []
    assert len(pmf_events(events, "PmfSubmitted", pmf_1)) == 1

    async def coordinator_told() -> bool:
        response = await paging.request("GET", "/inbox", as_=coordinator)
        sources = {n["source_event_id"]: n for n in response.json()}
        return overdue["event_id"] in sources and reminders_2[0]["event_id"] in sources

    await eventually(coordinator_told, timeout=60)
    response = await paging.request("GET", "/inbox", as_=coordinator)
    told = {n["source_event_id"]: n for n in response.json()}
    assert told[overdue["event_id"]]["priority"] == "urgent"
    assert told[reminders_2[0]["event_id"]]["priority"] == "routine"

    # -- the timeline: complete, ordered, the alert chain linked ---------------------------
    events = await topic_events(platform, patient_id)
    snapshot_until = datetime.now(UTC).isoformat().replace("+00:00", "Z")

    async def timeline() -> Event:
        response = await records.request(
            "GET",
            f"/patients/{patient_id}/timeline?limit=1000&until={snapshot_until}",
            as_=prescriber,
        )
        assert response.status_code == 200, response.text
        body: Event = response.json()
        return body

    expected = {e["event_id"] for e in events if e["_topic"] != MONITORING_VITALS}
    readings = {e["event_id"] for e in events if e["_topic"] == MONITORING_VITALS}

    async def complete_timeline() -> Event | None:
        body = await timeline()
        entries = body["entries"]
        ids = {e["entry_id"] for e in entries if e["event_type"] != "VitalsSummary"}
        summarised = {i for e in entries for i in e["links"].get("event_ids", [])}
        return body if expected <= ids and readings <= summarised else None

    before = await eventually(complete_timeline, timeout=60)
    entries = before["entries"]
    keys = [(e["occurred_at"], e["entry_id"]) for e in entries]
    assert keys == sorted(keys)
    assert [e["session_id"] for e in entries if e["event_type"] == "VitalsSummary"] == [
        session_1,
        session_2,
    ]
    assert {e["phase"] for e in entries} == {"preparation", "dosing", "integration"}
    by_id = {e["entry_id"]: e for e in entries}
    (alert,) = [
        e for e in entries if e["event_type"] == "VitalsAlert" and "KET-MON-BP" in e["rule_ids"]
    ]
    vitals_1 = by_id[f"vitals:{session_1}"]
    assert alert["links"]["causation_id"] in vitals_1["links"]["event_ids"]
    sent = [
        e
        for e in entries
        if e["event_type"] == "NotificationSent" and e["links"]["causation_id"] == alert["entry_id"]
    ]
    acks = [
        e
        for e in entries
        if e["event_type"] == "AlertAcknowledged"
        and e["links"]["causation_id"] == alert["entry_id"]
    ]
    assert sent
    assert len(acks) == 1
    assert acks[0]["data"]["notification_id"] in {s["data"]["notification_id"] for s in sent}
    assert all("message" not in e["data"] for e in entries)

    # -- FHIR R4 ------------------------------------------------------------------------
    response = await records.request(
        "GET", f"/fhir/Patient/{patient_id}/$everything", as_=prescriber
    )
    assert response.status_code == 200, response.text
    bundle = response.json()
    kinds = {resource["resourceType"] for resource in validated_fhir_resources(bundle)}
    assert kinds >= CARE_RECORD_RESOURCE_TYPES

    # -- rebuild from the topics: the same timeline ----------------------------------------
    # (the topics the services created keep events forever; vitals expire after 7 days)
    assert await retention_of(platform, INTAKE_EVENTS, RECORDS_EVENTS, MONITORING_VITALS) == {
        INTAKE_EVENTS: "-1",
        RECORDS_EVENTS: "-1",
        MONITORING_VITALS: str(7 * 24 * 3600 * 1000),
    }
    service = platform["records"]
    rebuild = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kap_records",
        "rebuild",
        env=service.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(rebuild.communicate(), timeout=300)
    assert rebuild.returncode == 0, output.decode()
    assert "rebuilt from" in output.decode()
    after = await timeline()
    assert after == before
