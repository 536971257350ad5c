"""Helpers for tests that drive the platform over HTTP and read its topics
with a plain aiokafka consumer (no consumer group, nothing committed)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fhir.resources.R4B import get_fhir_model_class

from kap_local.platform import free_port
from kap_shared.auth import mint_token
from kap_shared.testing_ops import metric_value

Event = dict[str, Any]


@dataclass
class TopicReader:
    """Reads a topic from the beginning, remembering what it has seen.
    `async with TopicReader(...) as reader:` closes it on the way out (or call close())."""

    bootstrap: str
    topic: str

    def __post_init__(self) -> None:
        self.events: list[Event] = []
        self.raw: list[tuple[bytes | None, bytes, dict[str, bytes]]] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def _ensure(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None
            )
            await consumer.start()
            partitions = consumer.partitions_for_topic(self.topic)
            for _ in range(50):
                if partitions:
                    break
                await asyncio.sleep(0.1)
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(self.topic)
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions or [])]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            self._consumer = consumer
        return self._consumer

    async def poll(self, timeout: float = 0.5) -> None:
        consumer = await self._ensure()
        batches = await consumer.getmany(timeout_ms=int(timeout * 1000), max_records=5000)
        for records in batches.values():
            for record in records:
                headers = dict(record.headers or ())
                self.raw.append((record.key, record.value, headers))
                # Poison messages are kept in `raw` only.
                with contextlib.suppress(ValueError, TypeError):
                    self.events.append(json.loads(record.value))

    async def wait_for(
        self, predicate: Callable[[list[Event]], bool], timeout: float = 30.0
    ) -> list[Event]:
        deadline = time.monotonic() + timeout
        while True:
            await self.poll()
            if predicate(self.events):
                return self.events
            if time.monotonic() > deadline:
                types = [(e.get("event_type"), e.get("patient_id")) for e in self.events[-10:]]
                raise AssertionError(f"timed out on {self.topic}; last events: {types}")

    async def read_to_end(self, timeout: float = 30.0) -> None:
        """Read every partition up to its end offset as the broker has it now: whatever
        was published before this call has been read when it returns."""
        consumer = await self._ensure()
        ends = await consumer.end_offsets(list(consumer.assignment()))
        deadline = time.monotonic() + timeout
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            assert time.monotonic() < deadline, f"{self.topic}: not read to its end in time"
            await self.poll(0.2)

    def of_patient(self, patient_id: str) -> list[Event]:
        return [e for e in self.events if e.get("patient_id") == patient_id]

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def __aenter__(self) -> TopicReader:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def partition_counts(bootstrap: str, wanted: Iterable[str]) -> dict[str, int]:
    """How many partitions each of `wanted` has on the broker (0: no such topic)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(wanted))
    finally:
        await admin.close()
    return {topic["topic"]: len(topic["partitions"]) for topic in described}


async def produce(bootstrap: str, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value in values:
            await producer.send(
                topic, value, key=key, headers=[("content-type", b"application/json")]
            )
        await producer.flush()
    finally:
        await producer.stop()


class Api:
    """A tiny HTTP client per service, with a token per caller."""

    def __init__(self, base_url: str, secret: str) -> None:
        self.base_url = base_url
        self.secret = secret

    def headers(self, sub: str, role: str, sites: list[str]) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {mint_token(self.secret, sub=sub, role=role, sites=sites)}"
        }

    async def request(
        self, method: str, path: str, *, as_: tuple[str, str, list[str]], json_body: Any = None
    ) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30.0) as client:
            return await client.request(method, path, json=json_body, headers=self.headers(*as_))


async def eventually(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.3) -> Any:
    """Await `check()` until it returns a truthy value (or raise its last failure)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
        except AssertionError as exc:
            last = exc
        await asyncio.sleep(interval)
    if last:
        raise last
    raise AssertionError("condition not met in time")


async def outbox_backlog(base_url: str) -> float | None:
    """A service's unsent outbox rows, as its /metrics counts them at this scrape."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
        return metric_value((await client.get("/metrics")).text, "kap_outbox_backlog")


async def outbox_drained(base_url: str, timeout: float = 30.0) -> None:
    """Every event the service has stored so far is on the broker: its relay marks a
    row published only once the broker has acknowledged it."""

    async def drained() -> bool:
        return await outbox_backlog(base_url) == 0

    await eventually(drained, timeout=timeout, interval=0.1)


async def caught_up(base_url: str, timeout: float = 60.0) -> None:
    """The service has published its outbox and each of its consumers has read to the
    end of every partition it is assigned: nothing more is on its way to it now (what
    a test once slept for, hoping)."""

    async def idle() -> bool:
        async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
            text = (await client.get("/metrics")).text
        lags = re.findall(r"^kap_consumer_lag\{.*\} (\S+)$", text, re.MULTILINE)
        backlog = metric_value(text, "kap_outbox_backlog")
        return backlog == 0 and bool(lags) and all(float(lag) == 0 for lag in lags)

    await eventually(idle, timeout=timeout, interval=0.1)


async def timers_settled(base_url: str, timeout: float = 30.0) -> None:
    """No durable timer of the service is due and unfired, and its outbox is on the
    broker: whatever its timers were going to publish by now has been published (what a
    test once slept through several timer-worker polls for)."""

    async def settled() -> bool:
        async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
            text = (await client.get("/metrics")).text
        return metric_value(text, "kap_timers_due") == 0 == metric_value(text, "kap_outbox_backlog")

    await eventually(settled, timeout=timeout, interval=0.1)


# -- a real SMS webhook provider, in the test process ---------------------------------

SMS_TOKEN = "e2e-sms-token"


@dataclass
class SmsWebhook:
    received: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                if self.headers.get("authorization") == f"Bearer {SMS_TOKEN}":
                    webhook.received.append(body)
                    self.send_response(200)
                else:
                    self.send_response(401)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/sms"

    def to(self, phone: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m["to"] == phone]


# -- a live inbox stream (GET /inbox/stream, Server-Sent Events) ----------------------


@dataclass
class LiveInbox:
    notifications: list[Event] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # each notification's SSE `id:`
    comments: list[str] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def live_inbox(
    api: Api,
    caller: tuple[str, str, list[str]],
    *,
    base_url: str | None = None,
    last_event_id: str | None = None,
) -> AsyncIterator[LiveInbox]:
    """Read GET /inbox/stream of `api` (or of the instance at `base_url`) in the
    background, resuming after `last_event_id` when given; entered once connected."""
    live = LiveInbox()
    headers = api.headers(*caller)
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id

    async def read() -> None:
        async with (
            httpx.AsyncClient(
                base_url=base_url or api.base_url, timeout=httpx.Timeout(10.0, read=60.0)
            ) as http,
            http.stream("GET", "/inbox/stream", headers=headers) as response,
        ):
            assert response.status_code == 200
            event_id = kind = None
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    live.comments.append(line[1:].strip())
                    live.connected.set()
                elif line.startswith("id:"):
                    event_id = line.partition(":")[2].strip()
                elif line.startswith("event:"):
                    kind = line.partition(":")[2].strip()
                elif line.startswith("data:") and kind == "notification":
                    live.notifications.append(json.loads(line.partition(":")[2]))
                    live.ids.append(event_id or "")

    task = asyncio.create_task(read())
    try:
        await asyncio.wait_for(live.connected.wait(), timeout=30)
        yield live
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await task


# -- FHIR R4 (records' GET /fhir/Patient/{id}/$everything) ---------------------------------

# What a patient's whole care record holds, as FHIR resource types.
CARE_RECORD_RESOURCE_TYPES = frozenset(
    {
        "CarePlan",
        "Appointment",
        "Observation",
        "QuestionnaireResponse",
        "MedicationAdministration",
        "DetectedIssue",
        "Communication",
    }
)


def validated_fhir_resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources of a FHIR R4 bundle, after validating the bundle and each resource
    against its R4 model (fhir.resources)."""
    get_fhir_model_class("Bundle").model_validate(bundle)
    resources: list[dict[str, Any]] = [entry["resource"] for entry in bundle["entry"]]
    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resources
