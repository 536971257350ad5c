"""kap_open_alerts exposes open vitals alerts by severity and site (runbook backstop)."""

from __future__ import annotations

from pathlib import Path

from kap_monitoring.adapters.tables import Alert
from kap_monitoring.bootstrap import build
from kap_monitoring.config import MonitoringSettings
from kap_shared.events.envelope import utc_now
from kap_shared.testing import service_client


def test_open_alerts_gauge_counts_open_alerts_only(tmp_path: Path) -> None:
    with service_client(MonitoringSettings, build, tmp_path) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        assert client.portal is not None

        async def add() -> None:
            async with runtime.sessions() as session, session.begin():
                for n, (severity, status) in enumerate(
                    [
                        ("critical", "open"),
                        ("critical", "open"),
                        ("warning", "open"),
                        ("critical", "resolved"),
                    ]
                ):
                    session.add(
                        Alert(
                            alert_id=f"a{n}",
                            session_id=f"s{n}",
                            patient_id="p",
                            site_id="site-a",
                            rule_id="KET-MON-BP",
                            metric="bp_systolic",
                            severity=severity,
                            status=status,
                            value=201,
                            threshold=200,
                            message="m",
                            triggered_at=utc_now(),
                            event_id=f"e{n}",
                        )
                    )

        client.portal.call(add)
        body = client.get("/metrics").text
    assert 'kap_open_alerts{severity="critical",site_id="site-a"} 2.0' in body
    assert 'kap_open_alerts{severity="warning",site_id="site-a"} 1.0' in body
