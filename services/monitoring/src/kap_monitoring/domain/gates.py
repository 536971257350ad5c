"""What a safety gate answers when it refuses: the rule, why, and what would clear it.

Doses and discharge fail closed: a missing, stale, backdated or contradicting fact
is a blocker exactly like a value out of range. The first blocker names the rule
of the 409 response; all of them are in its details.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Blocker:
    rule_id: str
    message: str
    # What the clinician can do so the gate opens (shown with the blocker).
    clear: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "message": self.message,
            "clear": self.clear,
            **self.details,
        }
