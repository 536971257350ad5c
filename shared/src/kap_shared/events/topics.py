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
