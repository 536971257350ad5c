"""Test support shared by every service's unit tests.

`service_client` runs a service's FastAPI app in-process (lifespan included)
against a throw-away SQLite database and an unreachable broker, so HTTP
behaviour and what lands in the database and outbox can be asserted without
Kafka. Integration tests use the real broker instead (see `tests/`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from aiokafka import TopicPartition
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from .auth.tokens import mint_token
from .events.envelope import Envelope
from .events.topics import MONITORING_VITALS
from .http.openapi import ERROR_SCHEMA_REF
from .messaging.outbox import outbox_values
from .settings import ServiceSettings

TEST_SECRET = "unit-test-secret-of-at-least-32-bytes!"  # noqa: S105 - test-only key
UNREACHABLE_BROKER = "127.0.0.1:1"
# CONTRACT section 1, written out by hand so that tests do not trust the Envelope model.
CONTRACT_ENVELOPE_FIELDS = frozenset(
    {
        "event_id",
        "event_type",
        "schema_version",
        "occurred_at",
        "producer",
        "site_id",
        "patient_id",
        "correlation_id",
        "causation_id",
        "data",
    }
)

S = TypeVar("S", bound=ServiceSettings)


def token(sub: str, role: str, sites: list[str]) -> dict[str, str]:
    """Authorization header for a development token."""
    return {"Authorization": f"Bearer {mint_token(TEST_SECRET, sub=sub, role=role, sites=sites)}"}


def caller(sub: str, role: str, sites: list[str]) -> Any:
    """A fixture of one caller's `token` headers, for a conftest:
    `nurse = caller("rn-cleo", "nurse", ["site-a"])` is the fixture `nurse`."""

    def headers() -> dict[str, str]:
        return token(sub, role, sites)

    return pytest.fixture(headers)


def named_cases(table: Iterable[Sequence[Any]]) -> list[Any]:
    """`pytest.mark.parametrize` values from a table of rows `(name, *values)`: each
    row's first item is its case's id, the rest are the test's arguments."""
    return [pytest.param(*row[1:], id=row[0]) for row in table]


# Every way a request can lack a valid token: each must be 401 `unauthenticated`.
BAD_CREDENTIALS: dict[str, dict[str, str]] = {
    "no token": {},
    "garbage token": {"Authorization": "Bearer not.a.jwt"},
    "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
    "wrong secret": {
        "Authorization": "Bearer "
        + mint_token("another-secret-of-at-least-32-bytes!!", sub="x", role="admin", sites=["*"])
    },
    "expired": {
        "Authorization": "Bearer "
        + mint_token(TEST_SECRET, sub="x", role="admin", sites=["*"], ttl=timedelta(minutes=-5))
    },
}


@contextmanager
def service_client(
    settings_cls: type[S], build: Callable[[S], FastAPI], tmp_path: Path, **overrides: Any
) -> Iterator[TestClient]:
    settings = settings_cls(
        var_dir=tmp_path,
        kap_jwt_secret=TEST_SECRET,
        db_schema="create_all",  # fast; tests/test_migrations.py checks the migrations
        **{"kafka": {"bootstrap_servers": UNREACHABLE_BROKER}, **overrides},
    )
    with TestClient(build(settings), raise_server_exceptions=True) as client:
        yield client


@asynccontextmanager
async def serving(
    app: Any, *, before_stop: Callable[[], object] | None = None
) -> AsyncIterator[str]:
    """`app` (lifespan included) on a real HTTP server in this event loop, for a client a
    TestClient cannot stand in for (a browser, an open stream); yields its base URL.
    `before_stop` runs first on the way out: what the service's own SIGTERM handler does
    (ending open streams, which the server would otherwise wait for)."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():  # the start-up failed: say why
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        if before_stop is not None:
            before_stop()
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)


def app_client(settings_cls: type[S], build: Callable[[S], FastAPI]) -> Any:
    """The fixture `client` of a conftest whose app needs nothing but a throw-away
    directory: `client = app_client(IntakeSettings, build)` (see `service_client`)."""

    def client(tmp_path: Path) -> Iterator[TestClient]:
        with service_client(settings_cls, build, tmp_path) as test_client:
            yield test_client

    return pytest.fixture(client)


def database_file(settings_cls: type[ServiceSettings]) -> Any:
    """The fixture `db` of a conftest: the SQLite file `service_client` gives the app
    (`<var_dir>/<service_name>.db`), to read what was stored with `rows`:
    `db = database_file(IntakeSettings)`."""
    name = settings_cls.model_fields["service_name"].default

    def db(tmp_path: Path) -> Path:
        return tmp_path / f"{name}.db"

    return pytest.fixture(db)


def rows(db_file: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the service's SQLite database directly (what was stored?)."""
    engine = create_engine(f"sqlite:///{db_file}")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


class _AssetReferences(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.references: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.references.append(value)


def offline_page_problems(client: httpx.Client, url: str) -> list[str]:
    """What keeps the HTML page at `url` (e.g. /docs) from rendering offline: a
    reference (src/href, or any http(s) URL in the page's text) outside the service,
    or a referenced asset that does not answer 200. Empty when it renders offline."""
    response = client.get(url, headers={"Accept": "text/html"})
    if response.status_code != 200 or "text/html" not in response.headers.get("content-type", ""):
        return [f"{url}: {response.status_code} {response.headers.get('content-type')}"]
    origin = httpx.URL(url).copy_with(path="/", query=None, fragment=None)
    parser = _AssetReferences()
    parser.feed(response.text)
    problems: list[str] = []
    # An absolute URL anywhere in the page, inline scripts included.
    for absolute in re.findall(r"https?://[^\s\"'<>)]+", response.text):
        if not absolute.startswith(str(origin).rstrip("/")):
            problems.append(f"external reference {absolute}")
    for reference in parser.references:
        target = origin.join(reference)
        if target.host != origin.host or target.port != origin.port:
            problems.append(f"external asset {reference}")
            continue
        asset = client.get(str(target))
        if asset.status_code != 200:
            problems.append(f"{reference}: {asset.status_code}")
    return problems


def documented_errors(spec: dict[str, Any]) -> dict[str, set[int]]:
    """`{"GET /sessions/{session_id}": {401, 403, 404, 422, 503}, ...}`: the 4xx/5xx
    statuses each operation of an OpenAPI document declares."""
    return {
        f"{method.upper()} {path}": {int(s) for s in operation["responses"] if int(s) >= 400}
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    }


def assert_openapi_errors(spec: dict[str, Any], expected: dict[str, set[int]]) -> None:
    """Every operation declares exactly the expected error statuses, each with the
    platform's error schema (never FastAPI's `HTTPValidationError`)."""
    assert documented_errors(spec) == expected
    assert "HTTPValidationError" not in spec.get("components", {}).get("schemas", {})
    error = spec["components"]["schemas"]["ErrorDetail"]
    assert {"code", "message"} <= set(error["required"])
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400 and not (path == "/readyz" and status == "503"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": ERROR_SCHEMA_REF}, (method, path, status)


# -- RULES_FILE validation (kap_shared.rules) ---------------------------------------------------

_BAD_RULES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown network key", {"network": {"no_such_rule": 1}}, "network.no_such_rule"),
    ("unknown site key", {"sites": {"site-x": {"no_such_rule": 1}}}, "sites.site-x.no_such_rule"),
    ("network value out of range", {"network": {"KEY": 0}}, "network.KEY"),
    ("site value out of range", {"sites": {"site-x": {"KEY": 0}}}, "sites.site-x.KEY"),
    ("unknown top-level key", {"site": {}}, "site"),
]


def bad_rules_files(key: str) -> list[tuple[str, dict[str, Any], str]]:
    """(case id, RULES_FILE document, the name the start-up error must give) for each way
    a rules file can be wrong; `key` is a rule of the service whose minimum is above 0."""
    return [
        (
            case,
            json.loads(json.dumps(document).replace("KEY", key)),
            named.replace("KEY", key),
        )
        for case, document, named in _BAD_RULES
    ]


@dataclass
class FakeRecord:
    """The parts of an aiokafka ConsumerRecord a batch consumer reads
    (`kap_shared.messaging.batch_consumer.Record`), for batches built by hand."""

    value: bytes | None
    key: bytes | None = b"pt-1"
    topic: str = MONITORING_VITALS
    partition: int = 0
    offset: int = 0
    headers: list[tuple[str, bytes]] = field(
        default_factory=lambda: [("content-type", b"application/json")]
    )


class FakeConsumer:
    """The parts of an AIOKafkaConsumer a batch's offsets are committed with
    (`kap_shared.messaging.offsets.Committing`): `assigned` partitions, each commit
    recorded."""

    def __init__(self, assigned: Iterable[TopicPartition] | None = None) -> None:
        self.assigned = set(assigned or {TopicPartition(MONITORING_VITALS, 0)})
        self.commits: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    async def commit(self, offsets: Any = None) -> None:
        self.commits.append(dict(offsets))


class FakeBatchMessage:
    """A batch's faststream message: its consumer's commits and the batch's nacks."""

    def __init__(self) -> None:
        self.consumer = FakeConsumer()
        self.nacked = 0

    async def nack(self) -> None:
        self.nacked += 1

    @property
    def committed(self) -> dict[int, int]:
        """Partition -> the offset committed last (the next one to read)."""
        commits = self.consumer.commits
        return {tp.partition: offset for commit in commits for tp, offset in commit.items()}


async def until(condition: Callable[[], object], timeout: float = 30.0) -> None:
    """Wait until `condition()` is true, polling what another task or process changes
    (raises TimeoutError after `timeout` seconds, a bound for a loaded machine)."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - no event to wait on: another task's state
            await asyncio.sleep(0.01)


def handle_batch(client: TestClient, consumer: Any, batch: Sequence[Any]) -> FakeBatchMessage:
    """A `BatchConsumer`'s `handle` of `batch`, as its subscription calls it, then its
    offsets' commit (which runs behind the handler) awaited."""
    message = FakeBatchMessage()
    assert client.portal is not None
    client.portal.call(consumer.handle, batch, message)
    client.portal.call(consumer.offsets.flush)
    return message


def kafka_headers(event: Envelope) -> list[tuple[str, bytes]]:
    """The headers `event` travels with when a service's outbox relay publishes it."""
    return [(name, value.encode()) for name, value in outbox_values(event)["headers"].items()]
