"""Input the fuzzer (tests/test_fuzz_api.py) and its follow-up probes found to give a 500.

Each is now a clear 400 (or, for the upload folder, simply works), and the server keeps
serving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN, ADMIN_TOKEN, make_settings
from web.app import create_app

pytestmark = pytest.mark.unit

BOUNDARY = "b0undary"


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> Any:
    settings = make_settings(
        tmp_path,
        **{"analyzers.enabled": [], "recordings.upload_dir": str(tmp_path / "not" / "yet")},
    )
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def meeting(client: Any) -> dict[str, Any]:
    resp = await client.post("/api/meetings", json={"name": "Probe"}, headers=ADMIN)
    assert resp.status == 201
    return dict(await resp.json())


async def expect_error(resp: Any, code: str) -> None:
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["code"] == code


async def test_json_bodies_in_an_unknown_charset_are_400(
    client: Any, meeting: dict[str, Any]
) -> None:
    mid = meeting["id"]
    host = {"Authorization": f"Bearer {meeting['host_token']}"}
    routes = [
        ("POST", "/api/meetings", ADMIN),
        ("POST", f"/api/meetings/{mid}/questions", host),
        ("POST", f"/api/meetings/{mid}/bots", host),
        ("POST", f"/api/meetings/{mid}/participants", {}),
        ("POST", f"/api/meetings/{mid}/participants/p1/leave", {}),
        ("DELETE", f"/api/meetings/{mid}/participants/p1", {}),
    ]
    for method, path, headers in routes:
        resp = await client.request(
            method,
            path,
            data=b'{"token": "x"}',
            headers={**headers, "Content-Type": "application/json; charset=no-such-charset"},
        )
        await expect_error(resp, "invalid_json")
    assert (await client.get("/healthz")).status == 200


async def test_the_home_form_with_a_broken_content_type_is_400(client: Any) -> None:
    for content_type in (
        "multipart/form-data",  # no boundary
        "application/x-www-form-urlencoded; charset=no-such-charset",
    ):
        resp = await client.post(
            "/meetings", data=b"name=x&csrf_token=y", headers={"Content-Type": content_type}
        )
        assert resp.status == 400, await resp.text()
        assert resp.content_type == "text/html"


def _multipart(*parts: bytes) -> bytes:
    return b"".join(b"--" + BOUNDARY.encode() + b"\r\n" + p + b"\r\n" for p in parts) + (
        b"--" + BOUNDARY.encode() + b"--\r\n"
    )


async def test_a_malformed_upload_is_400(client: Any) -> None:
    bad_header = _multipart(b'Content-Disposition: form-data; name="a\x1cb"\r\n\r\nx')
    for content_type, body in (
        ("multipart/form-data", b"x"),  # no boundary
        (f"multipart/form-data; boundary={BOUNDARY}", bad_header),  # a control character
    ):
        resp = await client.post(
            "/api/recordings", data=body, headers={**ADMIN, "Content-Type": content_type}
        )
        await expect_error(resp, "invalid_body")
    assert (await client.get("/healthz")).status == 200


async def test_an_upload_folder_that_is_not_there_yet_is_made(client: Any, tmp_path: Path) -> None:
    body = _multipart(
        b'Content-Disposition: form-data; name="admin_token"\r\n\r\n' + ADMIN_TOKEN.encode(),
        b'Content-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nnot a wav',
    )
    resp = await client.post(
        "/api/recordings",
        data=body,
        headers={**ADMIN, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert resp.status == 202, await resp.text()
    folder = tmp_path / "not" / "yet"
    assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o700


async def test_a_boolean_is_no_janus_room_id(client: Any, meeting: dict[str, Any]) -> None:
    # It was read as room 0, then as "no room": 404 room_not_found for a malformed request.
    resp = await client.post(
        f"/api/meetings/{meeting['id']}/bots",
        json={"kind": "janus", "url": "ws://127.0.0.1:9/ws", "room": False},
        headers={"Authorization": f"Bearer {meeting['host_token']}"},
    )
    await expect_error(resp, "invalid_field")


async def test_a_malformed_origin_is_refused_not_a_500(
    client: Any, meeting: dict[str, Any]
) -> None:
    origin = {"Origin": "http://[::1"}  # urlsplit: "Invalid IPv6 URL"
    client.session.cookie_jar.update_cookies({"meetmood_host": meeting["host_token"]})
    resp = await client.delete(f"/api/meetings/{meeting['id']}", headers=origin)
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "cross_site"
    host = {"Authorization": f"Bearer {meeting['host_token']}"}
    resp = await client.get(f"/api/meetings/{meeting['id']}/ws", headers={**host, **origin})
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "origin_not_allowed"
