"""Monitoring's safety loop end to end: real Kafka, services as processes, on SQLite
and on PostgreSQL.

Sessions are opened the way scheduling announces them: TreatmentPlanCreated,
SessionScheduled and SessionCheckedIn produced onto kap.scheduling.events.v1 (valid
envelopes, producer "scheduling"; tests/monitoring_flows.py). Everything else goes
through monitoring's HTTP API and its topics.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from flows import Clinic, apis, refer_and_screen, unique
from monitoring_flows import ESKETAMINE, IV, MBC_1_CONCERN, Window
from support import TopicReader, eventually, produce

from kap_local.platform import Platform
from kap_shared.events import VitalsRecorded, topics
from kap_shared.events.enums import Route

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

# A site with its own rules in tests/rules/monitoring.json (KET-DIS-6: IV 30 minutes).
SHORT_IV_SITE = "site-e2e-monitoring-iv30"
VITALS_DUPLICATES = (
    'topic="kap.monitoring.vitals.v1"',
    'event_type="VitalsRecorded"',
    'outcome="duplicate"',
)


def of_session(reader: TopicReader, session_id: str, *event_types: str) -> list[dict[str, Any]]:
    return [
        e
        for e in reader.events
        if e.get("data", {}).get("session_id") == session_id
        and (not event_types or e["event_type"] in event_types)
    ]


async def vitals_duplicates(platform: Platform) -> float:
    api = apis(platform)["monitoring"]
    response = await api.request("GET", "/metrics", as_=("ops", "admin", ["*"]))
    total = 0.0
    for line in response.text.splitlines():
        if line.startswith("kap_events_consumed_total{") and all(
            label in line for label in VITALS_DUPLICATES
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def dosed_iv_window(platform: Platform) -> tuple[Window, float]:
    """An IV session dosed 30 minutes ago, and monitoring's count of duplicate readings
    before any of its own (its HTTP readings come back from the topic as duplicates)."""
    window = await Window(platform).open()
    await window.dose(30, **IV)
    return window, await vitals_duplicates(platform)


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_SPR_MON_3_discharge_at_119_minutes_is_409_and_at_120_is_cleared(
    platform: Platform,
) -> None:
    early = await Window(platform, route=Route.INTRANASAL_ESKETAMINE).open()
    await early.first_device(119)
    await early.ready()
    on_time = await Window(platform, route=Route.INTRANASAL_ESKETAMINE).open()
    await on_time.first_device(120)
    await on_time.dose(115, **ESKETAMINE, device_number=2)
    await on_time.ready()

    refused = await early.post("/discharge")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "SPR-MON-3"
    cleared = await on_time.post("/discharge")
    assert cleared.status_code == 200, cleared.text

    async with TopicReader(platform.bootstrap, topics.MONITORING_EVENTS) as events:
        await events.wait_for(
            lambda _: (
                bool(of_session(events, on_time.session_id, "DischargeCleared"))
                and bool(of_session(events, early.session_id, "ObservationDue"))
            ),
            timeout=60,
        )
        [discharge] = of_session(events, on_time.session_id, "DischargeCleared")
        assert discharge["patient_id"] == on_time.patient_id
        assert discharge["site_id"] == on_time.site_id
        first = parse(discharge["data"]["first_dose_at"])
        assert parse(discharge["data"]["cleared_at"]) - first >= timedelta(minutes=120)
        assert discharge["data"]["observed_minutes"] >= 120
        assert discharge["data"]["signed_by"] == on_time.prescriber[0]
        assert len(of_session(events, on_time.session_id, "DoseAdministered")) == 2
        assert of_session(events, early.session_id, "DischargeCleared") == []
        # The dose was charted 119 minutes late: the SPR-MON-1 40-minute BP check is
        # overdue at once (durable timer), and only the overdue notice is sent.
        [due] = of_session(events, early.session_id, "ObservationDue")
        assert due["data"]["kind"] == "bp_check_40min_overdue"
        assert due["data"]["rule_id"] == "SPR-MON-1"
    assert (await early.state())["status"] == "checked_in"
    assert (await on_time.state())["status"] == "discharged"


async def test_KET_MON_BP_twice_above_180_110_within_5_minutes_is_exactly_one_critical_alert(
    platform: Platform,
) -> None:
    window, duplicates_before = await dosed_iv_window(platform)

    first = await window.vitals(4, bp_systolic=185, bp_diastolic=115)
    assert first["alerts"] == []
    assert [o["kind"] for o in first["observations"]] == ["bp_recheck"]
    second = await window.vitals(1, bp_systolic=190, bp_diastolic=116)
    assert [a["rule_id"] for a in second["alerts"]] == ["KET-MON-BP"]
    third = await window.vitals(0, bp_systolic=195, bp_diastolic=118)
    assert third["alerts"] == []

    # The HTTP readings reach the vitals topic through the outbox and come back to
    # monitoring's own consumer, which recognises them by reading_id.
    await eventually(
        lambda: _at_least(vitals_duplicates(platform), duplicates_before + 3), timeout=60
    )
    async with (
        TopicReader(platform.bootstrap, topics.MONITORING_EVENTS) as events,
        TopicReader(platform.bootstrap, topics.MONITORING_VITALS) as vitals,
    ):
        await events.wait_for(
            lambda _: bool(of_session(events, window.session_id, "VitalsAlert")), timeout=60
        )
        await vitals.wait_for(lambda _: len(of_session(vitals, window.session_id)) >= 3, timeout=60)
        [alert] = of_session(events, window.session_id, "VitalsAlert")
        assert alert["data"]["rule_id"] == "KET-MON-BP"
        assert alert["data"]["severity"] == "critical"
        assert (alert["data"]["value"], alert["data"]["threshold"]) == (190.0, 180.0)
        recorded = of_session(vitals, window.session_id)
        assert len(recorded) == 3
        assert alert["causation_id"] == recorded[1]["event_id"]
    state = await window.state()
    assert state["reading_count"] == 3
    assert [a["rule_id"] for a in state["open_alerts"]] == ["KET-MON-BP"]
    blocked = await window.post("/discharge")
    assert blocked.status_code == 409
    assert blocked.json()["error"]["code"] in ("KET-DIS-6", "MON-DIS-2")


async def _at_least(value: Any, minimum: float) -> bool:
    return bool(await value >= minimum)


async def test_device_readings_on_the_topic_a_repeated_reading_id_has_no_second_effect(
    platform: Platform,
) -> None:
    window, duplicates_before = await dosed_iv_window(platform)
    low = window.device_reading(unique("rd"), spo2=85.0, heart_rate=96)
    retried = VitalsRecorded(  # the gateway's retry: a new event, the same reading
        **{**low.model_dump(exclude={"event_id", "data"}), "data": low.data}
    )
    normal = window.device_reading(unique("rd"), heart_rate=90)
    key = window.patient_id.encode()
    await produce(
        platform.bootstrap,
        topics.MONITORING_VITALS,
        [
            (key, low.to_json()),
            (key, retried.to_json()),
            (key, low.to_json()),
            (key, normal.to_json()),
        ],
    )

    await eventually(
        lambda: _at_least(vitals_duplicates(platform), duplicates_before + 2), timeout=60
    )
    state = await eventually(_reading_count(window, 2), timeout=60)
    assert state["latest"]["spo2"]["value"] == 85
    async with TopicReader(platform.bootstrap, topics.MONITORING_EVENTS) as events:
        await events.wait_for(
            lambda _: bool(of_session(events, window.session_id, "VitalsAlert")), timeout=60
        )
        [alert] = of_session(events, window.session_id, "VitalsAlert")
        assert alert["data"]["rule_id"] == "KET-MON-SPO2"
        assert alert["causation_id"] == str(low.event_id)
    assert (await window.state())["reading_count"] == 2


async def test_an_http_reading_is_applied_once_and_a_gateway_repeat_of_it_is_deduplicated(
    platform: Platform,
) -> None:
    """Monitoring's own reading comes back from the topic with its `producer` header and
    is settled without a second effect; a gateway's record with the same reading_id
    (another producer) is decoded and deduplicated by reading_id."""
    window, duplicates_before = await dosed_iv_window(platform)
    reading_id = unique("rd")
    posted = await window.vitals(0, reading_id=reading_id, spo2=85.0, heart_rate=96)
    assert [a["rule_id"] for a in posted["alerts"]] == ["KET-MON-SPO2"]
    await eventually(
        lambda: _at_least(vitals_duplicates(platform), duplicates_before + 1), timeout=60
    )
    gateway = window.device_reading(reading_id, spo2=85.0, heart_rate=96)
    await produce(
        platform.bootstrap,
        topics.MONITORING_VITALS,
        [(window.patient_id.encode(), gateway.to_json())],
    )
    await eventually(
        lambda: _at_least(vitals_duplicates(platform), duplicates_before + 2), timeout=60
    )
    async with (
        TopicReader(platform.bootstrap, topics.MONITORING_EVENTS) as events,
        TopicReader(platform.bootstrap, topics.MONITORING_VITALS) as vitals,
    ):
        await vitals.wait_for(lambda _: len(of_session(vitals, window.session_id)) >= 2, timeout=60)
        producers = [h.get("producer") for _k, v, h in vitals.raw if _reading_id(v) == reading_id]
        assert len(producers) == 2
        assert set(producers) == {b"monitoring", None}  # the outbox's header; the gateway's none
        await events.wait_for(
            lambda _: bool(of_session(events, window.session_id, "VitalsAlert")), timeout=60
        )
        assert len(of_session(events, window.session_id, "VitalsAlert")) == 1
    state = await window.state()
    assert state["reading_count"] == 1
    assert [a["rule_id"] for a in state["open_alerts"]] == ["KET-MON-SPO2"]


def _reading_id(value: bytes) -> Any:
    """A record's reading_id; None for a record that is not a JSON event (other tests put
    poison records on the vitals topic, and the suite shares one broker)."""
    try:
        return json.loads(value).get("data", {}).get("reading_id")
    except (ValueError, AttributeError):
        return None


def _reading_count(window: Window, count: int) -> Any:
    async def check() -> dict[str, Any] | None:
        state = await window.state()
        return state if state["reading_count"] == count else None

    return check


async def test_a_reading_for_an_unknown_session_is_dead_lettered_and_the_next_is_processed(
    platform: Platform,
) -> None:
    window = await Window(platform).open()
    stray = Window(platform, site_id=window.site_id)
    stray.patient_id = window.patient_id  # same key: same partition as the good reading
    unknown = stray.device_reading(unique("rd"), heart_rate=80)
    good = window.device_reading(unique("rd"), heart_rate=81)
    key = window.patient_id.encode()
    await produce(
        platform.bootstrap,
        topics.MONITORING_VITALS,
        [(key, unknown.to_json()), (key, b"\x00not json"), (key, good.to_json())],
    )

    await eventually(_reading_count(window, 1), timeout=60)
    async with TopicReader(
        platform.bootstrap, topics.dead_letter_topic(topics.MONITORING_VITALS)
    ) as dlq:

        def mine(group: bytes) -> list[tuple[bytes, dict[str, bytes]]]:
            return [
                (v, h) for k, v, h in dlq.raw if k == key and h.get("x-dlq-consumer-group") == group
            ]

        # records' consumer group dead-letters the unparsable message too (its own entry)
        expected = {unknown.to_json(), b"\x00not json"}
        await dlq.wait_for(
            lambda _: (
                expected <= {v for v, _h in mine(b"monitoring-vitals")}
                and b"\x00not json" in {v for v, _h in mine(b"records")}
            ),
            timeout=60,
        )
        by_value = dict(mine(b"monitoring-vitals"))
        headers = by_value[unknown.to_json()]
        assert headers["x-dlq-error-type"] == b"PermanentError"
        assert stray.session_id.encode() in headers["x-dlq-error"]
        assert headers["x-dlq-original-topic"] == topics.MONITORING_VITALS.encode()
        assert headers["x-dlq-original-offset"].isdigit()
        assert by_value[b"\x00not json"]["x-dlq-error-type"] == b"JSONDecodeError"


async def test_MBC_1_PHQ9_item_9_raises_a_safety_concern_and_an_outcome_against_baseline(
    platform: Platform,
) -> None:
    # Intake's real referral and screening (PatientScreened carries the baseline);
    # monitoring needs no clinic directory for this.
    clinic = Clinic(unique("site"), unique("dr"), unique("th"), unique("rn"))
    patient_id = await refer_and_screen(platform, clinic)  # baseline PHQ-9 total 16
    monitoring = apis(platform)["monitoring"]
    answers = {"instrument": "PHQ-9", "items": [1, 1, 1, 1, 1, 1, 1, 0, 1]}

    async def recorded() -> dict[str, Any] | None:
        response = await monitoring.request(
            "POST",
            f"/patients/{patient_id}/measures",
            as_=clinic.as_("therapist"),
            json_body=answers,
        )
        if response.status_code == 404:
            return None  # the screening baseline has not reached monitoring yet
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    measure = await eventually(recorded, timeout=60)
    assert (measure["total"], measure["baseline_total"], measure["safety_concern"]) == (
        8,
        16,
        "critical",
    )
    assert measure["response"] is True  # 16 -> 8 is a 50 % drop (MBC-3)
    async with TopicReader(platform.bootstrap, topics.MONITORING_EVENTS) as events:
        await events.wait_for(
            lambda _: any(
                e["event_type"] == "SafetyConcernRaised" for e in events.of_patient(patient_id)
            ),
            timeout=60,
        )
        mine = events.of_patient(patient_id)
        [outcome] = [e for e in mine if e["event_type"] == "OutcomeRecorded"]
        [concern] = [e for e in mine if e["event_type"] == "SafetyConcernRaised"]
        assert concern["data"] == MBC_1_CONCERN
        assert concern["causation_id"] == outcome["event_id"]
        assert outcome["data"]["baseline_total"] == 16
        assert concern["site_id"] == clinic.site_id


async def test_KET_DIS_6_minimum_observation_is_per_site_configuration(
    platform: Platform,
) -> None:
    short = await Window(platform, site_id=SHORT_IV_SITE).open()
    default = await Window(platform).open()
    for window in (short, default):
        await window.dose(31, **IV)
        await window.ready()
    assert (await short.post("/discharge")).status_code == 200
    refused = await default.post("/discharge")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "KET-DIS-6"
