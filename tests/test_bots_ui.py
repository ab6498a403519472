"""The host page's "Invite the bot" panel in real headless Chromium.

The real app is served on loopback (no analyzers loaded) and the host page is opened
with its host link, so every call the panel makes goes with the host cookie. The host
fills the form as a person would:

* a Janus server that cannot be reached: the API's error shows under the form, and the
  bot is listed as failed;
* a WHEP endpoint that this test serves (an aiohttp app speaking the standard flow: the
  client POSTs its offer, gets 201 with the answer and a ``Location``, DELETEs it to
  leave), relaying an aiortc sender of a real face: the bot is listed "In room · 1
  person", its stream appears as a participant card, and Remove makes it leave.

Screenshots at 400 px wide go to the test's ``tmp_path``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from bot.bench_sidebar import wait_for_js
from bot.meeting import MeetingManager
from tests.conftest import make_settings
from tests.fixtures import open_host_link
from tests.remote import WhepEndpoint
from web.app import create_app

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("loopback_only")]

WIDTH_PX = 400


@pytest.fixture
async def served(aiohttp_server: Any, tmp_path: Path) -> AsyncIterator[tuple[str, MeetingManager]]:
    """The real app on a loopback port, with no models to load; yields (base URL, manager)."""
    settings = make_settings(tmp_path, **{"analyzers.enabled": [], "bots.reconnect_max_secs": 1.0})
    manager = MeetingManager(settings)
    server = await aiohttp_server(create_app(settings, manager))
    yield str(server.make_url("")).rstrip("/"), manager


@pytest.fixture
async def whep(aiohttp_server: Any) -> AsyncIterator[tuple[str, WhepEndpoint]]:
    endpoint = WhepEndpoint(token=None)
    server = await aiohttp_server(endpoint.app())
    yield str(server.make_url("/whep/stage")), endpoint


#: Records every state the invite form goes through: [aria-busy, button text, disabled].
BUSY_RECORDER = """() => {
  const form = document.getElementById('bot-form');
  const button = document.getElementById('bot-submit');
  window.__busy = [];
  const note = () => window.__busy.push(
    [form.getAttribute('aria-busy'), button.textContent, button.disabled]);
  const observer = new MutationObserver(note);
  observer.observe(form, {attributes: true, subtree: true, childList: true, characterData: true});
}"""


#: Records every state text the bots' list shows, in order, in ``window.__states``.
STATE_RECORDER = """() => {
  window.__states = [];
  const list = document.getElementById('bots');
  const note = () => {
    for (const node of list.querySelectorAll('.bot-state')) window.__states.push(node.textContent);
  };
  new MutationObserver(note).observe(list, {childList: true, subtree: true, characterData: true});
}"""


async def open_host(
    browser: Browser, base: str, meeting_id: str, token: str
) -> tuple[Page, list[str]]:
    """The host page at 400 px wide, live; with its page errors (CSP violations included)."""
    page = await browser.new_page(viewport={"width": WIDTH_PX, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console", lambda m: errors.extend([m.text] if "Content Security Policy" in m.text else [])
    )
    await open_host_link(page, base, meeting_id, token)
    return page, errors


async def test_an_unreachable_janus_server_shows_the_apis_error(
    served: tuple[str, MeetingManager], browser: Browser, tmp_path: Path
) -> None:
    base, manager = served
    record, token = await manager.create_meeting("Standup")
    page, errors = await open_host(browser, base, record.id, token)
    panel = page.locator("#bots-panel")
    await expect(panel).to_contain_text(
        "People in the room never saw meetmood's notice: you are responsible for telling them."
    )
    # Janus is the default kind: its fields show, WHEP's token does not.
    await expect(page.get_by_label("Janus VideoRoom")).to_be_checked()
    await expect(page.get_by_label("Room id")).to_be_visible()
    await expect(page.locator("#bot-token")).to_be_hidden()
    await expect(page.get_by_label("Display name (optional)")).to_have_attribute(
        "placeholder", "meetmood — emotion analysis"
    )

    # No room id: said at once, next to the field, without a request.
    await page.get_by_label("URL", exact=True).fill("http://127.0.0.1:9/janus")
    await page.get_by_role("button", name="Invite the bot").click()
    await expect(page.locator("#bot-error")).to_have_text("Enter the VideoRoom's id.")
    await expect(page.get_by_label("Room id")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("Room id")).to_be_focused()

    await page.get_by_label("Room id").fill("1234")
    await page.get_by_label("Pin (if the room has one)").fill("secret-pin")
    async with page.expect_response(re.compile(r"/bots$")) as answer:
        await page.get_by_role("button", name="Invite the bot").click()
    response = await answer.value
    assert response.status == 502
    body = await response.json()
    error = page.locator("#bot-error")
    await expect(error).to_be_visible()
    await expect(error).to_have_text(f"The bot could not join: {body['error']['message']}")
    assert body["error"]["message"].startswith("unreachable: ")
    await expect(page.locator("#bot-status")).to_have_text("")
    await expect(page.get_by_role("button", name="Invite the bot")).to_be_enabled()
    # The failed bot is listed with why, and has nothing to remove.
    item = page.locator("#bots .bot")
    await expect(item).to_have_count(1)
    await expect(item).to_have_attribute("data-state", "failed")
    await expect(item.locator(".bot-state")).to_have_text(re.compile(r"^Failed: .+"))
    await expect(item.locator(".bot-where")).to_have_text(
        "Janus · http://127.0.0.1:9/janus · room 1234"
    )
    await expect(item.locator(".bot-name")).to_have_text("meetmood — emotion analysis")
    await expect(item.get_by_role("button", name=re.compile("^Remove"))).to_have_count(0)
    await expect(page.locator("#bots-none")).to_be_hidden()
    # The pin never reaches the page's list (nor the address shown).
    assert "secret-pin" not in await panel.inner_text()
    await page.screenshot(path=str(tmp_path / "bot-error.png"), full_page=True)
    assert errors == []
    await page.close()


async def test_a_whep_stream_joins_as_a_participant_and_leaves_on_remove(
    served: tuple[str, MeetingManager],
    whep: tuple[str, WhepEndpoint],
    browser: Browser,
    tmp_path: Path,
) -> None:
    base, manager = served
    whep_url, endpoint = whep
    record, token = await manager.create_meeting("Town hall")
    page, errors = await open_host(browser, base, record.id, token)

    await page.get_by_label("WHEP stream").check()
    await expect(page.get_by_label("Room id")).to_be_hidden()
    await expect(page.get_by_label("Token (if the endpoint needs one)")).to_be_visible()
    display = page.get_by_label("Display name (optional)")
    await expect(display).to_have_attribute("placeholder", "WHEP stream")
    await page.get_by_label("URL", exact=True).fill(whep_url)
    await display.fill("Stage camera")
    # Busy while it joins (the button says so and cannot be pressed twice): recorded as it
    # happens, since a loopback join can be over before a poll would look.
    await page.evaluate(BUSY_RECORDER)
    async with page.expect_response(re.compile(r"/bots$")) as answer:
        await page.get_by_role("button", name="Invite the bot").click()
    assert (await answer.value).status == 201
    busy = await page.evaluate("window.__busy")
    assert ["true", "Joining…", True] in busy
    await expect(page.locator("#bot-form")).to_have_attribute("aria-busy", "false")
    await expect(page.locator("#bot-error")).to_be_hidden()
    await expect(page.locator("#bot-status")).to_have_text("The stream is coming in.")

    item = page.locator("#bots .bot")
    await expect(item).to_have_count(1)
    await expect(item.locator(".bot-state")).to_have_text("In room · 1 person")
    await expect(item.locator(".bot-name")).to_have_text("Stage camera")
    await expect(item.locator(".bot-where")).to_have_text(f"WHEP · {whep_url}")
    # The stream is a participant like any other, by the name the host gave it.
    card = page.locator("#people .participant-card", has_text="Stage camera")
    await expect(card).to_have_count(1)
    assert len(endpoint.sessions) == 1
    await page.screenshot(path=str(tmp_path / "bot-in-room.png"), full_page=True)

    # The endpoint drops the stream: the bot says it is reconnecting, pulls again, and the
    # pause shows as a media gap of the same participant.
    await page.evaluate(STATE_RECORDER)
    await endpoint.drop()
    await wait_for_js(
        page, "window.__states.some((s) => s.startsWith('Reconnecting… ('))", timeout_ms=20_000
    )
    await expect(item.locator(".bot-state")).to_have_text("In room · 1 person", timeout=20_000)
    gap = page.locator("#moments .moment[data-kind='media_gap']")
    await expect(gap).to_have_count(1)
    await expect(gap.locator(".m-what")).to_have_text(
        re.compile(r"^Stage camera's media paused (under a second|\d+ s) \(reconnecting\)$")
    )
    await expect(card).to_have_count(1)
    await expect(card).not_to_have_class(re.compile(r"\bis-left\b"))
    assert len(endpoint.sessions) == 1
    await page.screenshot(path=str(tmp_path / "bot-resumed.png"), full_page=True)

    await item.get_by_role("button", name=f"Remove Stage camera ({whep_url})").click()
    await expect(item).to_have_attribute("data-state", "left")
    await expect(item.locator(".bot-state")).to_have_text("Left")
    await expect(item.get_by_role("button")).to_have_count(0)
    await expect(page.locator("#bots-status")).to_have_text("The bot left.")
    await expect(card).to_have_class(re.compile(r"\bis-left\b"))
    assert endpoint.sessions == {} and len(endpoint.deleted) == 1  # the bot DELETEd its session
    bots = await page.evaluate("window.sidebarBots.bots")
    assert [(b["state"], b["display_name"]) for b in bots] == [("left", "Stage camera")]

    # A reload rebuilds the list from the snapshot.
    await page.reload()
    await wait_for_js(page, "window.sidebar.socketState === 'live'", timeout_ms=10_000)
    await expect(page.locator("#bots .bot .bot-state")).to_have_text("Left")
    assert errors == []
    await page.close()
