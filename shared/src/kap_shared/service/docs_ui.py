"""`/docs` (Swagger UI) and `/asyncapi` (AsyncAPI viewer) served with no internet.

Clinic networks often have none, so the pages' JavaScript and CSS come from the
service itself (vendored in `static/`, versions and licences in
`static/VENDORED.md`), never from a CDN. `/asyncapi` answers the HTML viewer to a
browser (Accept: text/html) and the JSON document to everyone else.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PATH = "/static/ui"
SWAGGER_UI = f"{STATIC_PATH}/swagger-ui-5.30.3"
ASYNCAPI_UI = f"{STATIC_PATH}/asyncapi-react-component-3.1.5"


def install_docs_ui(app: FastAPI, asyncapi: Callable[[], dict[str, Any]]) -> None:
    """Mount the vendored assets and the two pages (the app is built with docs_url=None)."""
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="docs-ui-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png",
        )

    @app.get(
        "/asyncapi",
        tags=["operations"],
        summary="AsyncAPI document of this service (HTML viewer for browsers)",
        response_model=dict[str, Any],
        responses={200: {"content": {"text/html": {}}}},
    )
    async def asyncapi_document(request: Request) -> Response:
        document = asyncapi()
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(asyncapi_html(document))
        return JSONResponse(document)


def asyncapi_html(document: dict[str, Any]) -> str:
    title = html.escape(str(document.get("info", {}).get("title", "AsyncAPI")))
    config = {"show": {"sidebar": True}, "expand": {"messageExamples": True}}
    # `</` inside the inline JSON must not close the script element.
    payload = json.dumps({"schema": document, "config": config}).replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html>
  <head>
    <meta charset="utf-8">
    <title>{title} - AsyncAPI</title>
    <link rel="stylesheet" href="{ASYNCAPI_UI}/default.min.css">
  </head>
  <body>
    <div id="asyncapi"></div>
    <script src="{ASYNCAPI_UI}/index.js"></script>
    <script>
      window.AsyncApiStandalone.render({payload}, document.getElementById("asyncapi"));
    </script>
  </body>
</html>
"""
