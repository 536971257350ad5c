"""Clinical and scheduling rules as configuration: the clinical rulebook's
defaults for the whole clinic network, overridable per site.

A service describes its rules as a pydantic model whose defaults are the
rulebook's numbers (each field cites its rule id). `SiteRules.load` reads an
optional JSON file (RULES_FILE):

    {"network": {"kap_min_preparation_sessions": 3},
     "sites": {"site-south": {"integration_due_hours": 48}}}

and `for_site(site_id)` answers the rules in force at that site.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

R = TypeVar("R", bound=BaseModel)


class SiteRules(Generic[R]):
    def __init__(self, network: R, sites: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.network = network
        self._sites = {site: dict(values) for site, values in (sites or {}).items()}
        # Validate every override up front: a typo must fail at start-up, not at booking.
        self._resolved = {site: self._merge(values) for site, values in self._sites.items()}

    def _merge(self, overrides: Mapping[str, Any]) -> R:
        merged = {**self.network.model_dump(), **overrides}
        return type(self.network).model_validate(merged)

    def for_site(self, site_id: str) -> R:
        return self._resolved.get(site_id, self.network)

    @classmethod
    def load(cls, model: type[R], path: Path | None) -> SiteRules[R]:
        if path is None:
            return cls(model())
        document = json.loads(path.read_text())
        network = model.model_validate(document.get("network", {}))
        return cls(network, document.get("sites", {}))
