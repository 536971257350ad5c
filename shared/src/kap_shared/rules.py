"""Clinical and scheduling rules as configuration: the clinical rulebook's
defaults for the whole clinic network, overridable per site.

A service describes its rules as a `RulesModel` whose defaults are the
rulebook's numbers (each field cites its rule id, with bounds). `SiteRules.load`
reads an optional JSON file (RULES_FILE):

    {"network": {"kap_min_preparation_sessions": 3},
     "sites": {"site-south": {"integration_due_hours": 48}}}

and `for_site(site_id)` answers the rules in force at that site.

Strict by construction: an unknown key (at the top, in `network` or in a site)
or an out-of-range value fails at start-up with a pydantic `ValidationError`
whose location names the key, e.g. `sites.site-south.integration_due_hours`.
A typo must stop the service, not silently fall back to a default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, Protocol, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import InitErrorDetails

R = TypeVar("R", bound=BaseModel)


class RulesModel(BaseModel):
    """Base of every service's rules: unknown keys are errors, rules never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RulesDocument(BaseModel):
    """The shape of a RULES_FILE: only `network` and `sites` at the top."""

    model_config = ConfigDict(extra="forbid")

    network: dict[str, Any] = {}
    sites: dict[str, dict[str, Any]] = {}


def _validate(model: type[R], values: Mapping[str, Any], where: tuple[str, ...]) -> R:
    """Validate `values`; on error, prefix each error's location with `where` so the
    message names the key as it is written in the file (`sites.site-a.<key>`)."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        details: list[InitErrorDetails] = []
        for error in exc.errors():
            detail: InitErrorDetails = {
                "type": error["type"],
                "loc": (*where, *error["loc"]),
                "input": error["input"],
            }
            if "ctx" in error:
                detail["ctx"] = error["ctx"]
            details.append(detail)
        raise ValidationError.from_exception_data(f"RULES_FILE {model.__name__}", details) from None


def _require_strict(model: type[BaseModel]) -> None:
    if model.model_config.get("extra") != "forbid":
        raise TypeError(
            f"{model.__name__} must reject unknown keys (derive from kap_shared.rules.RulesModel)"
        )


class SiteRules(Generic[R]):
    def __init__(self, network: R, sites: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        _require_strict(type(network))
        self.network = network
        self._sites = {site: dict(values) for site, values in (sites or {}).items()}
        # Validate every override up front: a typo must fail at start-up, not at booking.
        self._resolved = {site: self._merge(site, values) for site, values in self._sites.items()}

    def _merge(self, site: str, overrides: Mapping[str, Any]) -> R:
        # The site's values over the network's: cross-field checks see both.
        merged = {**self.network.model_dump(), **overrides}
        return _validate(type(self.network), merged, ("sites", site))

    def for_site(self, site_id: str) -> R:
        return self._resolved.get(site_id, self.network)

    @classmethod
    def load(cls, model: type[R], path: Path | None) -> SiteRules[R]:
        _require_strict(model)
        if path is None:
            return cls(model())
        document = _validate(RulesDocument, json.loads(path.read_text()), ())
        network = _validate(model, document.network, ("network",))
        return cls(network, document.sites)


class _Settings(Protocol):
    @property
    def rules_file(self) -> Path | None: ...


# A settings class's rules (a ClassVar to pydantic: not a setting of its own).
RulesFromFile: TypeAlias = cached_property[SiteRules[R]]


def from_rules_file(model: type[R]) -> RulesFromFile[R]:
    """A service settings' rules: `model`'s rulebook defaults, overridden for the network
    and per site by RULES_FILE, loaded on first use and kept (`screening_rules:
    ClassVar[RulesFromFile[ScreeningRules]] = from_rules_file(ScreeningRules)`)."""

    def load(settings: _Settings) -> SiteRules[R]:
        return SiteRules.load(model, settings.rules_file)

    return cached_property(load)
