"""GET /metrics: the platform's request metrics by route template and the console's
own cost as a backend-for-frontend (calls to each service and their latency)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from kap_console.bootstrap import build

from .test_console_sign_in import CONSOLE, settings


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_metrics_count_pages_by_route_and_each_service_call() -> None:
    app = build(settings(dev_sign_in=True, dev_clinicians="rn-north:nurse:site-north"))
    with TestClient(app, base_url=CONSOLE, follow_redirects=False) as client:
        assert client.post("/sign-in/dev", data={"clinician_id": "rn-north"}).status_code == 303
        # Nothing listens at the services' addresses: the board says they are unreachable.
        assert client.get("/floor/site-north").status_code == 503
        assert client.get("/floor/site-south").status_code == 403  # refused before any call

        response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    calls = samples(response.text, "kap_console_service_calls_total")
    # The board asks scheduling, monitoring and notifications at once (then intake).
    for service in ("scheduling", "monitoring", "notifications"):
        labels = (("method", "GET"), ("outcome", "unreachable"), ("service", service))
        assert calls[labels] == 1.0
    latency = samples(response.text, "kap_console_service_call_duration_seconds_count")
    assert latency[(("method", "GET"), ("service", "scheduling"))] == 1.0
    pages = samples(response.text, "kap_http_requests_total")
    assert pages[(("method", "GET"), ("route", "/floor/{site_id}"), ("status", "503"))] == 1.0
    assert pages[(("method", "GET"), ("route", "/floor/{site_id}"), ("status", "403"))] == 1.0
    assert samples(response.text, "kap_console_live_listeners") == {(): 0.0}
    # its sign-in sessions are on SQLite here: the sign-in waited for the writer lock
    assert samples(response.text, "kap_sqlite_writer_wait_seconds_count")[()] >= 1
