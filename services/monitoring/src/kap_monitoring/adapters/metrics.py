"""Monitoring's own Prometheus gauges, refreshed on each /metrics scrape."""

from __future__ import annotations

from prometheus_client import Gauge
from sqlalchemy import func
from sqlmodel import col, select

from kap_shared.service.runtime import ServiceRuntime

from .tables import OPEN, Alert


def register_open_alerts(runtime: ServiceRuntime) -> None:
    """`kap_open_alerts{severity,site_id}`: VitalsAlerts still open (the backstop
    alert KapCriticalVitalsAlertUnacknowledged watches the critical ones)."""
    gauge = Gauge(
        "kap_open_alerts",
        "Vitals alerts open now, by severity and site",
        ["severity", "site_id"],
        registry=runtime.metrics.registry,
    )

    async def refresh() -> None:
        async with runtime.sessions() as session:
            rows = await session.exec(
                select(Alert.severity, Alert.site_id, func.count())
                .where(col(Alert.status) == OPEN)
                .group_by(col(Alert.severity), col(Alert.site_id))
            )
            gauge.clear()
            for severity, site_id, count in rows:
                gauge.labels(severity, site_id).set(count)

    runtime.on_scrape(refresh)
