"""The committed AsyncAPI documents (docs/asyncapi/<service>.json) are what each
service serves on /asyncapi today."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kap_shared.contracts import asyncapi
from kap_shared.events import EVENT_TYPES

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "asyncapi"


@pytest.mark.parametrize("service", asyncapi.SERVICES)
def test_committed_asyncapi_is_current(service: str) -> None:
    path = asyncapi.asyncapi_path(DOCS, service)
    assert path.exists(), f"missing {path}: run `{asyncapi.REGENERATE}`"
    committed = json.loads(path.read_text())
    assert committed == asyncapi.service_asyncapi(service), (
        f"docs/asyncapi/{service}.json is out of date: run `{asyncapi.REGENERATE}` and commit it"
    )


@pytest.mark.parametrize("service", asyncapi.SERVICES)
def test_asyncapi_names_the_service_and_only_contract_topics(service: str) -> None:
    document = json.loads(asyncapi.asyncapi_path(DOCS, service).read_text())
    assert document["asyncapi"].startswith("3.")
    assert document["info"]["title"] == f"kap-{service}"
    topics = {cls.topic for cls in EVENT_TYPES.values()}
    for name, channel in document["channels"].items():
        assert channel["address"] in topics, f"{name} is on a topic outside the contract"
    assert document["servers"]["development"]["host"] == asyncapi.PLACEHOLDER_BOOTSTRAP
