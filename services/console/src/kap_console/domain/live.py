"""What the browser is told about an event: ids and codes only, never PHI.

The console reads every topic but stores nothing: each event becomes a small
`LiveEvent` that tells a connected page which card or panel to fetch again, and the
last few thousand are kept in memory only (`ReplayLog`) for a page that connects late.
Tolerant reader (tech notes G.6): only envelope fields and `data.session_id`,
`data.severity` are read; an event type the console does not know still
refreshes the patient's card, a malformed message is skipped.
"""

from __future__ import annotations

import json
from collections import deque
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


@dataclass(frozen=True)
class Logged:
    """An event as the hub numbered it: `position` is the SSE id a page resumes from."""

    position: str
    event: LiveEvent


class ReplayLog:
    """The last `size` events of one console process, numbered, so that a page can be
    told what it missed between being rendered and its stream opening, or while its
    stream was down (`since`).

    A position is `<epoch>.<number>`: the epoch names this process, so a position from
    another replica, or from before a restart, is never taken for one of ours. Whatever
    the log cannot vouch for (another epoch, events already evicted, a gap in what the
    feed read, a position it cannot parse) is answered None: the page must read
    everything it shows again (fail closed: a stale card must not pass for a current one).
    """

    def __init__(self, epoch: str, size: int) -> None:
        self._epoch = epoch
        self._events: deque[tuple[int, Logged]] = deque()
        self._size = size
        self._last = 0  # the number of the last event logged (or of the last gap)
        self._base = 0  # every event numbered above this one is in the log

    @property
    def position(self) -> str:
        """Where a page rendered now resumes from: everything after this is logged."""
        return f"{self._epoch}.{self._last}"

    def append(self, event: LiveEvent) -> Logged:
        self._last += 1
        logged = Logged(f"{self._epoch}.{self._last}", event)
        self._events.append((self._last, logged))
        if len(self._events) > self._size:
            self._base, _ = self._events.popleft()
        return logged

    def gap(self) -> None:
        """Events may have been missed here (the feed's reader rejoined its partitions):
        no position taken before now can be answered any more."""
        self._last += 1
        self._base = self._last
        self._events.clear()

    def since(self, position: str) -> list[Logged] | None:
        """The events after `position`, oldest first; None when the log cannot say."""
        epoch, _, number = position.rpartition(".")
        # A page's own position, or an id from a client: bounded before int() reads it.
        if epoch != self._epoch or not (number.isascii() and number.isdigit()):
            return None
        if len(number) > len(str(self._last)):
            return None  # beyond any number this log has given
        after = int(number)
        if after < self._base or after > self._last:
            return None
        return [logged for n, logged in self._events if n > after]
