"""Topic names of CONTRACT section 2. Every topic has a `.dlq` twin."""

INTAKE_EVENTS = "kap.intake.events.v1"
SCHEDULING_EVENTS = "kap.scheduling.events.v1"
MONITORING_VITALS = "kap.monitoring.vitals.v1"
MONITORING_EVENTS = "kap.monitoring.events.v1"
NOTIFICATIONS_EVENTS = "kap.notifications.events.v1"
RECORDS_EVENTS = "kap.records.events.v1"  # CONTRACT 6.2

ALL_TOPICS = (
    INTAKE_EVENTS,
    SCHEDULING_EVENTS,
    MONITORING_VITALS,
    MONITORING_EVENTS,
    NOTIFICATIONS_EVENTS,
    RECORDS_EVENTS,
)


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


# Retention (docs/deploy.md "Retention"): event topics keep everything, because records
# rebuilds its projection from them (`kap-records rebuild`); vitals readings are
# high-volume and may expire (their summaries live in monitoring and records).
KEEP_FOREVER_MS = -1
VITALS_RETENTION_MS = 7 * 24 * 3600 * 1000


def retention_ms(topic: str) -> int:
    """The `retention.ms` of a topic or its dead-letter twin."""
    base = topic.removesuffix(".dlq")
    return VITALS_RETENTION_MS if base == MONITORING_VITALS else KEEP_FOREVER_MS
