"""Producer example payloads, one file per event type: contracts/examples/<EventType>.json.

Each example is validated through the producer's pydantic model and written as
the model serializes it (`model_dump(mode="json")`), i.e. exactly the record
value a producer puts on Kafka. Consumer-side contract tests decode these
files through each consumer's decode path (tests/contract/).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from ..events.catalog import EVENT_TYPES

EXAMPLE_SUFFIX = ".json"


def canonical(event_type: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The record value the producer's model emits for this example."""
    model = EVENT_TYPES[event_type]
    dumped: dict[str, Any] = model.model_validate(raw).model_dump(mode="json")
    return dumped


def canonical_all(source: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    missing = sorted(set(EVENT_TYPES) - set(source))
    if missing:
        raise ValueError(f"no example for event types: {', '.join(missing)}")
    return {event_type: canonical(event_type, source[event_type]) for event_type in EVENT_TYPES}


def load_source(path: Path) -> dict[str, dict[str, Any]]:
    """`EXAMPLES` of a Python module given by path (shared/tests/examples.py)."""
    spec = importlib.util.spec_from_file_location("kap_contract_examples_source", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load examples from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    examples: dict[str, dict[str, Any]] = module.EXAMPLES
    return examples


def dumps(example: dict[str, Any]) -> str:
    return json.dumps(example, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(directory: Path, examples: dict[str, dict[str, Any]]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, example in sorted(examples.items()):
        path = directory / f"{event_type}{EXAMPLE_SUFFIX}"
        path.write_text(dumps(example), encoding="utf-8")
        written.append(path)
    return written


def load(directory: Path) -> dict[str, dict[str, Any]]:
    return {
        path.name.removesuffix(EXAMPLE_SUFFIX): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob(f"*{EXAMPLE_SUFFIX}"))
    }
