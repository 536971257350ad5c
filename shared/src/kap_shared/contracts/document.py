"""docs/contract.md: the contract the services implement, generated from the code.

Topics and the event types on each (`kap_shared.events.catalog`), the envelope and
every event's `data` fields with their types and optional marks (the pydantic
models' JSON Schemas), who publishes and who consumes each type and every HTTP path
(each service's app as its bootstrap builds it: its publishers, its consumer and its
OpenAPI), and where each service's rule defaults live. `make asyncapi` regenerates
it; `shared/tests/test_contract_doc.py` fails when the committed file is stale.
"""

from __future__ import annotations

import importlib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from ..events.catalog import EVENTS_BY_TOPIC
from ..events.envelope import Envelope
from ..events.topics import dead_letter_topic
from .services import SERVICES, built_app, subscribed_event_types

REGENERATE = "make asyncapi"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")

Schema = dict[str, Any]


@dataclass
class ServiceFacts:
    name: str
    publishes: list[str]
    consumes: list[str]
    paths: list[tuple[str, str, str, list[str]]]  # method, path, summary, statuses
    rules: list[tuple[str, type[BaseModel]]] = field(default_factory=list)


def service_facts(service: str) -> ServiceFacts:
    with built_app(service) as app:
        runtime = app.state.runtime
        openapi = app.openapi()
        consumes = [cls.model_fields["event_type"].default for cls in subscribed_event_types(app)]
        publishes = list(runtime.publishes)
    paths = [
        (method.upper(), path, str(op.get("summary", "")), sorted(op.get("responses", {})))
        for path, operations in sorted(openapi.get("paths", {}).items())
        for method, op in operations.items()
        if method in HTTP_METHODS
    ]
    return ServiceFacts(service, publishes, consumes, paths, rules_models(service))


def rules_models(service: str) -> list[tuple[str, type[BaseModel]]]:
    """`*Rules` models in `kap_<service>.domain.rules`: the rulebook defaults it applies."""
    try:
        module = importlib.import_module(f"kap_{service}.domain.rules")
    except ModuleNotFoundError:
        return []
    source = inspect.getsourcefile(module) or ""
    return [
        (source, cls)
        for name, cls in vars(module).items()
        if inspect.isclass(cls)
        and issubclass(cls, BaseModel)
        and cls.__module__ == module.__name__
        and name.endswith("Rules")
    ]


# -- JSON Schema -> a short type description ------------------------------------------------


def _constraints(node: Schema) -> str:
    words = {
        "minimum": "≥",
        "exclusiveMinimum": ">",
        "maximum": "≤",
        "exclusiveMaximum": "<",
        "minLength": "length ≥",
        "maxLength": "length ≤",
        "minItems": "items ≥",
        "maxItems": "items ≤",
    }
    found = [f"{word} {node[key]}" for key, word in words.items() if key in node]
    return f" ({', '.join(found)})" if found else ""


def type_of(node: Schema, named: dict[str, Schema], defs: dict[str, Schema]) -> str:
    """`string (date-time)`, `list[Route]`, `integer (≥ 0, ≤ 3)`; named shapes are
    collected into `named` so they are described once."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        named.setdefault(name, defs[name])
        return f"[`{name}`](#{name.lower()})"
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o != {"type": "null"}]
        return " or ".join(type_of(o, named, defs) for o in options)
    if "const" in node:
        return f'`"{node["const"]}"`'
    if "enum" in node:
        return " \\| ".join(f"`{value}`" for value in node["enum"])
    kind = node.get("type", "any")
    if kind == "array":
        items = node.get("items")
        inner = type_of(items, named, defs) if items else "any"
        return f"list[{inner}]{_constraints(node)}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map[string, {type_of(node['additionalProperties'], named, defs)}]"
    text = f"{kind} ({node['format']})" if "format" in node else str(kind)
    return text + _constraints(node)


def field_rows(schema: Schema, named: dict[str, Schema], defs: dict[str, Schema]) -> list[str]:
    required = set(schema.get("required", []))
    rows = []
    for name, node in schema.get("properties", {}).items():
        nullable = any(o == {"type": "null"} for o in node.get("anyOf", []))
        presence = "required" if name in required else "optional"
        if nullable and name in required:
            presence += ", may be null"
        if name not in required and node.get("default") not in (None, [], {}):
            presence += f", default `{json.dumps(node['default'])}`"
        description = " ".join(str(node.get("description", "")).split())
        rows.append(
            f"| `{name}` | {type_of(node, named, defs)} | {presence} | {_cell(description)} |"
        )
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(rows: list[str]) -> list[str]:
    return ["| field | type | presence | notes |", "|---|---|---|---|", *rows, ""]


def _doc_of(cls: object) -> str:
    doc = getattr(cls, "__dict__", {}).get("__doc__") or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


# -- the document ---------------------------------------------------------------------------


def render(root: Path, services: tuple[str, ...] = SERVICES) -> str:
    facts = [service_facts(service) for service in services]
    publishers: dict[str, list[str]] = {}
    consumers: dict[str, list[str]] = {}
    for fact in facts:
        for event_type in fact.publishes:
            publishers.setdefault(event_type, []).append(fact.name)
        for event_type in fact.consumes:
            consumers.setdefault(event_type, []).append(fact.name)

    out: list[str] = [
        "# The platform contract",
        "",
        "<!-- Generated by `python -m kap_shared.contracts doc` (`make asyncapi`) from",
        "     kap_shared.events and each service's bootstrap. Do not edit by hand. -->",
        "",
        "What the services promise each other and their clients, generated from the code",
        "that implements it: the event models in `shared/src/kap_shared/events/`, each",
        "service's app as its bootstrap builds it, and its rules models. The JSON Schema",
        "of each topic is released in [`contracts/`](../contracts/) (`make contracts-check`",
        "fails on a breaking change, see [release.md](release.md)), one example per event",
        "type is in [`contracts/examples/`](../contracts/examples/), and each service's",
        "AsyncAPI document is in [`docs/asyncapi/`](asyncapi/) (also served on its",
        "`/asyncapi`, next to its OpenAPI on `/docs`).",
        "",
        "## Topics",
        "",
        "Every record's key is the `patient_id`; headers `event_type`, `content-type:"
        " application/json` and the W3C `traceparent`. Every topic has a `<topic>.dlq`"
        " twin for messages a consumer cannot process.",
        "",
        "The platform's outboxes also set a `producer` header, the envelope's `producer`"
        " (a service's name). It is reserved for them: a producer outside the platform"
        " (a device gateway) must not set it. Monitoring's vitals consumer settles a"
        " `VitalsRecorded` with `producer: monitoring` without reading it, because its"
        " HTTP ingest stored that reading, with its rules applied, in the transaction that"
        " wrote the outbox row.",
        "",
        "| topic | dead letters | event types | published by | consumed by |",
        "|---|---|---|---|---|",
    ]
    for topic, classes in EVENTS_BY_TOPIC.items():
        names = [cls.model_fields["event_type"].default for cls in classes]
        by = sorted({p for n in names for p in publishers.get(n, [])})
        to = sorted({c for n in names for c in consumers.get(n, [])})
        out.append(
            f"| `{topic}` | `{dead_letter_topic(topic)}` | "
            + ", ".join(f"[{n}](#{n.lower()})" for n in names)
            + f" | {', '.join(by) or '-'} | {', '.join(to) or '-'} |"
        )

    envelope = Envelope.model_json_schema(by_alias=True, mode="validation")
    named: dict[str, Schema] = {}
    envelope_rows = [
        row
        for row in field_rows(envelope, named, envelope.get("$defs", {}))
        if not row.startswith("| `data`")
    ]
    out += [
        "",
        "## Envelope",
        "",
        "Every event on every topic (`kap_shared.events.envelope.Envelope`); `data` is the",
        "event type's own object below. Consumers ignore fields they do not know, so a",
        "producer may add optional fields without a new topic version. *required*: a",
        "consumer dead-letters an event without it; *optional*: may be absent or null.",
        "",
        *_table(envelope_rows),
        "## Event types",
        "",
    ]
    for topic, classes in EVENTS_BY_TOPIC.items():
        out += [f"### On `{topic}`", ""]
        for cls in classes:
            name = cls.model_fields["event_type"].default
            schema = cls.model_json_schema(by_alias=True, mode="validation")
            defs = schema.get("$defs", {})
            data_ref = schema["properties"]["data"]["$ref"].rsplit("/", 1)[-1]
            out += [f"#### {name}", ""]
            about = _doc_of(cls) or _doc_of(cls.model_fields["data"].annotation)
            if about:
                out += [about, ""]
            out += [
                f"Published by {', '.join(publishers.get(name, [])) or '-'}; consumed by "
                f"{', '.join(consumers.get(name, [])) or '-'}. `data`:",
                "",
                *_table(field_rows(defs[data_ref], named, defs)),
            ]

    out += ["## Shapes and vocabularies used above", ""]
    done: set[str] = set()
    while pending := sorted(set(named) - done):
        for name in pending:
            done.add(name)
            node = named[name]
            if "enum" not in node and not node.get("properties"):
                continue  # an empty base such as Payload: nothing to describe
            out += [f"#### {name}", ""]
            description = " ".join(str(node.get("description", "")).split())
            if description:
                out += [description, ""]
            if "enum" in node:
                out += ["One of: " + ", ".join(f"`{v}`" for v in node["enum"]) + ".", ""]
            else:
                out += _table(field_rows(node, named, node.get("$defs", {}) or _all_defs()))

    out += ["## HTTP", ""]
    out += [
        "Every path needs `Authorization: Bearer <JWT>` (`sub`, `role`, `sites`) except",
        "`/healthz`, `/readyz`, `/metrics`, `/asyncapi`, `/docs` and `/openapi.json`.",
        'Errors are `{"error": {"code", "message", "details"?}}`. Roles, rule ids and',
        "examples are in each service's README; request and response bodies in its",
        "OpenAPI (`/docs` on the running service).",
        "",
    ]
    for fact in facts:
        out += [
            f"### {fact.name}",
            "",
            f"[README](../services/{fact.name}/README.md) · [AsyncAPI](asyncapi/{fact.name}.json)",
            "",
            "| method | path | summary | statuses |",
            "|---|---|---|---|",
        ]
        out += [
            f"| {method} | `{path}` | {_cell(summary)} | {', '.join(statuses)} |"
            for method, path, summary, statuses in fact.paths
        ]
        out.append("")

    out += [
        "## Rules as configuration",
        "",
        "Each clinical or scheduling threshold has the clinical rulebook's default in the",
        "service's rules model below (the comment beside each field cites its rule id).",
        "`RULES_FILE` overrides any key for the whole network or per site:",
        '`{"network": {...}, "sites": {"site-x": {...}}}` (`kap_shared.rules.SiteRules`).',
        "",
        "| service | model | keys (default) |",
        "|---|---|---|",
    ]
    for fact in facts:
        for source, model in fact.rules:
            where = Path(source).resolve().relative_to(root.resolve()).as_posix()
            keys = ", ".join(
                f"`{key}` ({_default(info.get_default(call_default_factory=True))})"
                for key, info in model.model_fields.items()
            )
            out.append(f"| {fact.name} | [`{model.__name__}`](../{where}) | {keys} |")
    out.append("")
    return "\n".join(out)


def _default(value: Any) -> str:
    if isinstance(value, frozenset | set):
        value = sorted(value)
    return json.dumps(to_jsonable_python(value), ensure_ascii=False)


def _all_defs() -> dict[str, Schema]:
    defs: dict[str, Schema] = {}
    for classes in EVENTS_BY_TOPIC.values():
        for cls in classes:
            defs.update(cls.model_json_schema(by_alias=True, mode="validation").get("$defs", {}))
    return defs


def path(root: Path) -> Path:
    return root / "docs" / "contract.md"


def write(root: Path) -> Path:
    target = path(root)
    target.write_text(render(root), encoding="utf-8")
    return target


def stale(root: Path) -> bool:
    target = path(root)
    return not target.exists() or target.read_text(encoding="utf-8") != render(root)
