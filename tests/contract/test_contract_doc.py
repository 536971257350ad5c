"""docs/contract.md describes, inside the repository, the contract the services
implement; it is generated (`make asyncapi`) and must be current. Markdown links in
the repository resolve inside the repository (a clone has no `../shared/`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kap_shared.contracts import document
from kap_shared.contracts.services import SERVICES
from kap_shared.events.catalog import EVENTS_BY_TOPIC

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = document.path(ROOT)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SKIP_DIRS = {".venv", "node_modules", ".git", "var", ".pytest_cache", ".mypy_cache"}


@pytest.fixture(scope="module")
def rendered() -> str:
    return document.render(ROOT)


def test_committed_contract_doc_is_current(rendered: str) -> None:
    assert CONTRACT.exists(), f"missing {CONTRACT}: run `{document.REGENERATE}`"
    assert CONTRACT.read_text() == rendered, (
        f"docs/contract.md is out of date: run `{document.REGENERATE}` and commit it"
    )


def test_every_event_field_and_service_path_is_described(rendered: str) -> None:
    sections = dict(re.findall(r"^#### (\w+)\n(.*?)(?=^#{2,4} )", rendered, re.S | re.M))
    for topic, classes in EVENTS_BY_TOPIC.items():
        assert f"`{topic}`" in rendered
        for cls in classes:
            name = cls.model_fields["event_type"].default
            assert name in sections, f"{name} has no section"
            data = cls.model_fields["data"].annotation
            assert data is not None
            for field, info in data.model_fields.items():
                assert f"| `{info.alias or field}` |" in sections[name], f"{name}.{field}"
    for service in SERVICES:
        assert f"### {service}\n" in rendered
        assert f"(asyncapi/{service}.json)" in rendered
    assert "| POST | `/patients` |" in rendered  # an intake path, from its OpenAPI


def _markdown_files() -> list[Path]:
    return [
        path
        for path in ROOT.rglob("*.md")
        if not SKIP_DIRS.intersection(path.relative_to(ROOT).parts)
    ]


def test_markdown_links_stay_inside_the_repository() -> None:
    broken = []
    for page in _markdown_files():
        for target in LINK.findall(page.read_text(errors="replace")):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue  # a URL or an anchor on the same page
            resolved = (page.parent / target.split("#", 1)[0]).resolve()
            inside = resolved.is_relative_to(ROOT.resolve())
            if not inside or not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == [], "links that break in a clone:\n" + "\n".join(broken)
