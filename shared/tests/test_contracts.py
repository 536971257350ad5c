"""Contracts as code: released schemas match the models, and the compatibility
check fails on every kind of breaking change and passes on additive ones.

The synthetic changes are made on copies of the released schema dicts, so the
tests hold whatever the models look like today.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kap_shared.contracts import Change, compare_all, compare_topic, current_schemas
from kap_shared.contracts.__main__ import main as contracts_cli
from kap_shared.contracts.compat import next_topic_version
from kap_shared.contracts.schemas import dumps, load_released, schema_path
from kap_shared.events import EVENTS_BY_TOPIC, decode
from kap_shared.events.topics import INTAKE_EVENTS, MONITORING_EVENTS, SCHEDULING_EVENTS

from .examples import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
RELEASE = "uv run python -m kap_shared.contracts release"


def released(topic: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_path(CONTRACTS, topic).read_text())
    return schema


def changes(old: dict[str, Any], new: dict[str, Any], topic: str = INTAKE_EVENTS) -> set[Change]:
    return {finding.change for finding in compare_topic(topic, old, new).findings}


def breaking(old: dict[str, Any], new: dict[str, Any], topic: str = INTAKE_EVENTS) -> bool:
    return bool(compare_topic(topic, old, new).breaking)


# -- the released contract is the current one ----------------------------------------


def test_every_topic_has_a_released_schema() -> None:
    assert set(load_released(CONTRACTS)) == set(EVENTS_BY_TOPIC), (
        f"contracts/ must hold one schema per topic; run `{RELEASE}`"
    )


@pytest.mark.parametrize("topic", sorted(EVENTS_BY_TOPIC))
def test_released_schema_is_current(topic: str) -> None:
    """Fails when a model changed without a release: run the release command."""
    current = current_schemas()[topic]
    committed = schema_path(CONTRACTS, topic).read_text()
    report = compare_topic(topic, released(topic), current)
    assert committed == dumps(current), (
        f"{topic}: the event models changed since the last release ({report.status}).\n"
        + "\n".join(f"  {f.path}: {f.message} [{f.change}]" for f in report.findings)
        + f"\nIf the change is compatible, run `{RELEASE}` and commit contracts/;"
        f" if it is breaking, publish on {next_topic_version(topic)} instead."
    )


def test_the_check_passes_on_the_released_contracts() -> None:
    report = compare_all(load_released(CONTRACTS), current_schemas())
    assert not report.breaking, report.render()


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_released_schema_accepts_the_example_message(event_type: str) -> None:
    """The JSON Schema says the same as the models: a valid event passes both."""
    message = EXAMPLES[event_type]
    topic = decode_topic(event_type)
    jsonschema.Draft202012Validator(released(topic)).validate(message)


def test_released_schema_rejects_what_the_models_reject() -> None:
    message = copy.deepcopy(EXAMPLES["PatientScreened"])
    message["data"]["outcome"] = "maybe"
    validator = jsonschema.Draft202012Validator(released(INTAKE_EVENTS))
    assert not validator.is_valid(message)
    with pytest.raises(ValueError, match="outcome"):
        decode(INTAKE_EVENTS, message)


def decode_topic(event_type: str) -> str:
    for topic, classes in EVENTS_BY_TOPIC.items():
        if any(cls.model_fields["event_type"].default == event_type for cls in classes):
            return topic
    raise LookupError(event_type)


# -- synthetic changes: what breaks -----------------------------------------------------


def defs(schema: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = schema["$defs"]
    return result


def test_unchanged_schema_has_no_findings() -> None:
    schema = released(INTAKE_EVENTS)
    report = compare_topic(INTAKE_EVENTS, schema, copy.deepcopy(schema))
    assert report.findings == []
    assert report.status == "unchanged"


def test_removing_a_field_is_breaking() -> None:
    old = released(INTAKE_EVENTS)
    new = copy.deepcopy(old)
    data = defs(new)["PatientScreenedData"]
    del data["properties"]["screening_id"]
    data["required"].remove("screening_id")
    assert Change.FIELD_REMOVED in changes(old, new)
    assert breaking(old, new)
    findings = compare_topic(INTAKE_EVENTS, old, new).breaking
    assert any(f.path == "PatientScreened.data.screening_id" for f in findings)


def test_renaming_a_field_is_breaking_and_named_as_a_rename() -> None:
    old = released(INTAKE_EVENTS)
    new = copy.deepcopy(old)
    data = defs(new)["ConsentRecordedData"]
    data["properties"]["consent_ref"] = data["properties"].pop("consent_id")
    data["required"] = ["consent_ref" if r == "consent_id" else r for r in data["required"]]
    report = compare_topic(INTAKE_EVENTS, old, new)
    renamed = [f for f in report.breaking if f.change is Change.FIELD_RENAMED]
    assert renamed
    assert "consent_ref" in renamed[0].message


# Breaking edits of the released intake schema's $defs, and the change each one is.


def _heart_rate_as_text(schema_defs: dict[str, Any]) -> None:
    schema_defs["Baseline"]["properties"]["heart_rate"] = {"type": "string", "title": "Heart Rate"}


def _granted_nullable(schema_defs: dict[str, Any]) -> None:
    schema_defs["ConsentRecordedData"]["properties"]["granted"] = {
        "anyOf": [{"type": "boolean"}, {"type": "null"}],
        "default": None,
    }


def _witness_required(schema_defs: dict[str, Any]) -> None:
    data = schema_defs["ConsentRecordedData"]
    data["properties"]["witness_id"] = {"type": "string", "title": "Witness Id"}
    data["required"].append("witness_id")


def _referral_source_required(schema_defs: dict[str, Any]) -> None:
    schema_defs["PatientReferredData"]["required"].append("referral_source")


def _phq9_total_capped_at_20(schema_defs: dict[str, Any]) -> None:
    schema_defs["Baseline"]["properties"]["phq9_total"]["maximum"] = 20


def _data_sharing_scope_removed(schema_defs: dict[str, Any]) -> None:
    schema_defs["ConsentScope"]["enum"].remove("data_sharing")


BREAKING_EDITS = [
    pytest.param(_heart_rate_as_text, Change.TYPE_CHANGED, id="changing-a-field-type"),
    pytest.param(_granted_nullable, Change.TYPE_CHANGED, id="making-a-field-nullable"),
    pytest.param(_witness_required, Change.REQUIRED_FIELD_ADDED, id="adding-a-required-field"),
    pytest.param(
        _referral_source_required, Change.BECAME_REQUIRED, id="making-an-optional-field-required"
    ),
    pytest.param(_phq9_total_capped_at_20, Change.CONSTRAINT_CHANGED, id="tightening-a-constraint"),
    pytest.param(
        _data_sharing_scope_removed, Change.ENUM_VALUE_REMOVED, id="removing-an-enum-value"
    ),
]


@pytest.mark.parametrize(("edit", "change"), BREAKING_EDITS)
def test_a_breaking_edit_is_named_and_fails_the_check(
    edit: Callable[[dict[str, Any]], None], change: Change
) -> None:
    old = released(INTAKE_EVENTS)
    new = copy.deepcopy(old)
    edit(defs(new))
    assert change in changes(old, new)
    assert breaking(old, new)


def test_adding_an_enum_value_is_breaking_for_strict_consumers() -> None:
    """Documented choice: consumers validate enums strictly, so a new value breaks them."""
    old = released(INTAKE_EVENTS)
    new = copy.deepcopy(old)
    defs(new)["ConsentScope"]["enum"].append("research")
    assert Change.ENUM_VALUE_ADDED in changes(old, new)
    assert breaking(old, new)
    # ...and that is what a released consumer really does with it:
    message = copy.deepcopy(EXAMPLES["ConsentRecorded"])
    message["data"]["scope"] = "research"
    with pytest.raises(ValueError, match="scope"):
        decode(INTAKE_EVENTS, message)


def test_removing_an_event_type_is_breaking() -> None:
    old = released(SCHEDULING_EVENTS)
    new = copy.deepcopy(old)
    new["oneOf"] = [v for v in new["oneOf"] if not v["$ref"].endswith("/IntegrationOverdue")]
    del new["discriminator"]["mapping"]["IntegrationOverdue"]
    del defs(new)["IntegrationOverdue"]
    assert Change.EVENT_TYPE_REMOVED in changes(old, new, SCHEDULING_EVENTS)
    assert breaking(old, new, SCHEDULING_EVENTS)


def test_removing_a_topic_is_breaking() -> None:
    everything = load_released(CONTRACTS)
    fewer = {t: s for t, s in everything.items() if t != MONITORING_EVENTS}
    assert compare_all(everything, fewer).breaking


# -- synthetic changes: what passes -----------------------------------------------------


def test_adding_an_optional_field_passes() -> None:
    old = released(INTAKE_EVENTS)
    new = copy.deepcopy(old)
    defs(new)["PatientReferredData"]["properties"]["referral_channel"] = {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "default": None,
        "title": "Referral Channel",
    }
    report = compare_topic(INTAKE_EVENTS, old, new)
    assert not report.breaking
    assert [f.change for f in report.findings] == [Change.OPTIONAL_FIELD_ADDED]
    assert report.status == "compatible change, not yet released"


def test_adding_an_event_type_to_an_existing_topic_is_additive() -> None:
    old = released(INTAKE_EVENTS)
    new = copy.deepcopy(old)
    defs(new)["ReferralWithdrawn"] = copy.deepcopy(defs(new)["PatientReferred"])
    defs(new)["ReferralWithdrawn"]["properties"]["event_type"]["const"] = "ReferralWithdrawn"
    new["oneOf"].append({"$ref": "#/$defs/ReferralWithdrawn"})
    report = compare_topic(INTAKE_EVENTS, old, new)
    assert not report.breaking
    assert [f.change for f in report.findings] == [Change.EVENT_TYPE_ADDED]
    assert not report.findings[0].breaking
    assert "additive" in report.findings[0].message
    assert report.status == "compatible change, not yet released"
    assert "BREAKING" not in compare_all({INTAKE_EVENTS: old}, {INTAKE_EVENTS: new}).render()


def test_documentation_changes_pass_silently() -> None:
    old = released(INTAKE_EVENTS)
    new = copy.deepcopy(old)
    defs(new)["Baseline"]["properties"]["heart_rate"]["description"] = "beats per minute"
    report = compare_topic(INTAKE_EVENTS, old, new)
    assert report.findings == []
    assert not report.changed


# -- the CLI -------------------------------------------------------------------------------


def copy_contracts(tmp_path: Path) -> Path:
    (tmp_path / "uv.lock").write_text("")
    target = tmp_path / "contracts"
    target.mkdir()
    for topic in EVENTS_BY_TOPIC:
        source = schema_path(CONTRACTS, topic)
        (target / source.name).write_text(source.read_text())
    return target


def test_cli_check_passes_on_the_released_contracts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_contracts(tmp_path)
    assert contracts_cli(["--root", str(tmp_path), "check"]) == 0
    assert "every topic matches its released schema" in capsys.readouterr().out


def test_cli_check_fails_with_a_readable_report_naming_the_new_topic_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A released schema with a field the models no longer have = the models removed it."""
    contracts = copy_contracts(tmp_path)
    path = schema_path(contracts, INTAKE_EVENTS)
    schema = json.loads(path.read_text())
    schema["$defs"]["ConsentRecordedData"]["properties"]["legacy_flag"] = {"type": "boolean"}
    schema["$defs"]["ConsentRecordedData"]["required"].append("legacy_flag")
    path.write_text(dumps(schema))

    assert contracts_cli(["--root", str(tmp_path), "check"]) == 1
    out = capsys.readouterr().out
    assert "kap.intake.events.v1: BREAKING" in out
    assert "ConsentRecorded.data.legacy_flag: field removed" in out
    assert "kap.intake.events.v2" in out

    # release refuses, and --force releases anyway
    assert contracts_cli(["--root", str(tmp_path), "release"]) == 1
    assert contracts_cli(["--root", str(tmp_path), "release", "--force"]) == 0
    assert contracts_cli(["--root", str(tmp_path), "check"]) == 0


def test_cli_release_writes_every_topic(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text("")
    assert contracts_cli(["--root", str(tmp_path), "release"]) == 0
    assert set(load_released(tmp_path / "contracts")) == set(EVENTS_BY_TOPIC)
