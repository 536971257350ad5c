"""What the browser is told about an event: ids and codes only, never PHI.

The console reads every topic but keeps nothing: each event becomes a small
`LiveEvent` that tells a connected page which card or panel to fetch again.
Tolerant reader (tech notes G.6): only envelope fields and `data.session_id`,
`data.severity` are read; an event type the console does not know still
refreshes the patient's card, a malformed message is skipped.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class LiveEvent:
    event_type: str
    site_id: str
    patient_id: str
    session_id: str | None
    severity: str | None
    topic: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


def parse(topic: str, raw: bytes | None, headers: dict[str, str]) -> LiveEvent | None:
    """The live view of one Kafka record, or None when it is not an envelope."""
    if raw is None:
        return None
    try:
        envelope: Any = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(envelope, dict):
        return None
    event_type = headers.get("event_type") or envelope.get("event_type")
    site_id, patient_id = envelope.get("site_id"), envelope.get("patient_id")
    if not (
        isinstance(event_type, str) and isinstance(site_id, str) and isinstance(patient_id, str)
    ):
        return None
    data = envelope.get("data")
    data = data if isinstance(data, dict) else {}
    session_id = data.get("session_id")
    severity = data.get("severity")
    return LiveEvent(
        event_type=event_type,
        site_id=site_id,
        patient_id=patient_id,
        session_id=session_id if isinstance(session_id, str) else None,
        severity=severity if isinstance(severity, str) else None,
        topic=topic,
    )
