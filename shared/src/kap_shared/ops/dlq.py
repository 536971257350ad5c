"""Dead-letter tooling: list, inspect and replay `<topic>.dlq`.

    kap-dlq list    kap.scheduling.events.v1 [--group G] [--error-type T] [--json]
    kap-dlq inspect kap.scheduling.events.v1 --partition 0 --offset 12
    kap-dlq replay  kap.scheduling.events.v1 [--group G] [--error-type T]
                    [--partition P] [--from-offset A] [--to-offset B] [--dry-run]

(`python -m kap_shared.ops.dlq ...` is the same.) The topic may be named with
or without its `.dlq` suffix. Connection settings come from the environment
like the services' (`KAFKA_BOOTSTRAP_SERVERS`, `KAFKA_SECURITY_PROTOCOL`,
`KAFKA_SASL_MECHANISM`, `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD`,
`KAFKA_SSL_CAFILE`); `--bootstrap-servers` overrides the first.

The tool reads outside any consumer group and commits nothing, so listing is
free and a dead letter stays on the `.dlq` topic after it was replayed (until
retention removes it).

Replay publishes each selected dead letter back to its original topic
(`x-dlq-original-topic`) with the same key (so the same partition and per-patient
order) and the same value, and the original headers minus every `x-dlq-*` one,
plus `x-dlq-replayed-from: <dlq topic>:<partition>:<offset>`. The event_id in
the value is unchanged, so every consumer group that already processed the
event skips it through its inbox; only the group that dead-lettered it (and
never recorded it) processes it now. Replaying twice is therefore harmless.
Messages that failed because they are malformed (ValidationError, JSON errors)
will fail again: filter by `--error-type` and fix the producer instead.

Payloads carry no PHI by contract (CONTRACT section 1), so printing them is allowed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiokafka import TopicPartition

from ..events.topics import dead_letter_topic
from ..messaging.broker import (
    DLQ_ATTEMPTS,
    DLQ_ERROR,
    DLQ_ERROR_TYPE,
    DLQ_GROUP,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_TOPIC,
)
from ..settings import KafkaSettings
from .kafka import partitions_of, reader, writer

DLQ_SUFFIX = ".dlq"
DLQ_HEADER_PREFIX = "x-dlq-"
REPLAYED_FROM = "x-dlq-replayed-from"

_Value = TypeVar("_Value")


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def dlq_name(topic: str) -> str:
    """`kap.x.events.v1` or `kap.x.events.v1.dlq` -> `kap.x.events.v1.dlq`."""
    return topic if topic.endswith(DLQ_SUFFIX) else dead_letter_topic(topic)


def _text(value: str | None) -> str | None:
    return value


def _whole_number(value: str | None) -> int | None:
    return int(value) if value and value.lstrip("-").isdigit() else None


class _Header(Generic[_Value]):
    """A dead letter's header, read as `parse` makes it: `error = _Header(DLQ_ERROR, _text)`."""

    def __init__(self, name: str, parse: Callable[[str | None], _Value]) -> None:
        self.name, self.parse = name, parse

    def __get__(self, letter: DeadLetter, owner: type[DeadLetter]) -> _Value:
        return self.parse(letter.header(self.name))


@dataclass(frozen=True)
class DeadLetter:
    """One record on a dead-letter topic, with the provenance the middleware wrote."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", errors="replace")
        return None

    # The provenance the middleware wrote, one header each (None when missing; a
    # partition or offset that is not a whole number reads as None too).
    consumer_group = _Header(DLQ_GROUP, _text)
    error_type = _Header(DLQ_ERROR_TYPE, _text)
    error = _Header(DLQ_ERROR, _text)
    attempts = _Header(DLQ_ATTEMPTS, _text)
    original_partition = _Header(DLQ_PARTITION, _whole_number)
    original_offset = _Header(DLQ_OFFSET, _whole_number)

    @property
    def original_topic(self) -> str:
        return self.header(DLQ_TOPIC) or self.topic.removesuffix(DLQ_SUFFIX)

    @property
    def key_text(self) -> str:
        return "" if self.key is None else self.key.decode("utf-8", errors="replace")

    @property
    def reference(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    def age_seconds(self, now: float | None = None) -> float:
        return max(0.0, (now if now is not None else time.time()) - self.timestamp_ms / 1000)

    def payload(self) -> Any:
        """The value as JSON when it parses, else the text (it may be why it was dead-lettered)."""
        try:
            return json.loads(self.value)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return self.value.decode("utf-8", errors="replace")

    def replay_headers(self) -> list[tuple[str, bytes]]:
        """The original headers minus x-dlq-*, plus where the replay came from."""
        kept = [(k, v) for k, v in self.headers if not k.startswith(DLQ_HEADER_PREFIX)]
        kept.append((REPLAYED_FROM, self.reference.encode()))
        return kept

    def summary(self, now: float | None = None) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "consumer_group": self.consumer_group,
            "error_type": self.error_type,
            "error": self.error,
            "original_topic": self.original_topic,
            "original_partition": self.original_partition,
            "original_offset": self.original_offset,
            "key": self.key_text,
            "age_seconds": round(self.age_seconds(now), 1),
        }


@dataclass(frozen=True)
class Selection:
    """Which dead letters to act on; every criterion given must match."""

    consumer_group: str | None = None
    error_type: str | None = None
    partition: int | None = None
    from_offset: int | None = None
    to_offset: int | None = None  # inclusive

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (self.consumer_group is None or letter.consumer_group == self.consumer_group)
            and (self.error_type is None or letter.error_type == self.error_type)
            and (self.partition is None or letter.partition == self.partition)
            and (self.from_offset is None or letter.offset >= self.from_offset)
            and (self.to_offset is None or letter.offset <= self.to_offset)
        )


class NoSuchTopic(LookupError):
    pass


async def read_dead_letters(
    settings: KafkaSettings,
    topic: str,
    *,
    selection: Selection = Selection(),
    timeout_seconds: float = 30.0,
) -> list[DeadLetter]:
    """Every record currently on `<topic>.dlq` that matches, in (partition, offset) order."""
    name = dlq_name(topic)
    partitions = await partitions_of(settings, name)
    if partitions is None:
        raise NoSuchTopic(name)
    if selection.partition is not None:
        partitions = [p for p in partitions if p == selection.partition]
    assigned = [TopicPartition(name, p) for p in partitions]
    if not assigned:
        return []
    consumer = reader(settings, client_id="kap-dlq")
    await consumer.start()
    try:
        consumer.assign(assigned)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(assigned)
        for tp in assigned:
            start = max(selection.from_offset or 0, 0)
            if start:
                consumer.seek(tp, start)
            else:
                await consumer.seek_to_beginning(tp)
        letters: list[DeadLetter] = []
        deadline = time.monotonic() + timeout_seconds
        pending = {tp for tp in assigned if ends[tp] > 0}
        while pending:
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
            if not pending:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {name} took longer than {timeout_seconds}s")
            batches = await consumer.getmany(*pending, timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        continue
                    letter = DeadLetter(
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        timestamp_ms=record.timestamp,
                        key=record.key,
                        value=record.value or b"",
                        headers=tuple((k, v or b"") for k, v in record.headers),
                    )
                    if selection.matches(letter):
                        letters.append(letter)
        return sorted(letters, key=lambda d: (d.partition, d.offset))
    finally:
        await consumer.stop()


async def find_dead_letter(
    settings: KafkaSettings, topic: str, *, partition: int, offset: int
) -> DeadLetter | None:
    letters = await read_dead_letters(
        settings,
        topic,
        selection=Selection(partition=partition, from_offset=offset, to_offset=offset),
    )
    return letters[0] if letters else None


@dataclass
class ReplayResult:
    replayed: list[tuple[DeadLetter, str, int, int]] = field(default_factory=list)
    """(dead letter, target topic, target partition, target offset)"""
    dry_run: bool = False


async def replay(
    settings: KafkaSettings,
    topic: str,
    *,
    selection: Selection = Selection(),
    dry_run: bool = False,
) -> ReplayResult:
    """Publish the selected dead letters back to their original topics, in offset order."""
    letters = await read_dead_letters(settings, topic, selection=selection)
    result = ReplayResult(dry_run=dry_run)
    if dry_run or not letters:
        result.replayed = [(d, d.original_topic, -1, -1) for d in letters]
        return result
    producer = writer(settings, client_id="kap-dlq-replay")
    await producer.start()
    try:
        for letter in letters:
            metadata = await producer.send_and_wait(
                letter.original_topic,
                letter.value,
                key=letter.key,
                headers=letter.replay_headers(),
            )
            result.replayed.append(
                (letter, letter.original_topic, metadata.partition, metadata.offset)
            )
    finally:
        await producer.stop()
    return result


# -- presentation -----------------------------------------------------------------------


def format_age(seconds: float) -> str:
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _clip(text: str | None, width: int) -> str:
    text = (text or "-").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "~"


def render_table(letters: Sequence[DeadLetter], now: float | None = None) -> str:
    header = (
        "TOPIC",
        "PART",
        "OFFSET",
        "GROUP",
        "ERROR TYPE",
        "ERROR",
        "ORIGINAL (topic:partition:offset)",
        "KEY",
        "AGE",
    )
    rows = [header]
    for d in letters:
        original = ":".join(
            (
                d.original_topic,
                "?" if d.original_partition is None else str(d.original_partition),
                "?" if d.original_offset is None else str(d.original_offset),
            )
        )
        rows.append(
            (
                d.topic,
                str(d.partition),
                str(d.offset),
                _clip(d.consumer_group, 16),
                _clip(d.error_type, 24),
                _clip(d.error, 48),
                original,
                _clip(d.key_text, 24),
                format_age(d.age_seconds(now)),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.append(f"{len(letters)} dead letter(s)")
    return "\n".join(line.rstrip() for line in lines)


def render_detail(letter: DeadLetter, now: float | None = None) -> str:
    lines = [
        f"dead letter {letter.reference} (age {format_age(letter.age_seconds(now))})",
        f"key: {letter.key_text}",
        "headers:",
    ]
    lines += [f"  {k}: {v.decode('utf-8', errors='replace')}" for k, v in letter.headers]
    payload = letter.payload()
    lines.append("payload:")
    body = (
        json.dumps(payload, indent=2, sort_keys=True) if not isinstance(payload, str) else payload
    )
    lines += [f"  {line}" for line in body.splitlines()]
    return "\n".join(lines)


# -- CLI ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kap-dlq",
        description="List, inspect and replay dead letters (<topic>.dlq).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Connection: KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, "
        "KAFKA_SSL_CAFILE (as for the services).",
    )
    parser.add_argument("--bootstrap-servers", help="overrides KAFKA_BOOTSTRAP_SERVERS")
    commands = parser.add_subparsers(dest="command", required=True)

    def with_selection(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("topic", help="the topic or its .dlq twin")
        sub.add_argument("--group", help="only dead letters of this consumer group")
        sub.add_argument("--error-type", help="only this error type, e.g. ValidationError")
        sub.add_argument("--partition", type=int, help="only this .dlq partition")
        sub.add_argument("--from-offset", type=int, help="first .dlq offset (inclusive)")
        sub.add_argument("--to-offset", type=int, help="last .dlq offset (inclusive)")

    listing = commands.add_parser("list", help="one line per dead letter")
    with_selection(listing)
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")

    inspect = commands.add_parser("inspect", help="headers and payload of one dead letter")
    inspect.add_argument("topic", help="the topic or its .dlq twin")
    inspect.add_argument("--partition", type=int, required=True)
    inspect.add_argument("--offset", type=int, required=True)

    again = commands.add_parser("replay", help="publish dead letters back to their topic")
    with_selection(again)
    again.add_argument("--dry-run", action="store_true", help="show what would be replayed")
    return parser


def _selection(args: argparse.Namespace) -> Selection:
    return Selection(
        consumer_group=args.group,
        error_type=args.error_type,
        partition=args.partition,
        from_offset=args.from_offset,
        to_offset=args.to_offset,
    )


async def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = KafkaSettings()
    if args.bootstrap_servers:
        settings = settings.model_copy(update={"bootstrap_servers": args.bootstrap_servers})
    try:
        if args.command == "list":
            letters = await read_dead_letters(settings, args.topic, selection=_selection(args))
            if args.json:
                for letter in letters:
                    _out(json.dumps(letter.summary(), sort_keys=True))
            else:
                _out(render_table(letters))
            return 0
        if args.command == "inspect":
            found = await find_dead_letter(
                settings, args.topic, partition=args.partition, offset=args.offset
            )
            if found is None:
                _err(f"no dead letter at {dlq_name(args.topic)}:{args.partition}:{args.offset}")
                return 1
            _out(render_detail(found))
            return 0
        result = await replay(
            settings, args.topic, selection=_selection(args), dry_run=args.dry_run
        )
        verb = "would replay" if result.dry_run else "replayed"
        for letter, target, partition, offset in result.replayed:
            where = target if result.dry_run else f"{target}:{partition}:{offset}"
            _out(f"{verb} {letter.reference} -> {where} (key {letter.key_text})")
        _out(f"{verb} {len(result.replayed)} dead letter(s)")
        if not result.dry_run and result.replayed:
            _out("event ids are unchanged: groups that already processed them skip them (inbox)")
        return 0
    except NoSuchTopic as exc:
        _err(f"no such topic: {exc}")
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(argv))


if __name__ == "__main__":
    sys.exit(main())
