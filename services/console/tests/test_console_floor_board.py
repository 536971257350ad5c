"""The floor board in a handful of calls whatever the number of chairs: scheduling's
site day, monitoring's site day (GET /sites/{id}/sessions), notifications' open
escalations and intake's display names (one audited call), read through the
console's real HTTP client against stand-in services."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from kap_console.adapters.services import ServiceApi, Services
from kap_console.domain.floor import CardState
from kap_console.handlers import floor
from kap_shared.auth import Principal
from kap_shared.events.enums import Role

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
SITE = "site-north"
NURSE = Principal(sub="rn-1", role=Role.NURSE, sites=[SITE])
URLS = {s: f"http://{s}.test" for s in ("intake", "scheduling", "monitoring", "notifications")}


def booking(n: int, status: str = "checked_in") -> dict[str, Any]:
    return {
        "session_id": f"s{n}",
        "patient_id": f"p{n}",
        "site_id": SITE,
        "room_id": f"chair-{n}",
        "phase": "dosing",
        "starts_at": (NOW - timedelta(hours=1)).isoformat(),
        "status": status,
    }


def window(n: int, blockers: list[dict[str, Any]]) -> dict[str, Any]:
    first = NOW - timedelta(minutes=70)
    return {
        "session_id": f"s{n}",
        "status": "checked_in",
        "doses": [{"dose_id": f"d{n}"}],
        "first_dose_at": first.isoformat(),
        "dosing_end_at": (first + timedelta(minutes=1)).isoformat(),
        "latest": {"heart_rate": {"value": 70 + n, "recorded_at": NOW.isoformat()}},
        "open_alerts": [],
        "open_safety_concerns": [],
        "discharge": {"allowed": not blockers, "blockers": blockers},
    }


SIGN = {"rule_id": "MON-DIS-3", "message": "no assessment", "clear": "…", "cleared_by": "signature"}
READ = {"rule_id": "KET-DIS-3", "message": "no bp", "clear": "…", "cleared_by": "reading"}
CHAIRS = 12
BOOKINGS = [booking(n) for n in range(CHAIRS)] + [booking(99, status="cancelled")]
WINDOWS = [window(n, [SIGN] if n % 2 else [SIGN, READ]) for n in range(CHAIRS)]
ESCALATION = {"notification_id": "n1", "patient_id": "p3", "status": "open", "level": 1}


def services(
    calls: Counter[str], asked: dict[str, Any], monitoring_status: int = 200
) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        service, path = request.url.host.split(".")[0], request.url.path
        calls[service] += 1
        asked.setdefault(service, []).append(request.url)
        if service == "scheduling" and path == f"/sites/{SITE}/sessions":
            return httpx.Response(200, json=BOOKINGS)
        if service == "scheduling" and path.startswith("/sessions/"):
            return httpx.Response(200, json=booking(int(path.rsplit("s", 1)[1])))
        if service == "monitoring" and monitoring_status != 200:
            error = {"error": {"code": "not_ready", "message": "starting"}}
            return httpx.Response(monitoring_status, json=error)
        if service == "monitoring" and path == f"/sites/{SITE}/sessions":
            return httpx.Response(200, json=WINDOWS)
        if service == "monitoring" and path.startswith("/sessions/"):
            return httpx.Response(200, json=WINDOWS[int(path.rsplit("s", 1)[1])])
        if service == "notifications" and path == "/alerts":
            return httpx.Response(200, json=[ESCALATION])
        if service == "intake" and path == "/patients/display-names":
            ids = request.url.params.get_list("ids")
            names = [{"patient_id": i, "site_id": SITE, "display_name": f"Pat {i}."} for i in ids]
            return httpx.Response(200, json={"patients": names, "not_found": []})
        return httpx.Response(404, json={"error": {"code": "not_found", "message": path}})

    return answer


def api_for(handler: Callable[[httpx.Request], httpx.Response]) -> ServiceApi:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return Services(dict(URLS), client).as_("token")


async def test_a_board_of_twelve_chairs_is_four_calls_one_per_service() -> None:
    calls: Counter[str] = Counter()
    asked: dict[str, Any] = {}

    board = await floor.floor(api_for(services(calls, asked)), NURSE, SITE, NOW, "UTC")

    assert calls == {"scheduling": 1, "monitoring": 1, "notifications": 1, "intake": 1}
    [names_url] = asked["intake"]
    # One audited read for the booked patients (the cancelled booking is not shown).
    assert sorted(names_url.params.get_list("ids")) == sorted(f"p{n}" for n in range(CHAIRS))
    [monitoring_url] = asked["monitoring"]
    assert monitoring_url.params["from"] == "2026-12-01T00:00:00+00:00"
    assert monitoring_url.params["to"] == "2026-12-02T00:00:00+00:00"
    assert [c.session_id for c in board.cards] == [f"s{n}" for n in range(CHAIRS)]
    assert all(c.display_name == f"Pat p{n}." for n, c in enumerate(board.cards))
    assert all(c.state is CardState.OBSERVING for c in board.cards)
    # "Sign discharge" only where monitoring says the signature clears every blocker.
    assert [c.ready_to_sign for c in board.cards] == [bool(n % 2) for n in range(CHAIRS)]
    assert board.cards[3].escalations == [ESCALATION]
    assert board.cards[5].vitals[0].value == "75/min"
    assert board.warnings == []


async def test_monitoring_down_the_board_still_shows_the_bookings_with_a_warning() -> None:
    calls: Counter[str] = Counter()
    handler = services(calls, {}, monitoring_status=503)

    board = await floor.floor(api_for(handler), NURSE, SITE, NOW, "UTC")

    assert len(board.cards) == CHAIRS
    assert not any(c.monitored for c in board.cards)
    assert board.cards[0].state is CardState.CHECKED_IN
    assert board.warnings == ["monitoring: monitoring answered 503 not_ready"]


async def test_names_only_for_bedside_roles_and_one_card_reads_one_name() -> None:
    calls: Counter[str] = Counter()
    asked: dict[str, Any] = {}
    admin = Principal(sub="adm-1", role=Role.ADMIN, sites=[SITE])

    board = await floor.floor(api_for(services(calls, asked)), admin, SITE, NOW, "UTC")
    assert calls["intake"] == 0
    assert board.cards[0].display_name is None

    card = await floor.one_card(api_for(services(calls, asked)), NURSE, "s4", NOW)
    assert card.display_name == "Pat p4."
    assert [u.params.get_list("ids") for u in asked["intake"]] == [["p4"]]
    assert card.vitals[0].value == "74/min"
