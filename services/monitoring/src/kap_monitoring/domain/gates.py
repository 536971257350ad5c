"""What a safety gate answers when it refuses: the rule, why, and what would clear it.

Doses and discharge fail closed: a missing, stale, backdated or contradicting fact
is a blocker exactly like a value out of range. The first blocker names the rule
of the 409 response; all of them are in its details.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kap_shared.events.enums import ClearedBy


@dataclass(frozen=True)
class Blocker:
    rule_id: str
    message: str
    # What the clinician can do so the gate opens (shown with the blocker).
    clear: str
    details: dict[str, Any] = field(default_factory=dict)
    # The kind of act that clears it (coded, for clients that enable actions on it).
    cleared_by: ClearedBy | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "message": self.message,
            "clear": self.clear,
            **({"cleared_by": self.cleared_by.value} if self.cleared_by else {}),
            **self.details,
        }
