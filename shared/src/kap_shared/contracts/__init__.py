"""Contracts as code: released JSON Schemas per topic, compatibility checks,
producer examples and each service's AsyncAPI document.

CLI: `python -m kap_shared.contracts check | release | examples | asyncapi`.
"""

from .compat import Change, Finding, Report, TopicReport, compare_all, compare_topic
from .schemas import current_schemas, load_released, topic_schema, write_released

__all__ = [
    "Change",
    "Finding",
    "Report",
    "TopicReport",
    "compare_all",
    "compare_topic",
    "current_schemas",
    "load_released",
    "topic_schema",
    "write_released",
]
