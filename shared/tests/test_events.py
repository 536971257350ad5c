"""The event contract (CONTRACT sections 1-3) as implemented by `kap_shared.events`."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from kap_shared.events import (
    EVENT_TYPES,
    EVENTS_BY_TOPIC,
    OutcomeRecorded,
    PatientScreened,
    SafetyConcernRaised,
    VitalsRecorded,
    decode,
)
from kap_shared.events.catalog import UnknownTopicError
from kap_shared.events.envelope import envelope_fields
from kap_shared.events.monitoring import VITAL_METRICS
from kap_shared.events.topics import ALL_TOPICS, dead_letter_topic
from kap_shared.testing import CONTRACT_ENVELOPE_FIELDS as ENVELOPE_FIELDS

from .examples import (
    CONTRACT_TOPICS,
    CORRELATION,
    EXAMPLE_DATA,
    EXAMPLES,
    PATIENT,
    SITE,
    example,
    example_data,
)

CONTRACT_TOPIC_OF = {et: topic for topic, types in CONTRACT_TOPICS.items() for et in types}

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def error_paths(exc: ValidationError) -> list[str]:
    """Dotted locations of every error (a discriminated union prefixes the tag)."""
    return [".".join(str(part) for part in err["loc"]) for err in exc.errors()]


def names_field(exc: ValidationError, path: str) -> bool:
    return any(p == path or p.endswith("." + path) for p in error_paths(exc)) and path in str(exc)


# --- catalogue vs CONTRACT ---------------------------------------------------------------


def test_catalogue_has_exactly_the_contract_event_types() -> None:
    assert set(EVENT_TYPES) == set(CONTRACT_TOPIC_OF)
    assert set(EXAMPLES) == set(CONTRACT_TOPIC_OF), "examples.py must cover every event type"


@pytest.mark.parametrize("event_type", sorted(CONTRACT_TOPIC_OF))
def test_event_class_topic_matches_contract_section_2(event_type: str) -> None:
    assert EVENT_TYPES[event_type].topic == CONTRACT_TOPIC_OF[event_type]


def test_events_by_topic_matches_contract_section_2() -> None:
    assert set(EVENTS_BY_TOPIC) == set(CONTRACT_TOPICS) == set(ALL_TOPICS)
    for topic, classes in EVENTS_BY_TOPIC.items():
        names = [cls.model_fields["event_type"].default for cls in classes]
        assert sorted(names) == sorted(CONTRACT_TOPICS[topic]), topic
        assert all(cls.topic == topic for cls in classes)


@pytest.mark.parametrize("topic", sorted(CONTRACT_TOPICS))
def test_dead_letter_topic_is_the_dlq_twin(topic: str) -> None:
    assert dead_letter_topic(topic) == f"{topic}.dlq"


# --- round trip of every event type ------------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_type_round_trips_through_kafka_json(event_type: str) -> None:
    cls = EVENT_TYPES[event_type]
    event = cls.model_validate(example(event_type))

    raw = event.to_json()
    decoded = decode(cls.topic, raw)

    assert isinstance(raw, bytes)
    assert type(decoded) is cls
    assert decoded == event
    # The wire form is exactly the contract JSON: no renamed, dropped or added fields.
    assert json.loads(raw) == EXAMPLES[event_type]


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_decode_accepts_str_and_dict_as_well_as_bytes(event_type: str) -> None:
    cls = EVENT_TYPES[event_type]
    from_bytes = decode(cls.topic, json.dumps(EXAMPLES[event_type]).encode())
    assert decode(cls.topic, json.dumps(EXAMPLES[event_type])) == from_bytes
    assert decode(cls.topic, example(event_type)) == from_bytes


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_new_event_has_exactly_the_contract_envelope(event_type: str) -> None:
    cls = EVENT_TYPES[event_type]
    fields: dict[str, Any] = {
        "producer": "intake",
        "site_id": SITE,
        "patient_id": PATIENT,
        "correlation_id": CORRELATION,
        "data": EXAMPLE_DATA[event_type],
    }
    event = cls(**fields)  # event_id, event_type, schema_version, occurred_at: defaults
    wire = json.loads(event.to_json())

    assert set(wire) == ENVELOPE_FIELDS
    assert uuid.UUID(wire["event_id"]).version == 4
    assert wire["event_type"] == event_type
    assert wire["schema_version"] == 1
    assert RFC3339_UTC.match(wire["occurred_at"]), wire["occurred_at"]
    occurred = datetime.fromisoformat(wire["occurred_at"])
    assert abs(datetime.now(UTC) - occurred) < timedelta(seconds=5)
    assert (wire["producer"], wire["site_id"], wire["patient_id"]) == ("intake", SITE, PATIENT)
    assert wire["correlation_id"] == CORRELATION
    assert wire["causation_id"] is None
    assert isinstance(wire["data"], dict)


def test_each_new_event_gets_its_own_event_id() -> None:
    ids = {
        OutcomeRecorded(
            producer="monitoring",
            site_id=SITE,
            patient_id=PATIENT,
            correlation_id=CORRELATION,
            data=EXAMPLE_DATA["OutcomeRecorded"],
        ).event_id
        for _ in range(50)
    }
    assert len(ids) == 50


def test_occurred_at_in_another_timezone_is_serialized_as_utc_z() -> None:
    cest = timezone(timedelta(hours=2))
    event = OutcomeRecorded.model_validate(
        example("OutcomeRecorded", occurred_at=datetime(2025, 6, 1, 11, 30, tzinfo=cest))
    )
    wire = json.loads(event.to_json())
    assert wire["occurred_at"] == "2025-06-01T09:30:00Z"
    assert decode(event.topic, event.to_json()).occurred_at == event.occurred_at


def test_kafka_key_is_patient_id_utf8() -> None:
    event = VitalsRecorded.model_validate(example("VitalsRecorded", patient_id="pt-Ø42"))
    assert event.key == "pt-Ø42".encode()


def test_caused_by_keeps_patient_site_correlation_and_sets_causation() -> None:
    outcome = OutcomeRecorded.model_validate(example("OutcomeRecorded"))
    concern = SafetyConcernRaised.caused_by(
        outcome, producer="monitoring", data=EXAMPLE_DATA["SafetyConcernRaised"]
    )

    assert (concern.patient_id, concern.site_id, concern.correlation_id) == (
        outcome.patient_id,
        outcome.site_id,
        outcome.correlation_id,
    )
    assert concern.causation_id == str(outcome.event_id)
    assert concern.event_id != outcome.event_id
    assert concern.producer == "monitoring"
    assert concern.event_type == "SafetyConcernRaised"
    assert json.loads(concern.to_json())["causation_id"] == str(outcome.event_id)


def test_caused_by_accepts_overrides() -> None:
    outcome = OutcomeRecorded.model_validate(example("OutcomeRecorded"))
    when = datetime(2025, 3, 5, 10, 0, tzinfo=UTC)
    concern = SafetyConcernRaised.caused_by(
        outcome,
        producer="monitoring",
        data=EXAMPLE_DATA["SafetyConcernRaised"],
        occurred_at=when,
    )
    assert concern.occurred_at == when
    assert concern.causation_id == str(outcome.event_id)


@dataclass
class _Row:
    """A service's row the event is about (the envelope_fields Subject)."""

    site_id: str = SITE
    patient_id: str = PATIENT
    correlation_id: str | None = CORRELATION


def test_envelope_fields_take_patient_site_and_episode_from_the_subject() -> None:
    when = datetime(2025, 3, 5, 10, 0, tzinfo=UTC)
    fields = envelope_fields(_Row(), producer="records", causation_id="e-1", occurred_at=when)
    event = SafetyConcernRaised(**fields, data=EXAMPLE_DATA["SafetyConcernRaised"])
    assert (event.producer, event.site_id, event.patient_id) == ("records", SITE, PATIENT)
    assert (event.correlation_id, event.causation_id) == (CORRELATION, "e-1")
    assert event.occurred_at == when


def test_envelope_fields_fall_back_for_a_subject_without_an_episode() -> None:
    fields = envelope_fields(
        _Row(correlation_id=None), producer="notifications", correlation_fallback="e-9"
    )
    assert fields["correlation_id"] == "e-9"
    assert "occurred_at" not in fields  # the envelope's own default: now


# --- malformed messages name the field ---------------------------------------------------


def _with_data(event_type: str, **data: Any) -> dict[str, Any]:
    return example(event_type, data=example_data(event_type, **data))


def _without(event_type: str, field: str) -> dict[str, Any]:
    message = example(event_type)
    del message[field]
    return message


def _baseline(**overrides: Any) -> dict[str, Any]:
    return {**EXAMPLE_DATA["PatientScreened"]["baseline"], **overrides}


# Each case: (test id, event type, what is wrong, the field the error must name).
BAD_DATA: list[tuple[str, str, dict[str, Any], str]] = [
    ("bad-outcome-enum", "PatientScreened", {"outcome": "maybe"}, "data.outcome"),
    (
        "phq9-item9-out-of-range",
        "PatientScreened",
        {"baseline": _baseline(phq9_item9=4)},
        "data.baseline.phq9_item9",
    ),
    (
        "bad-contraindication-class",
        "PatientScreened",
        {"contraindications": [{"code": "x", "class": "maybe"}]},
        "data.contraindications.0.class",
    ),
    ("unknown-instrument", "OutcomeRecorded", {"instrument": "MADRS"}, "data.instrument"),
    ("esketamine-device-4", "DoseAdministered", {"device_number": 4}, "data.device_number"),
    ("bad-route", "DoseAdministered", {"route": "rectal"}, "data.route"),
    ("bad-severity", "VitalsAlert", {"severity": "urgent"}, "data.severity"),
    ("bad-phase", "SessionScheduled", {"phase": "maintenance"}, "data.phase"),
    ("spo2-over-100", "VitalsRecorded", {"spo2": 101}, "data.spo2"),
    (
        "escalation-without-recipients",
        "AlertEscalated",
        {"to_recipient_ids": []},
        "data.to_recipient_ids",
    ),
    ("bad-channel", "NotificationSent", {"channel": "fax"}, "data.channel"),
]
BAD_ENVELOPE: list[tuple[str, str, dict[str, Any], str]] = [
    ("empty-patient_id", "OutcomeRecorded", {"patient_id": ""}, "patient_id"),
    ("event_id-not-uuid", "OutcomeRecorded", {"event_id": "evt-1"}, "event_id"),
    (
        "occurred_at-without-timezone",
        "OutcomeRecorded",
        {"occurred_at": "2025-03-05T09:41:07"},
        "occurred_at",
    ),
    ("schema_version-zero", "OutcomeRecorded", {"schema_version": 0}, "schema_version"),
]
# (test id, event type, the envelope field left out)
MISSING: list[tuple[str, str, str]] = [
    ("missing-patient_id", "PatientScreened", "patient_id"),
    ("missing-patient_id-single-type-topic", "VitalsRecorded", "patient_id"),
    ("missing-data", "OutcomeRecorded", "data"),
]
MALFORMED: list[Any] = [
    *(pytest.param(t, _with_data(t, **data), path, id=i) for i, t, data, path in BAD_DATA),
    *(pytest.param(t, example(t, **fields), path, id=i) for i, t, fields, path in BAD_ENVELOPE),
    *(pytest.param(t, _without(t, field), field, id=i) for i, t, field in MISSING),
]


@pytest.mark.parametrize(("event_type", "message", "path"), MALFORMED)
def test_malformed_message_raises_validation_error_naming_the_field(
    event_type: str, message: dict[str, Any], path: str
) -> None:
    topic = EVENT_TYPES[event_type].topic
    with pytest.raises(ValidationError) as exc:
        decode(topic, json.dumps(message).encode())
    assert names_field(exc.value, path), error_paths(exc.value)


def test_session_scheduled_ending_before_it_starts_is_rejected() -> None:
    message = _with_data(
        "SessionScheduled", starts_at="2025-03-04T11:00:00Z", ends_at="2025-03-04T09:00:00Z"
    )
    with pytest.raises(ValidationError, match="ends_at must be after starts_at"):
        decode("kap.scheduling.events.v1", json.dumps(message))


@pytest.mark.parametrize("raw", [b"not json at all", b"\xff\xfe\x00", b"", b"[1, 2"])
def test_non_json_bytes_raise_validation_error(raw: bytes) -> None:
    with pytest.raises(ValidationError) as exc:
        decode("kap.intake.events.v1", raw)
    assert exc.value.errors()[0]["type"] == "json_invalid"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_event_type_of_another_topic_is_rejected(event_type: str) -> None:
    home = EVENT_TYPES[event_type].topic
    raw = json.dumps(EXAMPLES[event_type])
    for topic in CONTRACT_TOPICS:
        if topic == home:
            continue
        with pytest.raises(ValidationError) as exc:
            decode(topic, raw)
        assert "event_type" in str(exc.value), topic


def test_unknown_event_type_is_rejected_naming_event_type() -> None:
    with pytest.raises(ValidationError) as exc:
        decode("kap.intake.events.v1", example("PatientReferred", event_type="PatientDeleted"))
    assert "event_type" in str(exc.value)
    assert "PatientDeleted" in str(exc.value)


def test_unknown_topic_is_a_lookup_error_not_a_silent_accept() -> None:
    with pytest.raises(UnknownTopicError):
        decode("kap.billing.events.v1", EXAMPLES["PatientReferred"])


def test_vitals_recorded_without_any_metric_is_rejected() -> None:
    data = {k: v for k, v in EXAMPLE_DATA["VitalsRecorded"].items() if k not in VITAL_METRICS}
    assert data["symptoms"], "symptoms alone are not a metric"
    with pytest.raises(ValidationError) as exc:
        decode("kap.monitoring.vitals.v1", example("VitalsRecorded", data=data))
    assert "at least one of" in str(exc.value)
    assert "data" in error_paths(exc.value)


@pytest.mark.parametrize("metric", VITAL_METRICS)
def test_vitals_recorded_with_a_single_metric_is_accepted(metric: str) -> None:
    full = EXAMPLE_DATA["VitalsRecorded"]
    data = {k: v for k, v in full.items() if k not in VITAL_METRICS or k == metric}
    event = decode("kap.monitoring.vitals.v1", example("VitalsRecorded", data=data))
    assert isinstance(event, VitalsRecorded)
    assert getattr(event.data, metric) == full[metric]
    assert all(getattr(event.data, m) is None for m in VITAL_METRICS if m != metric)


def test_vitals_reading_of_zero_sedation_is_a_metric_not_missing() -> None:
    # MOAA/S 0 (unresponsive) is the most urgent value there is; it must not read as "absent".
    data = {k: v for k, v in EXAMPLE_DATA["VitalsRecorded"].items() if k not in VITAL_METRICS}
    event = decode(
        "kap.monitoring.vitals.v1", example("VitalsRecorded", data={**data, "sedation_moaas": 0})
    )
    assert isinstance(event, VitalsRecorded)
    assert event.data.sedation_moaas == 0


# --- forward compatibility ---------------------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_unknown_extra_fields_are_ignored_for_forward_compatibility(event_type: str) -> None:
    cls = EVENT_TYPES[event_type]
    newer = example(event_type, trace_flags="01")
    newer["data"] = {**newer["data"], "added_in_v1_1": {"nested": [1, 2]}, "device_fw": "2.4"}

    decoded = decode(cls.topic, json.dumps(newer).encode())

    assert type(decoded) is cls
    assert decoded == decode(cls.topic, EXAMPLES[event_type])
    wire = json.loads(decoded.to_json())
    assert "added_in_v1_1" not in wire["data"]
    assert "trace_flags" not in wire


def test_optional_fields_may_be_omitted() -> None:
    data = example_data("PatientScreened")
    for optional in ("reviewed_by", "review_reason", "contraindications", "reasons"):
        del data[optional]
    del data["baseline"]["pcl5_total"]
    event = decode("kap.intake.events.v1", example("PatientScreened", data=data))
    assert isinstance(event, PatientScreened)
    assert event.data.reviewed_by is None
    assert event.data.baseline.pcl5_total is None
    assert event.data.contraindications == []


def test_events_are_immutable() -> None:
    event = OutcomeRecorded.model_validate(example("OutcomeRecorded"))
    with pytest.raises(ValidationError):
        event.patient_id = "pt-other"  # type: ignore[misc]
