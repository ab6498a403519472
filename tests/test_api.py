"""The HTTP API and pages: happy paths and bad input (clear 4xx, server keeps serving)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings
from tests.conftest import ADMIN, ADMIN_TOKEN, make_settings
from web.app import create_app

pytestmark = pytest.mark.unit

VALID_LOOKING_SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
)


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> Any:
    """The app with no analyzer to load: these tests are about the API, not the analysis."""
    settings = make_settings(tmp_path, **{"analyzers.enabled": []})
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def meeting(client: Any) -> dict[str, Any]:
    resp = await client.post("/api/meetings", json={"name": "Retro"}, headers=ADMIN)
    assert resp.status == 201
    return await resp.json()


def join_token(meeting: dict[str, Any]) -> str:
    return meeting["join_url"].split("token=")[1]


def csrf_token(html: str) -> str:
    """The CSRF token of the page's first form."""
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def host_auth(meeting: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {meeting['host_token']}"}


async def expect_error(resp: Any, status: int, code: str) -> str:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]["message"]


async def test_create_meeting_returns_links(client: Any, meeting: dict[str, Any]) -> None:
    assert meeting["name"] == "Retro"
    host = str(client.make_url(""))
    assert meeting["join_url"].startswith(f"{host}/join/{meeting['id']}?token=")
    assert meeting["host_url"] == f"{host}/host/{meeting['id']}?token={meeting['host_token']}"
    resp = await client.get(
        f"/api/meetings/{meeting['id']}",
        headers={"Authorization": f"Bearer {meeting['host_token']}"},
    )
    assert resp.status == 200
    data = await resp.json()
    assert "host_token" not in data  # shown once, at creation
    assert data["participants"] == []


async def test_blank_name_gets_a_default(client: Any) -> None:
    resp = await client.post("/api/meetings", json={"name": "   "}, headers=ADMIN)
    assert (await resp.json())["name"] == "Meeting"
    resp = await client.post("/api/meetings", headers=ADMIN)  # no body at all
    assert resp.status == 201


async def test_home_form_creates_and_redirects_to_host_page(client: Any) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    home = await resp.text()
    assert 'action="/meetings"' in home
    form = {"name": "<b>Weekly</b>", "csrf_token": csrf_token(home), "admin_token": ADMIN_TOKEN}
    resp = await client.post("/meetings", data=form, allow_redirects=False)
    assert resp.status == 303
    location = resp.headers["Location"]
    assert location.startswith("/host/")
    page = await client.get(location)
    assert page.status == 200
    html = await page.text()
    assert "&lt;b&gt;Weekly&lt;/b&gt;" in html  # autoescaped
    assert "<b>Weekly</b>" not in html


@pytest.mark.model  # the default configuration, so its analyzers load
async def test_join_page_shows_notice_before_anything(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await aiohttp_client(create_app(settings))
    resp = await client.post("/api/meetings", json={"name": "Retro"}, headers=ADMIN)
    meeting = await resp.json()
    resp = await client.get(f"/join/{meeting['id']}?token={join_token(meeting)}")
    assert resp.status == 200
    html = await resp.text()
    assert 'id="notice"' in html
    assert "No video or audio is recorded" in html
    assert "The meeting host" in html
    # It says what this configuration analyses: face, landmarks, voice and its tone.
    assert "Points on your face" in html and "blinks" in html
    assert "Your voice, from your microphone" in html and "nothing is transcribed" in html
    assert "emotional tone of your voice" in html
    assert "engagement" in html and "not what you feel" in html


@pytest.mark.model
async def test_join_notice_follows_the_configuration(aiohttp_client: Any, tmp_path: Any) -> None:
    settings = make_settings(
        tmp_path, **{"voice.enabled": False, "analyzers.face_emotion.detector": "haar"}
    )
    client = await aiohttp_client(create_app(settings))
    meeting = await (await client.post("/api/meetings", json={"name": "M"}, headers=ADMIN)).json()
    html = await (await client.get(f"/join/{meeting['id']}?token={join_token(meeting)}")).text()
    assert "received but not analysed" in html
    assert "Your voice" not in html and "Points on your face" not in html


def notice_summaries(html: str) -> str:
    """The notice's "Summaries and questions" entry, whitespace collapsed."""
    start = html.index('<dd id="notice-summaries">')
    entry = html[start : html.index("</dd>", start)].split(">", 1)[1]
    return " ".join(entry.split())


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (
            {},
            "The host receives a mood summary of the meeting every 60 seconds and when they "
            "ask for one (engagement, mood and talk, per participant and for the room), and "
            "can ask questions about the meeting. Summaries and answers are made on the "
            "meeting server from the scores above; nothing is sent to any other service.",
        ),
        (
            {
                "summaries.summarizer": "vertex",
                "summaries.vertex.project": "acme-meet",
                "summaries.vertex.location": "europe-west4",
            },
            "The host receives a mood summary of the meeting every 60 seconds and when they "
            "ask for one (engagement, mood and talk, per participant and for the room), and "
            "can ask questions about the meeting. To write summaries and answer the host's "
            "questions, aggregated, pseudonymised figures about the meeting (participants "
            "appear as P1, P2, ...; names stay on the meeting server) — never images, audio "
            "or words — are sent to Google's Gemini on Vertex AI (project acme-meet, location "
            "europe-west4).",
        ),
        (
            {
                "summaries.summarizer": "vertex",
                "summaries.enabled": False,
                "summaries.vertex.project": "acme-meet",
                "summaries.vertex.share_names": True,
            },
            "The host can ask questions about the meeting. To answer the host's questions, "
            "aggregated figures about the meeting with participants' display names — never "
            "images, audio or words — are sent to Google's Gemini on Vertex AI (project "
            "acme-meet, location global).",
        ),
    ],
)
async def test_join_notice_says_where_summaries_and_answers_are_made(
    aiohttp_client: Any, tmp_path: Any, overrides: dict[str, Any], says: str
) -> None:
    settings = make_settings(tmp_path, **{"analyzers.enabled": [], **overrides})
    client = await aiohttp_client(create_app(settings))
    meeting = await (await client.post("/api/meetings", json={"name": "M"}, headers=ADMIN)).json()
    html = await (await client.get(f"/join/{meeting['id']}?token={join_token(meeting)}")).text()
    # Shown in the notice, before the consent form (before anything is analysed).
    assert html.index('id="notice-summaries"') < html.index('id="consent-form"')
    assert notice_summaries(html) == says.replace("'", "&#39;")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/join/nope?token=x", 404),
        ("/host/nope?token=x", 404),
    ],
)
async def test_pages_unknown_meeting(client: Any, path: str, status: int) -> None:
    resp = await client.get(path)
    assert resp.status == status
    assert "text/html" in resp.headers["Content-Type"]


async def test_pages_bad_tokens(client: Any, meeting: dict[str, Any]) -> None:
    assert (await client.get(f"/join/{meeting['id']}?token=wrong")).status == 403
    assert (await client.get(f"/join/{meeting['id']}")).status == 403
    assert (await client.get(f"/host/{meeting['id']}?token=wrong")).status == 403
    assert (await client.get(f"/host/{meeting['id']}")).status == 401


async def test_api_token_errors(client: Any, meeting: dict[str, Any]) -> None:
    mid = meeting["id"]
    await expect_error(await client.get(f"/api/meetings/{mid}"), 401, "token_missing")
    bad = {"Authorization": "Bearer no"}
    await expect_error(await client.get(f"/api/meetings/{mid}", headers=bad), 403, "token_invalid")
    resp = await client.get(f"/api/meetings/{mid}/ws", headers=bad)
    await expect_error(resp, 403, "token_invalid")
    resp = await client.get("/api/meetings/unknown", headers=bad)
    await expect_error(resp, 404, "meeting_not_found")
    resp = await client.get(f"/api/meetings/{mid}/states", headers=bad)
    await expect_error(resp, 403, "token_invalid")


async def test_ws_refuses_foreign_origin(client: Any, meeting: dict[str, Any]) -> None:
    resp = await client.get(
        f"/api/meetings/{meeting['id']}/ws",
        headers=host_auth(meeting) | {"Origin": "https://evil.example"},
    )
    await expect_error(resp, 403, "origin_not_allowed")


def join_body(meeting: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "token": join_token(meeting),
        "display_name": "Lin",
        "consent": True,
        "offer": {"sdp": VALID_LOOKING_SDP, "type": "offer"},
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("changes", "status", "code", "says"),
    [
        ({"offer": {"sdp": "hello", "type": "offer"}}, 400, "invalid_offer", "v=0"),
        ({"offer": {"sdp": "v=0\r\ns=-\r\n", "type": "offer"}}, 400, "invalid_offer", "audio"),
        ({"offer": {"sdp": VALID_LOOKING_SDP, "type": "answer"}}, 400, "invalid_offer", "offer"),
        ({"offer": {"sdp": "v=0\r\nm=video x y z\r\n", "type": "offer"}}, 400, "invalid_offer", ""),
        ({"offer": {"type": "offer"}}, 400, "invalid_field", "offer.sdp: missing"),
        ({"display_name": ""}, 400, "invalid_field", "display_name"),
        ({"display_name": "x" * 61}, 400, "invalid_field", "display_name"),
        ({"consent": False}, 400, "consent_required", "consent"),
        ({"token": "wrong"}, 403, "token_invalid", "join token"),
        ({"surprise": 1}, 400, "invalid_field", "surprise: unknown field"),
    ],
)
async def test_join_bad_input(
    client: Any, meeting: dict[str, Any], changes: dict[str, Any], status: int, code: str, says: str
) -> None:
    resp = await client.post(
        f"/api/meetings/{meeting['id']}/participants", json=join_body(meeting, **changes)
    )
    message = await expect_error(resp, status, code)
    assert says in message
    # Nothing was stored for a refused join, and the server keeps serving.
    info = await client.get(f"/api/meetings/{meeting['id']}", headers=host_auth(meeting))
    assert (await info.json())["participants"] == []
    assert (await client.get("/healthz")).status == 200


async def test_join_missing_fields_and_bad_json(client: Any, meeting: dict[str, Any]) -> None:
    url = f"/api/meetings/{meeting['id']}/participants"
    msg = await expect_error(await client.post(url, json={}), 400, "invalid_field")
    assert "missing" in msg
    resp = await client.post(url, data=b"{not json", headers={"Content-Type": "application/json"})
    await expect_error(resp, 400, "invalid_json")
    resp = await client.post(url, data=b"\xff\xfe", headers={"Content-Type": "application/json"})
    await expect_error(resp, 400, "invalid_json")
    await expect_error(await client.post(url, json=[1, 2]), 400, "invalid_field")
    resp = await client.post("/api/meetings/unknown/participants", json=join_body(meeting))
    await expect_error(resp, 404, "meeting_not_found")


async def test_oversized_body_is_refused(client: Any, meeting: dict[str, Any]) -> None:
    huge = join_body(meeting, offer={"sdp": "v=0" + "x" * 400_000, "type": "offer"})
    resp = await client.post(f"/api/meetings/{meeting['id']}/participants", json=huge)
    assert resp.status == 413
    assert (await client.get("/healthz")).status == 200


async def test_leave_with_wrong_token_or_unknown_participant(
    client: Any, meeting: dict[str, Any]
) -> None:
    url = f"/api/meetings/{meeting['id']}/participants/nobody/leave"
    # Leaving twice (or after the connection closed) is harmless.
    assert (await client.post(url, json={"token": "t"})).status == 204
    await expect_error(await client.post(url, json={}), 400, "invalid_field")


async def test_states_query_validation(client: Any, meeting: dict[str, Any]) -> None:
    url = f"/api/meetings/{meeting['id']}/states"
    resp = await client.get(url + "?since=abc", headers=host_auth(meeting))
    await expect_error(resp, 400, "invalid_field")
    resp = await client.get(url, headers=host_auth(meeting))
    assert (await resp.json())["states"] == []


async def test_unknown_api_route_is_json_404(client: Any) -> None:
    resp = await client.get("/api/nothing-here")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
