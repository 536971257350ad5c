"""The console against monitoring 0.3.0 and records: which discharge blockers the
prescriber's signed stability assessment clears (the card offers "Sign discharge" only
then), what holds doses, the dose body and its charted clock times, and the records
responses as records documents them (Timeline JSON, PMF JSON `{"forms": [...]}`),
read through the console's real HTTP client against a stub records server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from kap_console.adapters.services import ServiceApi, Services
from kap_console.domain.floor import build_card, cleared_by_signing
from kap_console.entrypoints.web import TEMPLATES
from kap_console.handlers import actions, journey, lists
from kap_shared.auth import Principal
from kap_shared.events.enums import Role

from .factories import NOW, booking, window


def _window(blockers: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    """Seventy minutes after the dose, held by `blockers`."""
    discharge = {"allowed": not blockers, "blockers": blockers}
    return window(70, discharge=discharge, **changes)


# Blockers as monitoring names them, with what clears them (`cleared_by`).
SIGNATURE = {
    "rule_id": "MON-DIS-3",
    "message": "no stability assessment signed yet",
    "clear": "…",
    "cleared_by": "signature",
}
ESCORT = {"rule_id": "KET-DIS-5", "cleared_by": "signature"}
ALDRETE = {"rule_id": "KET-DIS-1", "cleared_by": "signature"}
NO_RR = {"rule_id": "KET-DIS-3", "message": "no rr reading", "cleared_by": "reading"}
NO_DISSOCIATION = {"rule_id": "SPR-GOAL", "message": "no dissociation", "cleared_by": "reading"}
ASSESSED_UNRESOLVED = {"rule_id": "SPR-GOAL", "fields": ["x"], "cleared_by": "signature"}
CRITICAL_OPEN = {"rule_id": "MON-DIS-2", "cleared_by": "alert_decision"}
OBSERVING = {"rule_id": "KET-DIS-6", "discharge_allowed_at": NOW.isoformat(), "cleared_by": "time"}


@pytest.mark.parametrize(
    ("blockers", "ready"),
    [
        ([SIGNATURE], True),
        ([SIGNATURE, ESCORT, ALDRETE], True),
        ([{**SIGNATURE, "rule_id": "SPR-DIS-1"}, ASSESSED_UNRESOLVED], True),
        ([SIGNATURE, NO_RR], False),  # a reading is missing: signing would not clear it
        ([SIGNATURE, NO_DISSOCIATION], False),  # SPR-GOAL from a reading, not the assessment
        ([SIGNATURE, CRITICAL_OPEN], False),  # an open critical alert
        ([SIGNATURE, OBSERVING], False),
        # Fail closed: a blocker that does not say what clears it is not the signature's.
        ([SIGNATURE, {"rule_id": "SPR-DIS-1"}], False),
    ],
)
def test_spr_dis_1_mon_dis_3_sign_discharge_offered_only_when_signing_clears_every_blocker(
    blockers: list[dict[str, Any]], ready: bool
) -> None:
    card = build_card(booking(), _window(blockers), [], NOW)
    assert card.ready_to_sign is ready
    assert card.blockers == blockers  # every blocker shown, as monitoring named it
    assert not card.discharge_allowed


def test_card_shows_each_blocker_with_what_clears_it_and_signs_for_prescribers() -> None:
    blockers = [
        {
            "rule_id": "MON-DIS-3",
            "message": "no stability assessment signed yet",
            "clear": "a prescriber documents the stability assessment",
            "cleared_by": "signature",
        },
    ]
    card = build_card(booking(), _window(blockers), [], NOW)
    page = TEMPLATES.get_template("partials/card.html")
    prescriber = Principal(sub="rx-1", role=Role.PRESCRIBER, sites=["site-north"])
    html = page.render(card=card, me=prescriber, now=NOW, csrf_token="t")
    assert "MON-DIS-3" in html
    assert "to clear: a prescriber documents the stability assessment" in html
    assert "Sign discharge" in html
    assert "Clinically stable" in html
    nurse = Principal(sub="rn-1", role=Role.NURSE, sites=["site-north"])
    html = page.render(card=card, me=nurse, now=NOW, csrf_token="t")
    assert "Request discharge" in html
    assert "Sign discharge" not in html


def test_spr_goal_blocker_cleared_by_a_reading_is_not_the_signatures() -> None:
    assert not cleared_by_signing(NO_DISSOCIATION)
    assert cleared_by_signing(ASSESSED_UNRESOLVED)


def test_doses_held_by_open_critical_alert_and_mbc_1_concern_dissociation_shown() -> None:
    window = _window(
        [SIGNATURE],
        open_alerts=[
            {"alert_id": "a1", "rule_id": "KET-MON-SPO2", "severity": "critical"},
            {"alert_id": "a2", "rule_id": "KET-MON-RR-SOFT", "severity": "warning"},
        ],
        open_safety_concerns=[{"concern_id": "c1", "rule_id": "MBC-1", "severity": "high"}],
        dissociation={"value": "mild", "cadss_total": 6, "recorded_at": NOW.isoformat()},
    )
    card = build_card(booking(), window, [], NOW)
    assert card.doses_held_by == ["KET-MON-SPO2", "MBC-1"]
    assert [c["concern_id"] for c in card.concerns] == ["c1"]
    assert card.dissociation == "mild (CADSS 6)"


def test_charted_clock_time_is_its_latest_occurrence_not_after_now() -> None:
    assert actions.charted_time("14:25", NOW, "UTC") == NOW - timedelta(minutes=35)
    # 15:30 has not come yet today: the nurse charts yesterday's (monitoring then judges
    # the window, MON-DOSE-2).
    assert actions.charted_time("15:30", NOW, "UTC") == NOW - timedelta(hours=23, minutes=30)
    assert actions.charted_time("10:00", NOW, "America/New_York") == NOW  # 10:00 EST


def test_dose_body_spr_pre_7_empty_list_means_asked_none_and_absent_means_not_recorded() -> None:
    base: dict[str, Any] = {
        "route": "intranasal_esketamine",
        "agent": "esketamine",
        "dose_mg": 28,
        "device_number": 1,
        "administered_at": None,
        "dosing_ended_at": None,
        "lot_number": "LOT-1",
        "nasal_medication_used": False,
        "nasal_medication_at": None,
    }
    asked = actions.dose_body(**base, concomitant_medications=[])
    assert asked["concomitant_medications"] == []
    assert asked["nasal_medication_used"] is False
    assert "administered_at" not in asked  # monitoring's default: now
    not_asked = actions.dose_body(**base, concomitant_medications=None)
    assert "concomitant_medications" not in not_asked


# -- records' responses, through the console's HTTP client ------------------------------------


def _entry(event_type: str, at: str, **data: Any) -> dict[str, Any]:
    return {
        "entry_id": f"{event_type}-{at}",
        "event_type": event_type,
        "topic": "kap.monitoring.events.v1",
        "occurred_at": at,
        "phase": "dosing",
        "session_id": None,
        "summary": f"{event_type} summary",
        "rule_ids": [],
        "links": {},
        "data": data,
    }


TIMELINE = {
    "patient_id": "p1",
    "total": 3,
    "offset": 0,
    "limit": 200,
    "next_offset": None,
    "phases": [{"phase": "dosing", "entry_ids": []}],
    "entries": [
        _entry("PatientScreened", "2026-11-20T10:00:00.000000Z"),
        _entry("OutcomeRecorded", "2026-11-27T10:00:00.000000Z", instrument="PHQ-9", total=9.0),
        _entry("OutcomeRecorded", "2026-11-30T10:00:00.000000Z", instrument="PHQ-9", total=4.0),
    ],
}


def _form(pmf_id: str, patient_id: str, due_by: str) -> dict[str, Any]:
    return {
        "pmf_id": pmf_id,
        "session_id": f"s-{pmf_id}",
        "patient_id": patient_id,
        "site_id": "site-north",
        "status": "incomplete",
        "rule_id": "SPR-PMF-1",
        "due_by": due_by,
        "missing_fields": ["bp_40_min"],
        "fields": {},
        "submission": None,
    }


FORMS = {
    "forms": [
        _form("late", "p1", "2026-12-08T14:00:00+00:00"),
        _form("soon", "p2", "2026-12-03T09:00:00+00:00"),
        _form("mid", "p1", "2026-12-05T09:00:00+00:00"),
    ]
}


def _records(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/patients/p1/timeline":
        return httpx.Response(200, json=TIMELINE)
    if request.url.path == "/pmf":
        return httpx.Response(200, json=FORMS)
    if request.url.path == "/alerts":
        return httpx.Response(200, json=[])
    if request.url.path == "/patients/p1":  # intake: the screening baseline
        screening = {"scores": {"PHQ-9": {"total": 16}, "GAD-7": {"total": 12}}}
        return httpx.Response(200, json={"site_id": "site-north", "screenings": [screening]})
    return httpx.Response(404, content=json.dumps({"error": {"code": "not_found"}}))


@pytest_asyncio.fixture
async def api() -> AsyncIterator[ServiceApi]:
    base = "http://stub"
    urls: dict[str, str | None] = {
        "records": base,
        "notifications": base,
        "intake": base,
        "scheduling": base,
    }
    async with httpx.AsyncClient(transport=httpx.MockTransport(_records)) as client:
        yield Services(urls, client).as_("token")


async def test_journey_reads_records_timeline_entries_and_phq9_trend(api: ServiceApi) -> None:
    principal = Principal(sub="th-1", role=Role.THERAPIST, sites=["site-north"])
    found = await journey.journey(api, principal, "p1")
    assert [e["event_type"] for e in found.timeline or []] == [
        "PatientScreened",
        "OutcomeRecorded",
        "OutcomeRecorded",
    ]
    assert found.timeline_message is None
    phq9 = found.trends[0]
    assert (phq9.instrument, phq9.baseline, phq9.points) == (
        "PHQ-9",
        16,
        [("2026-11-27", 9), ("2026-11-30", 4)],
    )
    assert phq9.remitted  # 4 < 5 (MBC-3)
    assert [f["pmf_id"] for f in found.pmf or []] == ["mid", "late"]  # this patient's only


async def test_coordinator_pmf_worklist_by_deadline(api: ServiceApi) -> None:
    work = await lists.coordinator(api, "site-north")
    assert work.pmf_message is None
    assert [f["pmf_id"] for f in work.pmf or []] == ["soon", "mid", "late"]
