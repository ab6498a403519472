"""Web hardening, probed against the real app as an attacker and as a host would.

Security headers on every kind of response; who may create meetings (admin token,
admin cookie, open creation); CSRF on the forms; the host's token leaving URLs for an
HttpOnly cookie that the page, its socket and its API calls use; the sidebar socket
limit; and bad tokens and bodies answered with a 4xx instead of a 500. The cross-site
link to the host page is followed in real Chromium, where SameSite is enforced.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from bot.admin_token import admin_token_path, read_admin_hash
from bot.bench_sidebar import wait_for_js
from bot.cli import _print_admin_token, main
from bot.settings import Settings
from bot.store import tokens_equal
from tests.conftest import ADMIN, ADMIN_TOKEN, make_settings
from tests.fixtures import chromium
from web.app import create_app
from web.keys import MANAGER
from web.security import API_CSP, PAGE_CSP, REPORT_CSP

pytestmark = pytest.mark.unit

#: No models: these tests are about the web layer.
LIGHT = {"analyzers.enabled": [], "voice.enabled": False}


def light_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return make_settings(tmp_path, **(LIGHT | overrides))


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await aiohttp_client(create_app(light_settings(tmp_path)))
    return client


async def new_meeting(client: TestClient[Any, Any]) -> dict[str, Any]:
    resp = await client.post("/api/meetings", json={"name": "Retro"}, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    meeting: dict[str, Any] = await resp.json()
    return meeting


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def join_token(meeting: dict[str, Any]) -> str:
    return str(meeting["join_url"].split("token=")[1])


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "the form has no CSRF token"
    return m.group(1)


def set_cookies(resp: aiohttp.ClientResponse) -> list[str]:
    return resp.headers.getall("Set-Cookie", [])


async def expect_error(resp: aiohttp.ClientResponse, status: int, code: str) -> str:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert body["error"]["code"] == code, body
    return str(body["error"]["message"])


# -- headers ------------------------------------------------------------------------------


def assert_common_headers(resp: aiohttp.ClientResponse) -> None:
    h = resp.headers
    assert h["Server"] == "meetmood", h.get("Server")  # no versions to look up
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "no-referrer"
    assert h["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"]


async def test_every_kind_of_response_has_the_security_headers(
    client: TestClient[Any, Any],
) -> None:
    meeting = await new_meeting(client)
    mid, host = meeting["id"], bearer(meeting["host_token"])
    pages = [
        await client.get("/"),
        await client.get(f"/join/{mid}?token={join_token(meeting)}"),
        await client.get(meeting["host_url"].split(str(client.make_url("")))[1]),
        await client.get(f"/host/{mid}"),  # the sidebar, by the cookie just set
        await client.get("/join/nope?token=x"),  # an error page
    ]
    for resp in pages:
        assert resp.content_type == "text/html"
        assert_common_headers(resp)
        assert resp.headers["Content-Security-Policy"] == PAGE_CSP
        assert resp.headers["Cache-Control"] == "no-store"  # they carry tokens
    api = [
        await client.get(f"/api/meetings/{mid}", headers=host),
        await client.get(f"/api/meetings/{mid}"),  # a JSON error
        await client.get("/api/nothing-here"),  # the router's 404
        await client.get("/healthz"),
        await client.get(f"/api/meetings/{mid}/report?format=csv", headers=host),  # streamed
        await client.get(f"/api/meetings/{mid}/report?format=json", headers=host),
    ]
    for resp in api:
        assert_common_headers(resp)
        assert resp.headers["Content-Security-Policy"] == API_CSP
        assert resp.headers["Cache-Control"] == "no-store"
    report = await client.get(f"/api/meetings/{mid}/report?format=html", headers=host)
    assert_common_headers(report)
    assert report.headers["Content-Security-Policy"] == REPORT_CSP
    assert "attachment" in report.headers["Content-Disposition"]
    assert 'http-equiv="Content-Security-Policy" content="default-src \'none\'' in (
        await report.text()
    )
    static = await client.get("/static/sidebar.js")
    assert_common_headers(static)
    assert "no-store" not in static.headers.get("Cache-Control", "")  # cacheable
    async with client.ws_connect(f"/api/meetings/{mid}/ws", headers=host) as ws:
        assert ws._response.headers["Server"] == "meetmood"
        assert (await ws.receive_json())["type"] == "snapshot"


async def test_pages_need_no_inline_script_or_style(client: TestClient[Any, Any]) -> None:
    """The strict CSP holds only if no page relies on what it forbids."""
    assert "'unsafe-inline'" not in PAGE_CSP and "'unsafe-eval'" not in PAGE_CSP
    meeting = await new_meeting(client)
    mid = meeting["id"]
    host_open = await client.get(meeting["host_url"].split(str(client.make_url("")))[1])
    pages = [
        await client.get("/"),
        await client.get(f"/join/{mid}?token={join_token(meeting)}"),
        host_open,
        await client.get(f"/host/{mid}"),
        await client.get("/host/nope"),
    ]
    for resp in pages:
        html = await resp.text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
        assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
        assert not re.search(r"\sstyle\s*=", html), "style attribute"
        assert "<style" not in html


# -- creating meetings --------------------------------------------------------------------


async def test_creating_a_meeting_needs_the_admin_token(client: TestClient[Any, Any]) -> None:
    await expect_error(await client.post("/api/meetings", json={}), 401, "admin_token_required")
    resp = await client.post("/api/meetings", json={}, headers=bearer("wrong"))
    await expect_error(resp, 403, "admin_token_invalid")
    resp = await client.post("/api/meetings", json={}, headers=bearer("é-not-ascii"))
    await expect_error(resp, 403, "admin_token_invalid")
    assert (await client.post("/api/meetings", json={}, headers=ADMIN)).status == 201
    # Nothing was created by the refused requests.
    assert len(await client.app[MANAGER].store.list_meetings()) == 1


async def test_open_creation_on_a_trusted_network(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = light_settings(tmp_path, **{"security.open_creation": True})
    client = await aiohttp_client(create_app(settings))
    assert (await client.post("/api/meetings", json={})).status == 201
    home = await (await client.get("/")).text()
    assert 'name="admin_token"' not in home


async def test_server_without_an_admin_token_refuses_creation(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    settings = light_settings(tmp_path)
    admin_token_path(settings.storage).unlink()
    client = await aiohttp_client(create_app(settings))
    message = await expect_error(
        await client.post("/api/meetings", json={}, headers=ADMIN), 403, "admin_token_missing"
    )
    assert "meetmood admin-token" in message


async def test_home_form_takes_the_admin_token_once_then_a_cookie(
    client: TestClient[Any, Any],
) -> None:
    home = await (await client.get("/")).text()
    assert 'name="admin_token"' in home and 'type="password"' in home
    csrf = csrf_of(home)
    # Without the admin token: the home page again, saying what is missing.
    resp = await client.post("/meetings", data={"name": "A", "csrf_token": csrf})
    assert resp.status == 401
    assert "Admin token: creating a meeting needs the admin token" in await resp.text()
    resp = await client.post(
        "/meetings", data={"name": "A", "csrf_token": csrf, "admin_token": "wrong"}
    )
    assert resp.status == 403 and "the admin token is not valid" in await resp.text()
    # With it: a meeting, the host cookie and the admin cookie; no token in the address.
    form = {"name": "A", "csrf_token": csrf, "admin_token": ADMIN_TOKEN}
    resp = await client.post("/meetings", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert "token" not in resp.headers["Location"]
    cookies = " | ".join(set_cookies(resp))
    assert "meetmood_admin=" in cookies and ADMIN_TOKEN not in cookies
    for cookie in set_cookies(resp):
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert (await client.get(resp.headers["Location"])).status == 200
    # Signed in: no token field any more, and the form works without it.
    home = await (await client.get("/")).text()
    assert 'name="admin_token"' not in home
    resp = await client.post("/meetings", data={"name": "B", "csrf_token": csrf_of(home)})
    assert resp.status == 200 and "B · meetmood sidebar" in await resp.text()


async def test_a_new_admin_token_signs_browsers_out(
    client: TestClient[Any, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = await (await client.get("/")).text()
    form = {"csrf_token": csrf_of(home), "admin_token": ADMIN_TOKEN}
    assert (await client.post("/meetings", data=form)).status == 200
    # `meetmood admin-token` on the same data directory, while the server runs.
    assert main(["admin-token", "--database", str(tmp_path / "meetmood.sqlite3")]) == 0
    new = re.search(r"admin token: (\S+)", capsys.readouterr().out)
    assert new
    path = tmp_path / "admin-token.sha256"
    assert new.group(1) not in path.read_text() and read_admin_hash(path)  # only the hash
    home = await (await client.get("/")).text()
    assert 'name="admin_token"' in home  # the old cookie no longer counts
    resp = await client.post("/meetings", data={"csrf_token": csrf_of(home)})
    assert resp.status == 401
    await expect_error(
        await client.post("/api/meetings", headers=ADMIN), 403, "admin_token_invalid"
    )
    assert (await client.post("/api/meetings", headers=bearer(new.group(1)))).status == 201


# -- CSRF ---------------------------------------------------------------------------------


async def test_forms_need_their_csrf_token(client: TestClient[Any, Any]) -> None:
    home = await (await client.get("/")).text()
    form = {"name": "A", "admin_token": ADMIN_TOKEN}
    for data in (form, form | {"csrf_token": "forged"}):
        resp = await client.post("/meetings", data=data)
        assert resp.status == 403
        assert "sent from another site" in await resp.text()
    # The right token, but sent from another site's page.
    resp = await client.post(
        "/meetings",
        data=form | {"csrf_token": csrf_of(home)},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert resp.status == 403
    # Another browser's token does not fit this browser's cookie.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        other_home = await (await other.get(client.make_url("/"))).text()
    resp = await client.post("/meetings", data=form | {"csrf_token": csrf_of(other_home)})
    assert resp.status == 403
    assert await client.app[MANAGER].store.list_meetings() == []
    assert (await client.post("/meetings", data=form | {"csrf_token": csrf_of(home)})).status == 200


async def test_recording_upload_needs_csrf_and_the_admin_token(
    client: TestClient[Any, Any],
) -> None:
    def upload(**fields: str) -> aiohttp.FormData:
        form = aiohttp.FormData()
        for k, v in fields.items():
            form.add_field(k, v)
        form.add_field("file", b"not read", filename="x.mp4")
        return form

    home = await (await client.get("/")).text()
    csrf = csrf_of(home)
    resp = await client.post("/api/recordings", data=upload())
    await expect_error(resp, 403, "csrf_failed")
    resp = await client.post("/api/recordings", data=upload(), headers={"X-CSRF-Token": "x"})
    await expect_error(resp, 403, "csrf_failed")
    resp = await client.post("/api/recordings", data=upload(csrf_token=csrf))
    await expect_error(resp, 401, "admin_token_required")
    resp = await client.post("/api/recordings", data=upload(), headers={"X-CSRF-Token": csrf})
    await expect_error(resp, 401, "admin_token_required")
    resp = await client.post("/api/recordings", data=upload(csrf_token=csrf, admin_token="wrong"))
    await expect_error(resp, 403, "admin_token_invalid")
    # API clients: the admin token as a Bearer header, no CSRF token.
    resp = await client.post("/api/recordings", data=upload(), headers=bearer("wrong"))
    await expect_error(resp, 403, "admin_token_invalid")
    resp = await client.post("/api/recordings", data=upload(), headers=ADMIN)
    assert resp.status == 202
    # From the page: the token typed once signs the browser in as the admin.
    resp = await client.post(
        "/api/recordings", data=upload(csrf_token=csrf, admin_token=ADMIN_TOKEN)
    )
    assert resp.status == 202 and "meetmood_admin=" in " ".join(set_cookies(resp))


# -- the host's credential ----------------------------------------------------------------


async def test_host_link_sets_a_cookie_and_leaves_the_address(
    client: TestClient[Any, Any],
) -> None:
    meeting = await new_meeting(client)
    mid, token = meeting["id"], meeting["host_token"]
    resp = await client.get(f"/host/{mid}?token={token}", allow_redirects=False)
    assert resp.status == 200
    html = await resp.text()
    assert f'http-equiv="refresh" content="0; url=/host/{mid}"' in html
    cookies = set_cookies(resp)
    assert sorted(re.search(r"Path=([^;]+)", c).group(1) for c in cookies) == [  # type: ignore[union-attr]
        f"/api/meetings/{mid}",
        f"/host/{mid}",
    ]
    for cookie in cookies:
        assert cookie.startswith("meetmood_host=")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert "Secure" not in cookie  # plain http on loopback
    # The sidebar page, by the cookie: the token appears nowhere in it.
    page = await client.get(f"/host/{mid}")
    assert page.status == 200 and token not in await page.text()
    # Its API calls and its socket, by the cookie too.
    assert (await client.get(f"/api/meetings/{mid}")).status == 200
    resp = await client.post(
        f"/api/meetings/{mid}/summaries", headers={"Origin": str(client.make_url("")).rstrip("/")}
    )
    assert resp.status == 201
    async with client.ws_connect(f"/api/meetings/{mid}/ws") as ws:
        assert (await ws.receive_json())["type"] == "snapshot"
    # ... but not from another site's page.
    resp = await client.post(
        f"/api/meetings/{mid}/summaries", headers={"Origin": "https://evil.example"}
    )
    await expect_error(resp, 403, "cross_site")
    resp = await client.post(
        f"/api/meetings/{mid}/questions",
        json={"question": "who spoke?"},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    await expect_error(resp, 403, "cross_site")
    resp = await client.get(f"/api/meetings/{mid}/ws", headers={"Origin": "https://evil.example"})
    await expect_error(resp, 403, "origin_not_allowed")


async def test_api_takes_no_token_in_the_query(client: TestClient[Any, Any]) -> None:
    meeting = await new_meeting(client)
    mid, token = meeting["id"], meeting["host_token"]
    for path in (f"/api/meetings/{mid}", f"/api/meetings/{mid}/ws", f"/api/meetings/{mid}/states"):
        message = await expect_error(
            await client.get(f"{path}?token={token}"), 401, "token_in_query"
        )
        assert "Authorization: Bearer" in message
    # Another meeting's host cookie opens nothing here.
    other = await new_meeting(client)
    await client.get(f"/host/{other['id']}?token={other['host_token']}")
    await expect_error(await client.get(f"/api/meetings/{mid}"), 401, "token_missing")


@pytest.mark.e2e  # real Chromium
async def test_cross_site_link_to_the_host_page_works_in_chromium(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    """A host link clicked on another site (mail, chat): SameSite=Strict must not lock out."""
    server = await aiohttp_server(create_app(light_settings(tmp_path)))
    record, token = await server.app[MANAGER].create_meeting("Board")
    port = server.port
    async with chromium() as browser:
        page = await browser.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        await page.goto(f"http://localhost:{port}/healthz")  # "another site": localhost
        link = f"http://127.0.0.1:{port}/host/{record.id}?token={token}"
        await page.evaluate("(url) => { location.href = url; }", link)
        await page.wait_for_url(f"http://127.0.0.1:{port}/host/{record.id}")
        await wait_for_js(page, "window.sidebar.socketState === 'live'", timeout_ms=10_000)
        assert await page.title() == "Board · meetmood sidebar"
        await page.go_back()
        assert page.url == f"http://localhost:{port}/healthz"  # the token is not in history
    assert not [m for m in console if "Content Security Policy" in m or "401" in m], console


@pytest.mark.e2e  # real Chromium
async def test_home_form_in_chromium_signs_in_once_and_reaches_the_sidebar(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    """The host's whole path in a real browser, under the CSP: no inline code is needed."""
    settings = light_settings(tmp_path, **{"security.max_sidebar_sockets_per_meeting": 1})
    server = await aiohttp_server(create_app(settings))
    base = f"http://127.0.0.1:{server.port}"
    async with chromium() as browser:
        context = await browser.new_context()
        page = await context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        await page.goto(f"{base}/")
        await page.fill("#meeting-admin-token", ADMIN_TOKEN)
        await page.fill("#meeting-name", "Planning")
        await page.click("#create-heading ~ form button[type=submit]")
        await page.wait_for_url(re.compile(rf"{re.escape(base)}/host/[\w-]+$"))
        await wait_for_js(page, "window.sidebar.socketState === 'live'", timeout_ms=10_000)
        assert await page.title() == "Planning · meetmood sidebar"
        # A second sidebar for the same meeting is over the limit of 1: it says so.
        second = await context.new_page()
        second.on("console", lambda m: console.append(m.text))
        await second.goto(page.url)
        await wait_for_js(second, "window.sidebar.socketState === 'refused'", timeout_ms=10_000)
        assert "Too many sidebars" in await second.locator("#conn").inner_text()
        await second.close()
        # Signed in as the admin: the home page asks for no token any more.
        await page.goto(f"{base}/")
        assert await page.locator("#meeting-admin-token").count() == 0
        await context.close()
    assert not [m for m in console if "Content Security Policy" in m], console


# -- sidebar sockets ----------------------------------------------------------------------


async def test_sidebar_sockets_per_meeting_are_limited(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = light_settings(tmp_path, **{"security.max_sidebar_sockets_per_meeting": 2})
    client = await aiohttp_client(create_app(settings))
    meeting = await new_meeting(client)
    url, host = f"/api/meetings/{meeting['id']}/ws", bearer(meeting["host_token"])
    first = await client.ws_connect(url, headers=host)
    second = await client.ws_connect(url, headers=host)
    for ws in (first, second):
        assert (await ws.receive_json())["type"] == "snapshot"
    third = await client.ws_connect(url, headers=host)
    msg = await third.receive()
    assert msg.type == WSMsgType.CLOSE and msg.data == 4429
    assert "too many sidebars" in msg.extra
    # Another meeting has its own count; a closed sidebar frees its place.
    other = await new_meeting(client)
    async with client.ws_connect(
        f"/api/meetings/{other['id']}/ws", headers=bearer(other["host_token"])
    ) as ws:
        assert (await ws.receive_json())["type"] == "snapshot"
    await first.close()
    for _ in range(50):
        fourth = await client.ws_connect(url, headers=host)
        msg = await fourth.receive()
        if msg.type != WSMsgType.CLOSE:
            break
    assert json.loads(msg.data)["type"] == "snapshot"
    await fourth.close()
    await second.close()


# -- bad tokens and bodies ----------------------------------------------------------------


async def test_non_ascii_tokens_are_refused_not_crashed(client: TestClient[Any, Any]) -> None:
    meeting = await new_meeting(client)
    mid = meeting["id"]
    assert (await client.get(f"/join/{mid}?token=%C3%A9t%C3%A9")).status == 403
    assert (await client.get(f"/host/{mid}?token=%C3%A9t%C3%A9")).status == 403
    body = {
        "display_name": "Lin",
        "consent": True,
        "offer": {"sdp": "v=0\r\n", "type": "offer"},
    }
    url = f"/api/meetings/{mid}/participants"
    for token in ("été", "🙂" * 20):
        await expect_error(
            await client.post(url, json=body | {"token": token}), 403, "token_invalid"
        )
    # A lone surrogate (valid JSON, not valid text) is not a string to pydantic.
    resp = await client.post(url, json=body | {"token": "\ud800"})
    await expect_error(resp, 400, "invalid_field")
    # The host cookie, sent as UTF-8 bytes.
    resp = await client.get(f"/api/meetings/{mid}", headers={"Cookie": "meetmood_host=été"})
    await expect_error(resp, 403, "token_invalid")
    # What a participant's leave compares with (it has no participant without WebRTC).
    assert not tokens_equal("été", "abc") and not tokens_equal("\ud800", "abc")
    assert tokens_equal("abc", "abc") and not tokens_equal(None, "abc")
    assert (await client.get("/healthz")).status == 200


async def test_deeply_nested_json_is_a_400(client: TestClient[Any, Any]) -> None:
    meeting = await new_meeting(client)
    deep = "[" * 30_000 + "]" * 30_000
    for url, headers in (
        (f"/api/meetings/{meeting['id']}/participants", {}),
        (f"/api/meetings/{meeting['id']}/questions", bearer(meeting["host_token"])),
        ("/api/meetings", ADMIN),
    ):
        resp = await client.post(
            url, data=deep, headers=headers | {"Content-Type": "application/json"}
        )
        message = await expect_error(resp, 400, "invalid_json")
        assert "nested too deeply" in message
    assert (await client.get("/healthz")).status == 200


@pytest.mark.parametrize("consent", ["yes", "true", 1, "1", None])
async def test_consent_must_be_the_boolean_true(client: TestClient[Any, Any], consent: Any) -> None:
    meeting = await new_meeting(client)
    body = {
        "token": join_token(meeting),
        "display_name": "Lin",
        "consent": consent,
        "offer": {"sdp": "v=0\r\n", "type": "offer"},
    }
    resp = await client.post(f"/api/meetings/{meeting['id']}/participants", json=body)
    message = await expect_error(resp, 400, "invalid_field")
    assert message.startswith("consent:")


def test_serve_makes_the_admin_token_once(tmp_path: Path) -> None:
    """Made at first start and printed then only; stored as a hash (the CLI's helper)."""
    settings = light_settings(tmp_path)
    admin_token_path(settings.storage).unlink()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _print_admin_token(settings)
        _print_admin_token(settings)
    lines = out.getvalue().splitlines()
    tokens = [line.split(": ", 1)[1] for line in lines if line.startswith("admin token: ")]
    assert len(tokens) == 1
    assert "`meetmood admin-token` makes a new one" in lines[-1]
    stored = admin_token_path(settings.storage).read_text()
    assert tokens[0] not in stored and len(stored.strip()) == 64
    assert (admin_token_path(settings.storage).stat().st_mode & 0o077) == 0  # private


def test_settings_have_a_security_section(tmp_path: Path) -> None:
    s = light_settings(tmp_path)
    assert s.security.open_creation is False
    assert s.security.max_sidebar_sockets_per_meeting == 8
