"""Each topic's JSON Schema, generated from the shared pydantic models.

One document per topic: the discriminated union (on `event_type`) of the
topic's event types, exactly the `TypeAdapter` that `kap_shared.events.decode`
uses, so the released schema and the consumers' decode path cannot drift.

Mode: **validation**. The schema describes what a consumer *accepts*, which is
what compatibility is about: an old consumer must accept what a new producer
sends, and a new consumer must accept what is already on the topic (history,
replays from a dead-letter topic). In validation mode a field with a default
is not `required`; our producers still always send every field (the outbox
stores `model_dump(mode="json")`), so a missing optional field only happens
with a producer that is older than the field. Serialization mode would describe
what our own producers emit today, which says nothing about older messages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..events.catalog import EVENTS_BY_TOPIC, topic_adapter

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_SUFFIX = ".schema.json"


def topic_schema(topic: str) -> dict[str, Any]:
    """The JSON Schema of one topic's messages (Kafka record values)."""
    schema = topic_adapter(topic).json_schema(mode="validation")
    event_types = [cls.model_fields["event_type"].default for cls in EVENTS_BY_TOPIC[topic]]
    document: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"https://contracts.kap.invalid/{topic}{SCHEMA_SUFFIX}",
        "title": topic,
        "description": (
            f"Record values on Kafka topic {topic} (record key: patient_id, UTF-8). "
            "Generated from kap_shared.events; released copies live in contracts/."
        ),
        "x-kap-topic": topic,
        "x-kap-event-types": event_types,
    }
    # pydantic's title for a lone model would replace the topic title; keep ours.
    document.update({k: v for k, v in schema.items() if k not in ("title", "description")})
    return document


def current_schemas() -> dict[str, dict[str, Any]]:
    """Every topic's schema, generated from the models in this checkout."""
    return {topic: topic_schema(topic) for topic in EVENTS_BY_TOPIC}


def schema_path(directory: Path, topic: str) -> Path:
    return directory / f"{topic}{SCHEMA_SUFFIX}"


def dumps(schema: dict[str, Any]) -> str:
    """Stable text for committed files: sorted keys, two-space indent, final newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def load_released(directory: Path) -> dict[str, dict[str, Any]]:
    """The released schemas committed under `directory`, by topic."""
    released: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob(f"*{SCHEMA_SUFFIX}")):
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        topic = str(document.get("x-kap-topic") or path.name.removesuffix(SCHEMA_SUFFIX))
        released[topic] = document
    return released


def write_released(directory: Path, schemas: dict[str, dict[str, Any]]) -> list[Path]:
    """Write one file per topic; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for topic, schema in sorted(schemas.items()):
        path = schema_path(directory, topic)
        path.write_text(dumps(schema), encoding="utf-8")
        written.append(path)
    return written
