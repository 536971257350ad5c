"""The floor page's live updates in a real browser (Debian's Chromium, Playwright): the
console's own pages, templates, `console.js` and htmx, served by uvicorn; the four
services stood in by an HTTP server whose answers the test holds back and changes.

A change event only tells the page which card to fetch again, so what can go wrong is
on the page: a refresh already on its way when the prescriber starts the stability
assessment (it replaced the card and wiped her ticks: in a local run of the end-to-end
console test the signature then lacked "clinically stable"), refreshes of several
cards in one burst (htmx kept only the last one queued behind a held request), a
refresh the console could not answer (a service down: no later change may come to fetch
the card again), and the changes the page's stream did not carry: made while the page
was loading or while its stream was down (sent first once it opens), or that the console
cannot vouch for (the page reads everything it shows again).

Events are handed to the console's hub as its Kafka reader would (the reader itself:
test_console_live_feed.py). Waits are conditions polled by Playwright, never sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from playwright.async_api import Browser, Locator, Page, Route, async_playwright, expect

from kap_console.adapters.live import LiveHub
from kap_console.bootstrap import build
from kap_console.domain.live import LiveEvent
from kap_local import chromium
from kap_shared.events.topics import MONITORING_VITALS
from kap_shared.testing import serving

from .test_console_sign_in import settings

SITE = "site-north"
PRESCRIBER = "dr-north"
SERVICES = ("intake", "scheduling", "monitoring", "notifications")
TIMEOUT_MS = 30_000  # generous for a loaded machine; a broken page never gets there


@dataclass
class StandIn:
    """Scheduling, monitoring, notifications and intake for a floor of checked-in dosing
    sessions, each observed after its dose with only the prescriber's signature missing
    (MON-DIS-3), so her stability assessment form is open. A chair's heart rate is
    `70 + version`: a test changes the version and sees the card follow."""

    chairs: list[str]
    version: dict[str, int] = field(default_factory=dict)
    held: dict[str, asyncio.Event] = field(default_factory=dict)
    failing: dict[str, int] = field(default_factory=dict)  # chair -> 503s scheduling answers
    refused: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)
    boards: int = 0  # reads of the whole board
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        self.version = dict.fromkeys(self.chairs, 1)

    def hold(self, chair: str) -> asyncio.Event:
        """Monitoring answers for `chair` only once the returned event is set."""
        self.held[chair] = asyncio.Event()
        return self.held[chair]

    def booking(self, chair: str) -> dict[str, Any]:
        return {
            "session_id": chair,
            "patient_id": f"p-{chair}",
            "site_id": SITE,
            "room_id": f"room-{chair}",
            "phase": "dosing",
            "starts_at": self.now.isoformat(),
            "status": "checked_in",
        }

    def window(self, chair: str) -> dict[str, Any]:
        dose = self.now - timedelta(minutes=70)
        signature = {
            "rule_id": "MON-DIS-3",
            "message": "no stability assessment by a prescriber",
            "clear": "a prescriber documents the stability assessment",
            "cleared_by": "signature",
        }
        return {
            "session_id": chair,
            "status": "checked_in",
            "doses": [{"dose_id": f"dose-{chair}"}],
            "first_dose_at": dose.isoformat(),
            "dosing_end_at": (dose + timedelta(minutes=1)).isoformat(),
            "bp_check_done": True,
            "latest": {
                "heart_rate": {"value": 70 + self.version[chair], "recorded_at": dose.isoformat()}
            },
            "open_alerts": [],
            "open_safety_concerns": [],
            "discharge": {"allowed": False, "blockers": [signature]},
        }

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/scheduling/sites/{site}/sessions")
        async def bookings(site: str) -> list[dict[str, Any]]:
            self.boards += 1
            return [self.booking(c) for c in self.chairs]

        @app.get("/scheduling/sessions/{chair}", response_model=None)
        async def booking(chair: str) -> dict[str, Any] | JSONResponse:
            if self.failing.get(chair, 0) > 0:
                self.failing[chair] -= 1
                self.refused.append(chair)
                error = {"code": "not_ready", "message": "database unavailable"}
                return JSONResponse({"error": error}, status_code=503)
            return self.booking(chair)

        @app.get("/monitoring/sites/{site}/sessions")
        async def windows(site: str) -> list[dict[str, Any]]:
            return [self.window(c) for c in self.chairs]

        @app.get("/monitoring/sessions/{chair}")
        async def window(chair: str) -> dict[str, Any]:
            self.asked.append(chair)
            if chair in self.held:
                await self.held[chair].wait()
            return self.window(chair)  # as it is when answered

        @app.get("/notifications/alerts")
        async def alerts() -> list[dict[str, Any]]:
            return []

        @app.get("/intake/patients/display-names")
        async def names(request: Request) -> dict[str, Any]:
            ids = request.query_params.getlist("ids")
            return {
                "patients": [
                    {"patient_id": i, "site_id": SITE, "display_name": "A. P."} for i in ids
                ],
                "not_found": [],
            }

        return app


@dataclass
class Floor:
    page: Page
    services: StandIn
    hub: LiveHub

    def card(self, chair: str) -> Locator:
        return self.page.locator(f"#card-{chair}")

    def changed(self, *chairs: str) -> None:
        """New readings for `chairs`: what the console's Kafka reader hands the hub."""
        for chair in chairs:
            self.services.version[chair] += 1
            self.hub.publish(
                LiveEvent(
                    event_type="VitalsRecorded",
                    site_id=SITE,
                    patient_id=f"p-{chair}",
                    session_id=chair,
                    severity=None,
                    topic=MONITORING_VITALS,
                )
            )

    async def shows_heart_rate(self, chair: str, version: int) -> None:
        await expect(self.card(chair)).to_contain_text(f"HR {70 + version}/min", timeout=TIMEOUT_MS)

    async def asked_for(self, chair: str, times: int) -> None:
        async with asyncio.timeout(TIMEOUT_MS / 1000):
            while self.services.asked.count(chair) < times:  # noqa: ASYNC110 - the server's own list
                await asyncio.sleep(0.02)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await chromium.launch(p)
        yield launched
        await launched.close()


@asynccontextmanager
async def open_floor(browser: Browser, chairs: list[str]) -> AsyncIterator[Floor]:
    """A prescriber's floor of `chairs`, live, each card showing its first reading."""
    services = StandIn(chairs)
    async with serving(services.app()) as stand_in:
        console_app = build(
            settings(
                dev_sign_in=True,
                dev_clinicians=f"{PRESCRIBER}:prescriber:{SITE}",
                session_cookie_secure=False,
                sse_keepalive_seconds=1.0,
                api_timeout_seconds=120.0,  # a held answer is a slow service, not a failed one
                **{
                    f"{s}_url": f"{stand_in}/{s}"
                    for s in ("intake", "scheduling", "monitoring", "notifications")
                },
            )
        )
        hub: LiveHub = console_app.state.live_hub
        async with serving(console_app, before_stop=hub.close_all) as console:
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(f"{console}/sign-in")
            await page.get_by_role("button", name="Sign in as this clinician").click()
            await page.goto(f"{console}/floor/{SITE}?day={services.now.date().isoformat()}")
            await expect(page.locator("body[data-live-connected='true']")).to_have_count(
                1, timeout=TIMEOUT_MS
            )
            floor = Floor(page, services, hub)
            for chair in chairs:
                await floor.shows_heart_rate(chair, 1)
            try:
                yield floor
            finally:
                for gate in services.held.values():
                    gate.set()
                await context.close()


@pytest.fixture
async def one_chair(browser: Browser) -> AsyncIterator[Floor]:
    async with open_floor(browser, ["s1"]) as floor:
        yield floor


@pytest.fixture
async def three_chairs(browser: Browser) -> AsyncIterator[Floor]:
    async with open_floor(browser, ["s1", "s2", "s3"]) as floor:
        yield floor


async def test_a_refresh_already_on_its_way_never_wipes_the_assessment_being_filled_in(
    one_chair: Floor,
) -> None:
    floor, card = one_chair, one_chair.card("s1")
    answer = floor.services.hold("s1")
    floor.changed("s1")
    await floor.asked_for("s1", 1)  # the refresh is on its way, held at monitoring

    stable = card.get_by_label("Clinically stable", exact=True)
    await stable.check()  # the prescriber begins the assessment (SPR-DIS-1 / MON-DIS-3)
    await floor.page.evaluate(
        "() => { window.answered = new Promise(r =>"
        " document.addEventListener('htmx:afterRequest', r, {once: true})); }"
    )
    answer.set()
    await floor.page.evaluate("() => window.answered.then(() => true)")

    await expect(stable).to_be_checked()  # not replaced under her hands
    await expect(card).to_contain_text("HR 71/min")
    # Once focus leaves the card the change that waited is shown.
    await floor.page.get_by_role("link", name="Inbox").focus()
    await floor.shows_heart_rate("s1", 2)


async def test_a_burst_of_changes_refreshes_every_card_it_names(three_chairs: Floor) -> None:
    floor = three_chairs
    answer = floor.services.hold("s1")
    floor.changed("s1", "s2", "s3")  # one lingered batch from the console's reader

    # s1's refresh is held; the others are not queued behind it, nor dropped.
    await floor.shows_heart_rate("s2", 2)
    await floor.shows_heart_rate("s3", 2)
    answer.set()
    await floor.shows_heart_rate("s1", 2)


async def test_a_refresh_the_console_could_not_answer_is_tried_again(one_chair: Floor) -> None:
    floor = one_chair
    floor.services.failing["s1"] = 2  # scheduling is down for the first two tries
    floor.changed("s1")  # and no change comes after this one

    await floor.shows_heart_rate("s1", 2)
    assert floor.services.refused == ["s1", "s1"]


@asynccontextmanager
async def stream_held(page: Page) -> AsyncIterator[asyncio.Event]:
    """The page's next live stream reaches the console only once the yielded event is set
    (a slow network, a page still loading its scripts)."""
    gate = asyncio.Event()

    async def hold(route: Route) -> None:
        await gate.wait()
        await route.continue_()

    await page.route("**/live*", hold)
    try:
        yield gate
    finally:
        gate.set()
        await page.unroute("**/live*", hold)


async def connected(page: Page, yes: bool = True) -> None:
    live = "true" if yes else "false"
    await expect(page.locator(f"body[data-live-connected='{live}']")).to_have_count(
        1, timeout=TIMEOUT_MS
    )


async def test_a_change_made_while_the_page_loaded_is_shown_once_its_stream_opens(
    one_chair: Floor,
) -> None:
    floor = one_chair
    async with stream_held(floor.page) as stream:
        await floor.page.reload()
        await floor.shows_heart_rate("s1", 1)  # the page as rendered
        floor.changed("s1")  # a reading arrives before the page's stream opened
        stream.set()
        await floor.shows_heart_rate("s1", 2)


async def test_a_stream_that_was_down_is_sent_what_it_missed_without_reading_the_board(
    one_chair: Floor,
) -> None:
    floor = one_chair
    boards = floor.services.boards
    async with stream_held(floor.page) as stream:
        floor.hub.close_all()  # the stream ends (a lost network, say) ...
        await connected(floor.page, False)
        floor.changed("s1")  # ... and a reading arrives before it is back
        stream.set()
        await floor.shows_heart_rate("s1", 2)
    await connected(floor.page)
    assert floor.services.boards == boards  # the one card missed, not the whole board


async def test_when_the_console_cannot_say_what_was_missed_the_page_reads_the_board_again(
    one_chair: Floor,
) -> None:
    floor = one_chair
    floor.hub.gap()  # the console's reader rejoined the topics: events may be lost ...
    floor.services.version["s1"] += 1  # ... such as this reading's, never announced
    await floor.shows_heart_rate("s1", 2)
    await connected(floor.page)
