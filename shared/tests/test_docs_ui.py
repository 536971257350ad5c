"""`/docs` and `/asyncapi` render with no internet (issue 9 section 5): the pages
reference nothing outside the service, and every asset they name is served."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from kap_shared.service.runtime import ServiceRuntime
from kap_shared.settings import ServiceSettings
from kap_shared.testing import offline_page_problems, service_client


def build(settings: ServiceSettings) -> FastAPI:
    runtime = ServiceRuntime(settings, metadatas=[], publishes=("PatientReferred",))
    return runtime.http_app([], title="kap-demo", description="docs page test")


def test_docs_and_asyncapi_pages_need_no_internet(tmp_path: Path) -> None:
    with service_client(ServiceSettings, build, tmp_path) as client:
        for page in ("/docs", "/asyncapi"):
            assert offline_page_problems(client, f"http://testserver{page}") == []
        docs = client.get("/docs").text
        assert "/static/ui/swagger-ui-5.30.3/swagger-ui-bundle.js" in docs
        viewer = client.get("/asyncapi", headers={"Accept": "text/html"}).text
        assert "AsyncApiStandalone.render" in viewer
        assert "PatientReferred" in viewer  # the document is inlined for the viewer


def test_asyncapi_stays_json_for_machines(tmp_path: Path) -> None:
    with service_client(ServiceSettings, build, tmp_path) as client:
        response = client.get("/asyncapi")
        assert response.headers["content-type"] == "application/json"
        assert "PatientReferred" in str(response.json()["components"])


def test_the_checker_flags_a_cdn_and_a_missing_asset(tmp_path: Path) -> None:
    """The check itself can fail: a CDN script and a 404 asset are both reported."""

    def with_bad_page(settings: ServiceSettings) -> FastAPI:
        from fastapi.responses import HTMLResponse

        app = build(settings)

        @app.get("/bad", include_in_schema=False)
        async def bad() -> HTMLResponse:
            return HTMLResponse(
                '<script src="https://cdn.jsdelivr.net/npm/x.js"></script>'
                '<link rel="stylesheet" href="/static/ui/missing.css">'
            )

        return app

    with service_client(ServiceSettings, with_bad_page, tmp_path) as client:
        problems = offline_page_problems(client, "http://testserver/bad")
    assert any("cdn.jsdelivr.net" in p for p in problems)
    assert any("missing.css: 404" in p for p in problems)
