"""Consumer-side contract tests: every event type a service subscribes to (its
`entrypoints/stream.py` HANDLERS) decodes, through the consumer's own decode
path, from the producer's released example (contracts/examples/<EventType>.json).

A producer that changes its payload has to change the example (it is generated
from its models); a consumer whose model can no longer read it fails here,
before anything ships.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kap_shared.contracts import examples, services
from kap_shared.contracts.schemas import schema_path
from kap_shared.events import EVENT_TYPES, Envelope, decode

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = ROOT / "contracts" / "examples"
CONSUMERS = services.SERVICES
REGENERATE = "uv run python -m kap_shared.contracts examples"


def subscriptions(service: str) -> list[type[Envelope]]:
    """The event classes the service's consumers handle, read from its built app
    (its entrypoints/stream.py handlers as wired by its bootstrap, and its batch
    consumers)."""
    try:
        stream = importlib.import_module(f"kap_{service}.entrypoints.stream")
    except ModuleNotFoundError:  # a service that consumes nothing (intake, today)
        return services.subscriptions(service)
    handlers: dict[type[Envelope], Any] | None = getattr(stream, "HANDLERS", None)
    if handlers is not None:
        # ... and what its batch consumers take (monitoring's readings) on top
        with services.built_app(service) as app:
            batched = {consumer.event_type for consumer in app.state.runtime.batch_consumers}
        return list(handlers) + [EVENT_TYPES[name] for name in sorted(batched)]
    return services.subscriptions(service)


CASES = [
    pytest.param(service, cls, id=f"{service}<-{cls.model_fields['event_type'].default}")
    for service in CONSUMERS
    for cls in subscriptions(service)
]


def test_subscriptions_match_what_the_built_app_consumes() -> None:
    """HANDLERS (when a service still declares it) is what bootstrap wires."""
    for service in CONSUMERS:
        assert set(subscriptions(service)) == set(services.subscriptions(service)), service


def producer_example(event_type: str) -> bytes:
    path = EXAMPLES_DIR / f"{event_type}.json"
    assert path.exists(), f"no producer example for {event_type}: run `{REGENERATE}`"
    return path.read_bytes()


def test_there_are_consumers_to_check() -> None:
    assert len(CASES) >= 5


@pytest.mark.parametrize(("service", "event_class"), CASES)
def test_consumer_decodes_the_producers_example(service: str, event_class: type[Envelope]) -> None:
    event_type = event_class.model_fields["event_type"].default
    raw = producer_example(event_type)
    # The consumer's decode path: kap_shared.events.decode with the topic it subscribes to.
    event = decode(event_class.topic, raw)
    assert isinstance(event, event_class), f"{service} got {type(event).__name__}"
    assert event.key == json.loads(raw)["patient_id"].encode()


@pytest.mark.parametrize(("service", "event_class"), CASES)
def test_producers_example_conforms_to_the_released_schema(
    service: str, event_class: type[Envelope]
) -> None:
    event_type = event_class.model_fields["event_type"].default
    schema = json.loads(schema_path(ROOT / "contracts", event_class.topic).read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(producer_example(event_type)))


def test_every_event_type_has_an_example() -> None:
    present = {path.stem for path in EXAMPLES_DIR.glob("*.json")}
    assert present == set(EVENT_TYPES), f"run `{REGENERATE}`"


def test_examples_are_current() -> None:
    """The committed examples are what the models emit for shared/tests/examples.py."""
    wanted = examples.canonical_all(examples.load_source(ROOT / "shared" / "tests" / "examples.py"))
    assert examples.load(EXAMPLES_DIR) == wanted, f"contracts/examples is stale: run `{REGENERATE}`"


def keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys(v)}
    return set()


def test_examples_carry_no_direct_identifiers() -> None:
    """CONTRACT section 1: events carry ids, codes, numbers and enums, never PHI."""
    forbidden = {"given_name", "family_name", "name", "date_of_birth", "email", "phone", "address"}
    for path in EXAMPLES_DIR.glob("*.json"):
        found = keys(json.loads(path.read_text())) & forbidden
        assert not found, f"{path.name} has PHI fields {sorted(found)}"
