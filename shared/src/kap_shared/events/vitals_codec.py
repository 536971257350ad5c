"""A fast, strict decoder for `VitalsRecorded`, generated from the contract model.

pydantic validates a topic record in ~5.6 µs, msgspec in about a fifth of that
(bench/vitals_throughput.py). To keep ONE contract, the msgspec types are generated
here from the pydantic model at import: field names, types, constraints, defaults.
A field added to the model is added here; a type, constraint or validator this
module does not know fails the import (and the tests), never silently.

The fast path is only ever a shortcut to "accepted":

- msgspec runs strict (no "5" -> 5, no 5.0 -> 5): what it accepts, pydantic accepts
  with the same values (shared/tests/test_vitals_codec.py, hypothesis);
- what it rejects goes to the pydantic model, which decides (its lax coercions
  included) and words the error a dead letter carries.
"""

from __future__ import annotations

import enum
import re
import types
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol, Union, cast, get_args, get_origin

import annotated_types
import msgspec
from pydantic import AwareDatetime, BaseModel, TypeAdapter
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from kap_shared.events import VitalsRecorded
from kap_shared.events.enums import Dissociation
from kap_shared.events.monitoring import VITAL_METRICS, VitalsReading

# Model validators cannot be generated; each one the model has is re-stated in
# `decode` below and named here, so that a new one fails the import until it is.
RESTATED_VALIDATORS = frozenset({f"{VitalsReading.__name__}._at_least_one_metric"})

_CONSTRAINTS: tuple[tuple[type[Any], str], ...] = (
    (annotated_types.Gt, "gt"),
    (annotated_types.Ge, "ge"),
    (annotated_types.Lt, "lt"),
    (annotated_types.Le, "le"),
    (annotated_types.MinLen, "min_length"),
    (annotated_types.MaxLen, "max_length"),
)
_PLAIN = (str, int, float, uuid.UUID)
# msgspec rounds a 7th fractional digit of a timestamp where pydantic truncates it:
# a record with any run of 7 digits after a dot is left to pydantic.
_TOO_PRECISE = re.compile(rb"\.[0-9]{7}")


class UnsupportedField(TypeError):
    """The contract model uses something this generator cannot express exactly."""


def _meta(owner: str, field: FieldInfo) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in field.metadata:
        name = next((n for kind, n in _CONSTRAINTS if isinstance(item, kind)), None)
        if name is None:
            raise UnsupportedField(f"{owner}: constraint {item!r}")
        found[name] = getattr(item, name)
    return found


def _type(owner: str, annotation: Any, meta: dict[str, Any]) -> Any:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = get_args(annotation)
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1 or len(args) != 2:
            raise UnsupportedField(f"{owner}: union {annotation!r}")
        return _type(owner, rest[0], meta) | None
    if origin is list:
        (item,) = get_args(annotation)
        inner: Any = list[_type(owner, item, {})]  # type: ignore[misc]
        return Annotated[inner, msgspec.Meta(**meta)] if meta else inner
    if origin is Literal:
        return annotation
    if meta and annotation not in (str, int, float):
        raise UnsupportedField(f"{owner}: constraints on {annotation!r}")
    if annotation is AwareDatetime:
        return Annotated[datetime, msgspec.Meta(tz=True)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return struct_for(annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation
    if annotation in _PLAIN:
        return Annotated[annotation, msgspec.Meta(**meta)] if meta else annotation
    raise UnsupportedField(f"{owner}: type {annotation!r}")


def _validators(model: type[BaseModel]) -> set[str]:
    decorators = model.__pydantic_decorators__
    names = {*decorators.model_validators, *decorators.field_validators, *decorators.validators}
    names |= set(decorators.root_validators)
    found = set()
    for name in names:
        owner = next(
            (k.__name__ for k in model.__mro__ if name in vars(k)),
            model.__name__,
        )
        found.add(f"{owner}.{name}")
    return found


def struct_for(model: type[BaseModel]) -> type[msgspec.Struct]:
    """A msgspec Struct with the model's fields, types, constraints and defaults."""
    extra = model.model_config.get("extra", "ignore")
    if extra not in ("ignore", "forbid") or model.model_config.get("strict"):
        raise UnsupportedField(f"{model.__name__}: model_config {model.model_config!r}")
    unknown = _validators(model) - RESTATED_VALIDATORS
    if unknown:
        raise UnsupportedField(f"{model.__name__}: validators {sorted(unknown)}")
    fields: list[tuple[str, Any, Any]] = []
    for name, field in model.model_fields.items():
        owner = f"{model.__name__}.{name}"
        if field.alias not in (None, name) or field.validation_alias is not None:
            raise UnsupportedField(f"{owner}: alias")
        kind = _type(owner, field.annotation, _meta(owner, field))
        if field.default_factory is not None:
            fields.append((name, kind, msgspec.field(default_factory=field.default_factory)))  # type: ignore[arg-type]
        elif field.default is not PydanticUndefined:
            fields.append((name, kind, field.default))
        else:
            fields.append((name, kind, msgspec.NODEFAULT))
    return msgspec.defstruct(
        model.__name__,
        [(n, k) if d is msgspec.NODEFAULT else (n, k, d) for n, k, d in fields],
        kw_only=True,
        forbid_unknown_fields=extra == "forbid",
        gc=False,  # thousands per batch, never cyclic
    )


class ReadingData(Protocol):
    """What `decode` returns of `data` (the contract model's names and types)."""

    @property
    def session_id(self) -> str: ...
    @property
    def reading_id(self) -> str: ...
    @property
    def recorded_at(self) -> datetime: ...
    @property
    def bp_systolic(self) -> int | None: ...
    @property
    def bp_diastolic(self) -> int | None: ...
    @property
    def heart_rate(self) -> int | None: ...
    @property
    def spo2(self) -> float | None: ...
    @property
    def respiratory_rate(self) -> int | None: ...
    @property
    def sedation_moaas(self) -> int | None: ...
    @property
    def symptoms(self) -> list[str]: ...
    @property
    def dissociation(self) -> Dissociation | None: ...
    @property
    def cadss_total(self) -> int | None: ...


class VitalsEvent(Protocol):
    """What `decode` returns: a VitalsRecorded, read-only."""

    @property
    def event_id(self) -> uuid.UUID: ...
    @property
    def correlation_id(self) -> str: ...
    @property
    def patient_id(self) -> str: ...
    @property
    def site_id(self) -> str: ...
    @property
    def data(self) -> ReadingData: ...


FAST_VITALS = struct_for(VitalsRecorded)
_FAST = msgspec.json.Decoder(FAST_VITALS)
ADAPTER: TypeAdapter[VitalsRecorded] = TypeAdapter(VitalsRecorded)


def decode_fast(value: bytes) -> VitalsEvent | None:
    """The strict fast path alone: the event, or None when pydantic must decide."""
    if _TOO_PRECISE.search(value):
        return None
    try:
        event: Any = _FAST.decode(value)
    except msgspec.DecodeError:
        return None
    data = event.data
    for metric in VITAL_METRICS:  # VitalsReading._at_least_one_metric, re-stated
        if getattr(data, metric) is not None:
            return cast("VitalsEvent", event)
    return None


def decode(value: bytes) -> VitalsEvent:
    """Validate one record against the contract; raises pydantic's ValidationError."""
    return decode_fast(value) or ADAPTER.validate_json(value)


def canonical_uuids(values: list[uuid.UUID]) -> list[str]:
    """`[str(u) for u in values]` in two C calls: msgspec writes a UUID in the same
    canonical form (lowercase, hyphenated) that `str` does, without Python per item."""
    texts: list[str] = msgspec.json.decode(msgspec.json.encode(values))
    return texts
