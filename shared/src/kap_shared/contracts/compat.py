"""Compare a topic's current schema with its released one and name what breaks.

The rule (CONTRACT: "payloads may gain optional fields; nothing may be renamed
or removed without a new topic version"), applied to the JSON Schemas of
`schemas.py` in both directions, because on Kafka both directions happen: an
old consumer reads what a new producer writes, and a new consumer reads what
is already on the topic (retention, rewinds, dead-letter replays).

Compatible (the check passes):
  * a new optional field (not required; consumers ignore unknown fields);
  * a new event type on the topic (additive): consumers are tolerant readers and
    skip, unvalidated, every type they have no handler for (`messaging.consumer`),
    so producer and consumers deploy in any order;
  * titles, descriptions, examples.

Breaking (the check fails; ship it on a new topic version `<topic>.v2`):
  * a field removed or renamed (a rename is a removal plus an addition);
  * a field's type changed, including nullability in either direction;
  * a new required field, or an optional field made required (old messages lack it);
  * a required field made optional (old consumers still require it);
  * a changed constraint (minimum, maxLength, format, pattern, ...), either way;
  * an enum value removed (history still holds it), and **an enum value added**:
    our consumers validate enums strictly (pydantic `StrEnum` / `Literal`), so
    an old consumer rejects the new value and dead-letters an event it *does*
    handle, e.g. a new `severity` on VitalsAlert would never reach notifications;
  * an event type removed from the topic (history and late producers still carry it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..events.topics import dead_letter_topic

# Keywords that narrow or widen the accepted values; any change to them is breaking.
CONSTRAINT_KEYWORDS = (
    "format",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)


class Change(StrEnum):
    # breaking
    TOPIC_REMOVED = "topic-removed"
    EVENT_TYPE_REMOVED = "event-type-removed"
    FIELD_REMOVED = "field-removed"
    FIELD_RENAMED = "field-renamed"
    TYPE_CHANGED = "type-changed"
    REQUIRED_FIELD_ADDED = "required-field-added"
    BECAME_REQUIRED = "became-required"
    BECAME_OPTIONAL = "became-optional"
    CONSTRAINT_CHANGED = "constraint-changed"
    ENUM_VALUE_REMOVED = "enum-value-removed"
    ENUM_VALUE_ADDED = "enum-value-added"
    CONST_CHANGED = "const-changed"
    # compatible
    TOPIC_ADDED = "topic-added"
    EVENT_TYPE_ADDED = "event-type-added"
    OPTIONAL_FIELD_ADDED = "optional-field-added"


BREAKING = frozenset(
    {
        Change.TOPIC_REMOVED,
        Change.EVENT_TYPE_REMOVED,
        Change.FIELD_REMOVED,
        Change.FIELD_RENAMED,
        Change.TYPE_CHANGED,
        Change.REQUIRED_FIELD_ADDED,
        Change.BECAME_REQUIRED,
        Change.BECAME_OPTIONAL,
        Change.CONSTRAINT_CHANGED,
        Change.ENUM_VALUE_REMOVED,
        Change.ENUM_VALUE_ADDED,
        Change.CONST_CHANGED,
    }
)


@dataclass(frozen=True)
class Finding:
    change: Change
    path: str
    message: str

    @property
    def breaking(self) -> bool:
        return self.change in BREAKING


@dataclass
class TopicReport:
    topic: str
    findings: list[Finding] = field(default_factory=list)
    changed: bool = False

    @property
    def breaking(self) -> list[Finding]:
        return [f for f in self.findings if f.breaking]

    @property
    def compatible(self) -> list[Finding]:
        return [f for f in self.findings if not f.breaking]

    @property
    def status(self) -> str:
        if self.breaking:
            return "BREAKING"
        if self.changed:
            return "compatible change, not yet released"
        return "unchanged"


@dataclass
class Report:
    topics: list[TopicReport]

    @property
    def breaking(self) -> bool:
        return any(t.breaking for t in self.topics)

    @property
    def unreleased(self) -> bool:
        return any(t.changed for t in self.topics)

    def render(self) -> str:
        lines: list[str] = []
        for topic in self.topics:
            lines.append(f"{topic.topic}: {topic.status}")
            for finding in topic.breaking:
                lines.append(f"  x {finding.path}: {finding.message} [{finding.change}]")
            for finding in topic.compatible:
                lines.append(f"  + {finding.path}: {finding.message} [{finding.change}]")
            if topic.breaking:
                lines.append(
                    f"  -> breaking for consumers of {topic.topic}: publish the new shape on "
                    f"{next_topic_version(topic.topic)} instead (dual-publish, move the "
                    "consumers, then retire the old topic; docs/release.md), or revert."
                )
        if self.breaking:
            lines.append("contracts: BREAKING changes found (see above)")
        elif self.unreleased:
            lines.append(
                "contracts: compatible; release them with "
                "`uv run python -m kap_shared.contracts release`"
            )
        else:
            lines.append("contracts: every topic matches its released schema")
        return "\n".join(lines)


def next_topic_version(topic: str) -> str:
    """`kap.intake.events.v1` -> `kap.intake.events.v2`."""
    base, _, version = topic.rpartition(".v")
    if base and version.isdigit():
        return f"{base}.v{int(version) + 1}"
    return f"{topic}.v2"


def compare_all(released: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]]) -> Report:
    topics: list[TopicReport] = []
    for topic in sorted(set(released) | set(current)):
        if topic not in current:
            report = TopicReport(topic, changed=True)
            report.findings.append(
                Finding(
                    Change.TOPIC_REMOVED,
                    topic,
                    "topic no longer generated; consumers and its dead letters "
                    f"({dead_letter_topic(topic)}) still need it",
                )
            )
            topics.append(report)
        elif topic not in released:
            report = TopicReport(topic, changed=True)
            report.findings.append(Finding(Change.TOPIC_ADDED, topic, "new topic"))
            topics.append(report)
        else:
            topics.append(compare_topic(topic, released[topic], current[topic]))
    return Report(topics)


def compare_topic(topic: str, released: dict[str, Any], current: dict[str, Any]) -> TopicReport:
    report = TopicReport(topic, changed=_strip_docs(released) != _strip_docs(current))
    old_events = _event_types(released)
    new_events = _event_types(current)
    for name in sorted(set(old_events) - set(new_events)):
        report.findings.append(
            Finding(
                Change.EVENT_TYPE_REMOVED,
                name,
                "event type removed from the topic (its history, replays and not yet "
                "upgraded producers still carry it)",
            )
        )
    for name in sorted(set(new_events) - set(old_events)):
        report.findings.append(
            Finding(
                Change.EVENT_TYPE_ADDED,
                name,
                "new event type (additive): consumers without a handler for it skip it, "
                "so the producer may deploy before or after them",
            )
        )
    for name in sorted(set(old_events) & set(new_events)):
        differ = _Differ(released, current)
        differ.compare(old_events[name], new_events[name], name)
        report.findings.extend(differ.findings)
    return report


# -- schema walking ---------------------------------------------------------------

_DOC_KEYWORDS = frozenset({"title", "description", "examples", "$comment"})


def _strip_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _strip_docs(v)
            for k, v in node.items()
            if k not in _DOC_KEYWORDS or not isinstance(v, str | list)
        }
    if isinstance(node, list):
        return [_strip_docs(v) for v in node]
    return node


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    seen: set[str] = set()
    while "$ref" in node:
        ref = str(node["$ref"])
        if ref in seen or not ref.startswith("#/"):
            raise ValueError(f"cannot resolve $ref {ref!r}")
        seen.add(ref)
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **siblings}
    return node


def _event_types(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Event type name -> its (resolved) object schema."""
    variants = document.get("oneOf") or document.get("anyOf") or [document]
    events: dict[str, dict[str, Any]] = {}
    for variant in variants:
        resolved = _resolve(document, variant)
        event_type = resolved.get("properties", {}).get("event_type", {})
        name = event_type.get("const")
        if name is None and len(event_type.get("enum", [])) == 1:
            name = event_type["enum"][0]
        if name is None:
            raise ValueError("a variant of the topic schema has no constant event_type")
        events[str(name)] = resolved
    return events


def _split_nullable(document: dict[str, Any], node: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(the non-null schema, whether null is accepted) for `X | None` fields."""
    node = _resolve(document, node)
    for key in ("anyOf", "oneOf"):
        branches = node.get(key)
        if isinstance(branches, list):
            non_null = [b for b in branches if b != {"type": "null"}]
            if len(non_null) < len(branches) and len(non_null) == 1:
                rest = {k: v for k, v in node.items() if k != key}
                return {**rest, **_resolve(document, non_null[0])}, True
    types = node.get("type")
    if isinstance(types, list) and "null" in types:
        remaining = [t for t in types if t != "null"]
        return {**node, "type": remaining[0] if len(remaining) == 1 else remaining}, True
    return node, False


def _kind(node: dict[str, Any]) -> str:
    if "const" in node:
        return f"const {node['const']!r}"
    if "enum" in node:
        return "enum"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            return key
    types = node.get("type")
    if isinstance(types, list):
        return "|".join(sorted(str(t) for t in types))
    if types is None and "properties" in node:
        return "object"
    return str(types) if types is not None else "any"


class _Differ:
    def __init__(self, old_doc: dict[str, Any], new_doc: dict[str, Any]) -> None:
        self.old_doc = old_doc
        self.new_doc = new_doc
        self.findings: list[Finding] = []
        self._visited: set[tuple[str, int, int]] = set()

    def add(self, change: Change, path: str, message: str) -> None:
        self.findings.append(Finding(change, path, message))

    def compare(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        key = (path, id(old), id(new))
        if key in self._visited:
            return
        self._visited.add(key)
        old, old_null = _split_nullable(self.old_doc, old)
        new, new_null = _split_nullable(self.new_doc, new)
        old_kind, new_kind = _kind(old), _kind(new)
        if old_kind.startswith("const") or new_kind.startswith("const"):
            if old.get("const") != new.get("const"):
                self.add(
                    Change.CONST_CHANGED,
                    path,
                    f"constant changed from {old.get('const')!r} to {new.get('const')!r}",
                )
            return
        if old_kind != new_kind:
            self.add(Change.TYPE_CHANGED, path, f"type changed from {old_kind} to {new_kind}")
            return
        if old_null != new_null:
            self.add(
                Change.TYPE_CHANGED,
                path,
                "may now be null (released consumers reject null)"
                if new_null
                else "no longer accepts null (messages already on the topic carry null)",
            )
        for keyword in CONSTRAINT_KEYWORDS:
            if old.get(keyword) != new.get(keyword):
                self.add(
                    Change.CONSTRAINT_CHANGED,
                    path,
                    f"{keyword} changed from {old.get(keyword)!r} to {new.get(keyword)!r}",
                )
        if old_kind == "enum":
            self._compare_enum(old, new, path)
        elif old_kind == "object":
            self._compare_object(old, new, path)
        elif old_kind == "array":
            self._compare_items(old, new, path)
        elif old_kind in ("anyOf", "oneOf", "allOf"):
            self._compare_branches(old, new, path, old_kind)

    def _compare_enum(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        old_values, new_values = list(old["enum"]), list(new["enum"])
        for value in old_values:
            if value not in new_values:
                self.add(
                    Change.ENUM_VALUE_REMOVED,
                    path,
                    f"enum value {value!r} removed (messages on the topic still carry it)",
                )
        for value in new_values:
            if value not in old_values:
                self.add(
                    Change.ENUM_VALUE_ADDED,
                    path,
                    f"enum value {value!r} added (released consumers validate enums strictly "
                    "and would dead-letter it)",
                )

    def _compare_object(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        old_props: dict[str, Any] = old.get("properties", {})
        new_props: dict[str, Any] = new.get("properties", {})
        old_required = set(old.get("required", []))
        new_required = set(new.get("required", []))
        removed = [name for name in old_props if name not in new_props]
        added = [name for name in new_props if name not in old_props]
        renamed_to: dict[str, str] = {}
        for name in removed:
            match = self._rename_candidate(old_props[name], new_props, added, renamed_to)
            if match is not None:
                renamed_to[name] = match
                self.add(
                    Change.FIELD_RENAMED,
                    f"{path}.{name}",
                    f"field renamed to {match!r}? (removed, and {match!r} of the same type "
                    "added): released consumers look for the old name",
                )
            else:
                self.add(
                    Change.FIELD_REMOVED,
                    f"{path}.{name}",
                    "field removed"
                    + (" (released consumers require it)" if name in old_required else ""),
                )
        for name in added:
            if name in new_required:
                self.add(
                    Change.REQUIRED_FIELD_ADDED,
                    f"{path}.{name}",
                    "new required field (messages already on the topic lack it); "
                    "make it optional with a default",
                )
            else:
                self.add(Change.OPTIONAL_FIELD_ADDED, f"{path}.{name}", "new optional field")
        for name in old_props:
            if name not in new_props:
                continue
            child = f"{path}.{name}"
            if name not in old_required and name in new_required:
                self.add(
                    Change.BECAME_REQUIRED,
                    child,
                    "optional field became required (older messages may lack it)",
                )
            elif name in old_required and name not in new_required:
                self.add(
                    Change.BECAME_OPTIONAL,
                    child,
                    "required field became optional (released consumers require it)",
                )
            self.compare(old_props[name], new_props[name], child)
        old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
        if isinstance(old_extra, dict) and isinstance(new_extra, dict):
            self.compare(old_extra, new_extra, f"{path}.*")
        elif old_extra != new_extra and not (
            old_extra in (None, True) and new_extra in (None, True)
        ):
            self.add(
                Change.CONSTRAINT_CHANGED,
                path,
                f"additionalProperties changed from {old_extra!r} to {new_extra!r}",
            )

    def _rename_candidate(
        self,
        old_field: dict[str, Any],
        new_props: dict[str, Any],
        added: list[str],
        taken: dict[str, str],
    ) -> str | None:
        old_node, _ = _split_nullable(self.old_doc, old_field)
        for candidate in added:
            if candidate in taken.values():
                continue
            new_node, _ = _split_nullable(self.new_doc, new_props[candidate])
            if _kind(old_node) == _kind(new_node):
                return candidate
        return None

    def _compare_items(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        old_items, new_items = old.get("items"), new.get("items")
        if isinstance(old_items, dict) and isinstance(new_items, dict):
            self.compare(old_items, new_items, f"{path}[]")
        elif old_items != new_items:
            self.add(Change.TYPE_CHANGED, f"{path}[]", "item schema changed")

    def _compare_branches(
        self, old: dict[str, Any], new: dict[str, Any], path: str, keyword: str
    ) -> None:
        old_branches, new_branches = old[keyword], new[keyword]
        if len(old_branches) != len(new_branches):
            self.add(
                Change.TYPE_CHANGED,
                path,
                f"{keyword} changed from {len(old_branches)} to {len(new_branches)} alternatives",
            )
            return
        for index, (a, b) in enumerate(zip(old_branches, new_branches, strict=True)):
            self.compare(a, b, f"{path}<{index}>")
