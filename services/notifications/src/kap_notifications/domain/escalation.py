"""Escalation: who is told next when nobody acknowledges, and when.

An *alert* is a notified event whose routing row escalates (a critical
VitalsAlert, an IntegrationOverdue). Its levels are fixed when it is raised
(a snapshot: changing a site's policy later does not re-time alerts already
running). Level *n* fires `after_seconds` after the **first notification**
unless someone acknowledged the alert before; levels are strictly increasing
in `after_seconds`, so they fire in order.

* Critical vitals (`SITE_LEVELS`): the site's levels (PUT /sites/{id}/escalation).
  A site without levels falls back to one level - the site's coordinators after
  `stat_fallback_escalation_seconds` - unless that rule is null.
* IntegrationOverdue (`SITE_COORDINATORS`): one level, the site's coordinators
  after `integration_overdue_escalation_seconds` (rulebook KAP-2).

A level names recipients directly and/or by role at the site (resolved when it
fires, so a coordinator registered after the alert still gets it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kap_shared.events.enums import Role

from .routing import EscalationKind
from .rules import NotificationRules


@dataclass(frozen=True)
class Level:
    after_seconds: int
    recipient_ids: tuple[str, ...] = ()
    roles: tuple[Role, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "after_seconds": self.after_seconds,
            "recipient_ids": list(self.recipient_ids),
            "roles": [r.value for r in self.roles],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Level:
        return cls(
            int(raw["after_seconds"]),
            tuple(raw.get("recipient_ids", ())),
            tuple(Role(r) for r in raw.get("roles", ())),
        )


def levels_for(
    kind: EscalationKind, site_levels: Sequence[Level], rules: NotificationRules
) -> list[Level]:
    """The levels an alert of `kind` runs through at a site."""
    if kind is EscalationKind.SITE_LEVELS:
        if site_levels:
            return list(site_levels)
        fallback = rules.stat_fallback_escalation_seconds
        return [] if fallback is None else [Level(fallback, roles=(Role.COORDINATOR,))]
    return [Level(rules.integration_overdue_escalation_seconds, roles=(Role.COORDINATOR,))]


def due_at(opened_at: datetime, level: Level) -> datetime:
    return opened_at + timedelta(seconds=level.after_seconds)


def level_problems(levels: Sequence[Level]) -> list[tuple[str, str]]:
    """(field, message) for each invalid level of a site policy."""
    problems = []
    for index in range(1, len(levels)):
        previous, current = levels[index - 1], levels[index]
        if current.after_seconds <= previous.after_seconds:
            problems.append(
                (
                    f"levels[{index}].after_seconds",
                    f"must be greater than levels[{index - 1}].after_seconds "
                    f"({previous.after_seconds}): both count from the first notification",
                )
            )
    return problems


def timer_key(alert_id: str, level: int) -> str:
    return f"escalation:{alert_id}:{level}"
