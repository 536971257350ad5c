"""The fast VitalsRecorded decoder against the contract model it is generated from:
whatever the fast path accepts, the pydantic model accepts with the same values (so
the two cannot drift), and the model decides whatever the fast path leaves to it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Self

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError, model_validator

from kap_shared.events import VitalsRecorded, vitals_codec
from kap_shared.events.enums import Dissociation
from kap_shared.events.monitoring import VITAL_METRICS, VitalsRecordedData
from kap_shared.events.vitals_codec import UnsupportedField, decode, decode_fast

CONTRACT = vitals_codec.ADAPTER


def example(**data: Any) -> VitalsRecorded:
    values: dict[str, Any] = {
        "session_id": "ses-1",
        "reading_id": "r-1",
        "recorded_at": datetime(2026, 12, 1, 9, 30, 5, 123456, tzinfo=UTC),
        "bp_systolic": 128,
        "bp_diastolic": 84,
        "heart_rate": 72,
        "spo2": 97.5,
        "respiratory_rate": 14,
    }
    values.update(data)
    return VitalsRecorded(
        producer="gw-bed-7",
        site_id="site-1",
        patient_id="pt-1",
        correlation_id="gw-stream",
        data=VitalsRecordedData(**values),
    )


def plain(value: Any) -> Any:
    """Field values, recursively, from either a pydantic model or a msgspec Struct, with
    each datetime's offset kept beside it (equal instants in other zones differ)."""
    if isinstance(value, BaseModel):
        return {name: plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, msgspec.Struct):
        return {name: plain(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, datetime):
        return (value, value.utcoffset())
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def agree(raw: bytes) -> None:
    """The property: a fast accept is a contract accept with the same values."""
    fast = decode_fast(raw)
    try:
        model = CONTRACT.validate_json(raw)
    except ValidationError:
        assert fast is None, raw
        return
    if fast is not None:
        expected, found = plain(model), plain(fast)
        # A missing event_id / occurred_at is made up (uuid4, now) by each side alike.
        for name, field in VitalsRecorded.model_fields.items():
            if field.default_factory is not None and name not in json.loads(raw):
                expected.pop(name), found.pop(name)
        assert found == expected, raw


def test_the_generated_decoder_has_the_models_fields_at_every_level() -> None:
    fast = vitals_codec.FAST_VITALS
    assert fast.__struct_fields__ == tuple(VitalsRecorded.model_fields)
    data = fast.__annotations__["data"]
    assert data.__struct_fields__ == tuple(VitalsRecordedData.model_fields)


@pytest.mark.parametrize(
    "event",
    [
        example(),
        example(heart_rate=None, bp_systolic=None, bp_diastolic=None, respiratory_rate=None),
        example(
            sedation_moaas=0,
            symptoms=["chest_pain", "vision_change"],
            dissociation=Dissociation.MODERATE,
            cadss_total=12,
        ),
        example(recorded_at=datetime(2026, 12, 1, 9, 0, tzinfo=timezone(timedelta(hours=-5)))),
        example(spo2=100, bp_systolic=399, bp_diastolic=299, cadss_total=92),
    ],
)
def test_events_as_producers_write_them_take_the_fast_path_with_the_same_values(
    event: VitalsRecorded,
) -> None:
    raw = event.to_json()
    fast = decode_fast(raw)
    assert fast is not None
    assert plain(fast) == plain(CONTRACT.validate_json(raw))
    assert decode(raw) is not None


def mutated(change: dict[str, Any], where: str = "data") -> bytes:
    document = json.loads(example().to_json())
    target = document[where] if where else document
    for key, value in change.items():
        if value is ...:
            target.pop(key, None)
        else:
            target[key] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("raw", "fast"),
    [
        # what only the lax model accepts: the model decides, the same as before
        (mutated({"heart_rate": "72"}), False),
        (mutated({"heart_rate": 72.0}), False),
        (mutated({"recorded_at": "2026-12-01T09:30:05.1234567Z"}), False),  # truncated
        (mutated({"recorded_at": "2026-12-01T09:30:05.9999999Z"}), False),  # not rounded up
        (mutated({"recorded_at": "2026-12-01T09:30Z"}), False),
        (mutated({"event_id": "urn:uuid:0b4d8f4e-6a1b-4c39-9a51-2f1d0c8f7b10"}, ""), False),
        # what both refuse
        (mutated({"heart_rate": 0}), False),
        (mutated({"spo2": 100.5}), False),
        (mutated({"recorded_at": "2026-12-01T09:30:05"}), False),  # no zone
        (mutated({"recorded_at": "2026-12-01T24:00:00Z"}), False),
        (mutated({"recorded_at": "2026-12-01T23:59:60Z"}), False),
        (mutated({"dissociation": "Mild"}), False),
        (mutated({"reading_id": ...}), False),
        (mutated(dict.fromkeys(VITAL_METRICS)), False),  # not one metric
        (mutated({"patient_id": ""}, ""), False),
        (mutated({"event_type": "DoseAdministered"}, ""), False),
        (mutated({"schema_version": 0}, ""), False),
        (b"[]", False),
        (b"\x00not json", False),
        # unknown fields are ignored by both (a producer's additive change)
        (mutated({"pulse_quality": "good"}), True),
        (mutated({"gateway": {"id": 7}}, ""), True),
        # a repeated key: the last one counts in both
        (example().to_json()[:-2] + b',"heart_rate":91}}', True),
    ],
)
def test_edge_cases_agree_with_the_contract(raw: bytes, fast: bool) -> None:
    assert (decode_fast(raw) is not None) is fast
    agree(raw)


def test_what_the_fast_path_leaves_is_decided_by_the_model() -> None:
    assert decode(mutated({"heart_rate": "72"})).data.heart_rate == 72
    with pytest.raises(ValidationError, match=r"data\.heart_rate"):
        decode(mutated({"heart_rate": 0}))


# -- generated documents: the property over many shapes ---------------------------------------

TIMESTAMPS = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
    ).map(lambda d: d.isoformat()),
    st.from_regex(
        r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
        r"([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?\Z"
    ),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.text(max_size=30),
)
NUMBERS = st.one_of(
    st.none(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(alphabet="0123456789.e-", max_size=6),
)
STRINGS = st.one_of(st.text(max_size=12), st.none(), st.integers(), st.booleans())
DATA_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "bp_systolic": NUMBERS,
    "bp_diastolic": NUMBERS,
    "heart_rate": NUMBERS,
    "spo2": NUMBERS,
    "respiratory_rate": NUMBERS,
    "sedation_moaas": NUMBERS,
    "cadss_total": NUMBERS,
    "symptoms": st.one_of(st.lists(STRINGS, max_size=3), st.none(), st.text(max_size=5)),
    "dissociation": st.one_of(st.sampled_from([*Dissociation, "Mild", "", None]), STRINGS),
    "session_id": STRINGS,
    "reading_id": STRINGS,
    "recorded_at": TIMESTAMPS,
}
ENVELOPE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "event_id": st.one_of(
        st.uuids().map(str),
        st.uuids().map(lambda u: u.hex.upper()),
        st.uuids().map(lambda u: f"{{{u}}}"),
        STRINGS,
    ),
    "event_type": st.sampled_from(["VitalsRecorded", "vitalsrecorded", "DoseAdministered", 1]),
    "schema_version": NUMBERS,
    "occurred_at": TIMESTAMPS,
    "producer": STRINGS,
    "site_id": STRINGS,
    "patient_id": STRINGS,
    "correlation_id": STRINGS,
    "causation_id": STRINGS,
}


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """A valid event with a few of its fields replaced (or removed) by drawn values."""
    document = json.loads(example().to_json())
    for target, fields in ((document["data"], DATA_FIELDS), (document, ENVELOPE_FIELDS)):
        for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=3, unique=True)):
            if draw(st.integers(0, 9)) == 0:
                target.pop(name)
            else:
                target[name] = draw(fields[name])
    return json.dumps(document).encode()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_generated_documents_agree_with_the_contract(raw: bytes) -> None:
    agree(raw)


# -- the generator fails closed ----------------------------------------------------------------


def test_a_validator_the_fast_path_does_not_restate_fails_the_generation() -> None:
    class Guarded(BaseModel):
        heart_rate: int

        @model_validator(mode="after")
        def _plausible(self) -> Self:
            return self

    with pytest.raises(UnsupportedField, match="_plausible"):
        vitals_codec.struct_for(Guarded)


@pytest.mark.parametrize(
    "annotation",
    [dict[str, int], int | str, bool, datetime],
)
def test_a_type_the_generator_cannot_express_fails_the_generation(annotation: Any) -> None:
    model = type(
        "Widened", (BaseModel,), {"__annotations__": {"value": annotation}, "value": Field()}
    )
    with pytest.raises(UnsupportedField, match=r"Widened\.value"):
        vitals_codec.struct_for(model)


@settings(max_examples=300)
@given(st.lists(st.uuids(), max_size=20))
def test_event_ids_are_converted_as_str_would(ids: list[uuid.UUID]) -> None:
    assert vitals_codec.canonical_uuids(ids) == [str(u) for u in ids]
