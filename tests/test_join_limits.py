"""The join path under abuse: limits with clear answers, nothing heavy or visible before a
peer connects, no peer left open when the database fails, and no STUN to addresses an
offer names unless allowed.

Real pieces throughout: the aiohttp app on a test server, real aiortc peers on loopback
(inside ``scripts/in_netns.sh``), a real SQLite file locked by a second connection, UDP
sockets that record what the server sends them.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from playwright.async_api import Browser, expect

from bot.admission import (
    JoinAdmission,
    JoinRefused,
    address_key,
    client_address,
    trusted_networks,
)
from bot.bench_sidebar import wait_for_js
from bot.settings import LimitsSettings, Settings
from bot.sources.browser import OfferError, check_offer, filter_candidates
from tests.conftest import ADMIN, make_settings
from tests.fixtures import open_host_link
from tests.media import ImageVideoTrack, face_frame_rgb
from web.app import create_app
from web.keys import MANAGER

#: Limits far above what a test needs, so that each test meets only the one it is about.
ROOMY = {
    "limits.join_attempts_per_minute": 1000,
    "limits.max_unconnected_peers": 1000,
    "limits.max_unconnected_peers_per_address": 1000,
    "limits.max_participants_per_meeting": 1000,
}


# -- helpers --------------------------------------------------------------------------------


def udp_sockets() -> int:
    """UDP sockets this process holds open (peer connections hold one each)."""
    udp = set()
    for table in ("/proc/self/net/udp", "/proc/self/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            udp.add(line.split()[9])  # the inode
    held = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        held += link.startswith("socket:[") and link[8:-1] in udp
    return held


def process_figures() -> dict[str, float]:
    """This process's resident memory (MB), threads and open UDP sockets."""
    status = Path("/proc/self/status").read_text()
    rss = int(re.search(r"^VmRSS:\s+(\d+)", status, re.M).group(1)) / 1024  # type: ignore[union-attr]
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
    return {"rss_mb": rss, "threads": threads, "udp_sockets": udp_sockets()}


async def app_client(aiohttp_client: Any, settings: Settings) -> TestClient:
    """The app, once its models are loaded (their notices would otherwise reach sidebars)."""
    client: TestClient = await aiohttp_client(create_app(settings))
    await client.app[MANAGER].models_loaded()
    return client


async def create_meeting(client: TestClient) -> dict[str, Any]:
    resp = await client.post("/api/meetings", json={"name": "Limits"}, headers=ADMIN)
    assert resp.status == 201
    return await resp.json()


def host(meeting: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {meeting['host_token']}"}


async def offer_sdp(video: bool = True, audio: bool = True) -> tuple[RTCPeerConnection, str]:
    """A real aiortc offer (its host candidates are on 127.0.0.1 in the namespace)."""
    pc = RTCPeerConnection()
    if audio:
        pc.addTrack(AudioStreamTrack())
    if video:
        pc.addTrack(VideoStreamTrack())
    await pc.setLocalDescription(await pc.createOffer())
    assert pc.localDescription is not None
    return pc, pc.localDescription.sdp


async def post_join(
    client: TestClient,
    meeting: dict[str, Any],
    sdp: str,
    name: str = "Ada",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], Any]:
    resp = await client.post(
        f"/api/meetings/{meeting['id']}/participants",
        json={
            "token": meeting["join_url"].split("token=")[1],
            "display_name": name,
            "consent": True,
            "offer": {"sdp": sdp, "type": "offer"},
        },
        headers=headers or {},
    )
    return resp.status, await resp.json(), resp.headers


async def host_view(client: TestClient, meeting: dict[str, Any]) -> dict[str, Any]:
    resp = await client.get(f"/api/meetings/{meeting['id']}", headers=host(meeting))
    assert resp.status == 200
    return await resp.json()


def with_candidates(sdp: str, lines: list[str]) -> str:
    """``sdp`` with extra candidate lines after its first one."""
    head, sep, tail = sdp.partition("a=candidate:")
    first, nl, rest = tail.partition("\r\n")
    return head + sep + first + nl + "".join(f"{line}\r\n" for line in lines) + rest


class Recorder(asyncio.DatagramProtocol):
    """A UDP socket that counts what it receives."""

    def __init__(self) -> None:
        self.packets = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.packets += 1


async def listeners(n: int) -> list[tuple[asyncio.DatagramTransport, Recorder, int]]:
    loop = asyncio.get_running_loop()
    out = []
    for _ in range(n):
        transport, proto = await loop.create_datagram_endpoint(
            Recorder, local_addr=("127.0.0.1", 0)
        )
        out.append((transport, proto, transport.get_extra_info("sockname")[1]))
    return out


async def wait_until(predicate: Any, secs: float) -> bool:
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())


# -- pure pieces ------------------------------------------------------------------------------


@pytest.mark.unit
def test_candidate_filter_keeps_public_drops_local_and_caps() -> None:
    sdp = "\r\n".join(
        [
            "v=0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "a=candidate:1 1 udp 100 203.0.113.7 5000 typ host",  # documentation: not global
            "a=candidate:2 1 udp 200 8.8.8.8 5001 typ srflx raddr 0.0.0.0 rport 0",
            "a=candidate:3 1 udp 300 127.0.0.1 5002 typ host",
            "a=candidate:4 1 udp 400 192.168.1.4 5003 typ host",
            "a=candidate:5 1 udp 500 169.254.3.3 5004 typ host",
            "a=candidate:6 1 udp 600 fe80::1 5005 typ host",
            "a=candidate:7 1 udp 700 fd00::5 5006 typ host",
            "a=candidate:8 1 udp 800 abc-123.local 5007 typ host",
            "a=candidate:9 1 udp 900 100.64.0.9 5008 typ host",
            "a=candidate:10 1 udp 1000 ::ffff:10.0.0.1 5009 typ host",
            "a=candidate:11 1 udp 50 2a00:1450::1 5010 typ host",
            "a=candidate:12 1 udp 60 224.0.0.1 5011 typ host",
            "a=candidate:13 1 udp 70 example.org 5012 typ host",
            "a=candidate:14 1 udp 80 1.1.1.1 5013 typ host",
            "a=end-of-candidates",
            "",
        ]
    )
    kept, dropped = filter_candidates(sdp, allow_private=False, max_candidates=20)
    addresses = re.findall(r"a=candidate:\S+ \d+ \S+ \d+ (\S+)", kept)
    assert addresses == ["8.8.8.8", "2a00:1450::1", "1.1.1.1"]
    assert dropped == 11
    # Something was dropped: the peer's own checks must still be waited for.
    assert "a=end-of-candidates" not in kept
    assert kept.endswith("\r\n") and "m=audio" in kept

    allowed, dropped = filter_candidates(sdp, allow_private=True, max_candidates=20)
    addresses = re.findall(r"a=candidate:\S+ \d+ \S+ \d+ (\S+)", allowed)
    # Multicast, and names that are neither addresses nor mDNS, never pass.
    assert "224.0.0.1" not in addresses and "example.org" not in addresses
    assert {"127.0.0.1", "192.168.1.4", "abc-123.local", "fe80::1"} <= set(addresses)

    capped, dropped = filter_candidates(sdp, allow_private=True, max_candidates=3)
    priorities = [int(p) for p in re.findall(r"a=candidate:\S+ \d+ \S+ (\d+)", capped)]
    assert sorted(priorities) == [800, 900, 1000]  # the highest-priority ones

    # The budget goes to earlier media sections first (a bundle uses the first one's).
    two = "v=0\r\n" + "".join(
        f"m={kind} 9 UDP/TLS/RTP/SAVPF 96\r\n"
        + "".join(f"a=candidate:{i} 1 udp {i} 8.8.8.{i} 1 typ host\r\n" for i in (1, 2, 3))
        for kind in ("audio", "video")
    )
    capped, dropped = filter_candidates(two, allow_private=False, max_candidates=4)
    audio, video = capped.split("m=video")
    assert (audio.count("a=candidate:"), video.count("a=candidate:"), dropped) == (3, 1, 2)
    assert "8.8.8.3 1 typ host" in video  # its highest-priority one

    untouched, dropped = filter_candidates(
        "v=0\r\na=candidate:1 1 udp 9 8.8.8.8 1 typ host\r\na=end-of-candidates\r\n", False, 5
    )
    assert dropped == 0 and "a=end-of-candidates" in untouched


@pytest.mark.unit
def test_offer_with_too_many_media_sections_is_refused() -> None:
    def offer(sections: int) -> str:
        return "v=0\r\n" + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" * sections

    check_offer(offer(8), "offer")
    with pytest.raises(OfferError, match="more than 8 media sections"):
        check_offer(offer(9), "offer")


@pytest.mark.unit
def test_addresses_are_counted_per_client() -> None:
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key(None) == "unknown"
    proxies = trusted_networks(["10.0.0.0/8"])
    # Only a trusted proxy's X-Forwarded-For is believed, read from the right.
    assert client_address("198.51.100.2", "1.2.3.4", proxies) == "198.51.100.2"
    assert client_address("10.0.0.5", "6.6.6.6, 1.2.3.4, 10.0.0.9", proxies) == "1.2.3.4"
    assert client_address("10.0.0.5", None, proxies) == "10.0.0.5"


@pytest.mark.unit
def test_join_rate_window_slides_and_forgets_quiet_addresses() -> None:
    now = [1000.0]
    admission = JoinAdmission(LimitsSettings(join_attempts_per_minute=3), clock=lambda: now[0])
    for _ in range(3):
        admission.attempt("192.0.2.1")
        now[0] += 10
    with pytest.raises(JoinRefused) as refused:
        admission.attempt("192.0.2.1")
    assert (refused.value.status, refused.value.code) == (429, "too_many_joins")
    assert refused.value.retry_after_secs == 30  # the first attempt leaves the window then
    admission.attempt("192.0.2.2")  # another address is not affected
    now[0] += 30
    admission.attempt("192.0.2.1")  # the oldest one left the window
    now[0] += 61
    admission.attempt("192.0.2.3")
    assert admission.tracked_addresses == ["192.0.2.3"]  # quiet addresses are forgotten


# -- limits over HTTP --------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")
async def test_limits_answer_with_clear_codes(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        **{
            "limits.max_participants_per_meeting": 3,
            "limits.max_unconnected_peers": 4,
            "limits.max_unconnected_peers_per_address": 2,
            "limits.join_attempts_per_minute": 7,
            "limits.trusted_proxies": ["127.0.0.1"],
            "limits.connect_timeout_secs": 30,
        },
    )
    client = await app_client(aiohttp_client, settings)
    manager = client.app[MANAGER]
    meeting = await create_meeting(client)
    other = await create_meeting(client)
    pc, sdp = await offer_sdp()
    await pc.close()  # these peers never connect

    # Unconnected peers per address: the third from one address waits.
    s1, b1, _ = await post_join(client, meeting, sdp)
    s2, _, _ = await post_join(client, meeting, sdp)
    assert (s1, s2) == (201, 201)
    status, body, headers = await post_join(client, meeting, sdp)
    assert (status, body["error"]["code"]) == (429, "too_many_unconnected"), body
    assert int(headers["Retry-After"]) == 30

    # Participants per meeting (connecting ones count): a third person, from elsewhere.
    via = {"X-Forwarded-For": "198.51.100.7"}
    assert (await post_join(client, meeting, sdp, headers=via))[0] == 201
    status, body, headers = await post_join(
        client, meeting, sdp, headers={"X-Forwarded-For": "198.51.100.8"}
    )
    assert (status, body["error"]["code"]) == (403, "meeting_full"), body
    assert "full" in body["error"]["message"]

    # Unconnected peers on the server: 3 now; a fourth in another meeting, then no more.
    assert (await post_join(client, other, sdp, headers={"X-Forwarded-For": "203.0.113.1"}))[
        0
    ] == 201
    status, body, headers = await post_join(
        client, other, sdp, headers={"X-Forwarded-For": "203.0.113.2"}
    )
    assert (status, body["error"]["code"]) == (429, "too_many_unconnected"), body
    assert "Retry-After" in headers
    assert manager.admission.unconnected == 4

    # Leaving before connecting frees the place (and counts as an attempt that failed).
    resp = await client.post(
        f"/api/meetings/{meeting['id']}/participants/{b1['participant_id']}/leave",
        json={"token": b1["participant_token"]},
    )
    assert resp.status == 204
    assert manager.admission.unconnected == 3

    # Join requests per address per minute, refused ones included: 3 came from 127.0.0.1
    # itself so far (those through it as a trusted proxy count for their clients).
    for _ in range(4):
        status, body, _ = await post_join(client, meeting, "not sdp")
        assert status == 400  # still counted
    status, body, headers = await post_join(client, meeting, sdp)
    assert (status, body["error"]["code"]) == (429, "too_many_joins"), body
    assert 1 <= int(headers["Retry-After"]) <= 60
    # Another client behind the proxy is not held back by it.
    status, body, _ = await post_join(
        client, other, "not sdp", headers={"X-Forwarded-For": "203.0.113.9"}
    )
    assert status == 400

    view = await host_view(client, meeting)
    assert view["participants"] == []
    assert view["unconnected_joins"] == 1


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")
async def test_simultaneous_joins_cannot_overfill_a_meeting(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    # Each join waits (database check, ICE set-up) between the limits check and its
    # admission: places reserved in that gap must count, or all six would see room for one.
    settings = make_settings(
        tmp_path,
        **{"limits.max_participants_per_meeting": 3, "limits.trusted_proxies": ["127.0.0.1"]},
    )
    client = await app_client(aiohttp_client, settings)
    meeting = await create_meeting(client)
    pc, sdp = await offer_sdp()
    await pc.close()
    answers = await asyncio.gather(
        *(
            post_join(client, meeting, sdp, headers={"X-Forwarded-For": f"198.51.100.{i}"})
            for i in range(1, 7)
        )
    )
    codes = sorted((status, body.get("error", {}).get("code", "")) for status, body, _ in answers)
    assert codes == [(201, "")] * 3 + [(403, "meeting_full")] * 3


# -- nothing heavy, nothing shown before connecting ---------------------------------------------


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")
async def test_burst_of_never_connecting_offers_stays_bounded_and_leaves_no_one(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    offers = 30
    settings = make_settings(tmp_path, **ROOMY, **{"limits.connect_timeout_secs": 3})
    client = await app_client(aiohttp_client, settings)
    manager = client.app[MANAGER]
    meeting = await create_meeting(client)
    ws = await client.ws_connect(f"/api/meetings/{meeting['id']}/ws", headers=host(meeting))
    assert (await ws.receive_json())["type"] == "snapshot"
    pc, sdp = await offer_sdp()
    await pc.close()
    await asyncio.sleep(0.5)
    before = process_figures()

    statuses = await asyncio.gather(
        *(post_join(client, meeting, sdp, name=f"P{i}") for i in range(offers))
    )
    assert [s for s, _, _ in statuses] == [201] * offers
    peak = process_figures()
    for _ in range(10):
        await asyncio.sleep(0.1)
        for key, value in process_figures().items():
            peak[key] = max(peak[key], value)
    print(f"\nbefore {before}\npeak   {peak}")
    # Each offer used to build a voice pipeline and a thread (+520 MB, +31 threads for 30).
    assert peak["rss_mb"] - before["rss_mb"] < 100
    assert peak["threads"] - before["threads"] <= 4
    live = await manager.live(meeting["id"])
    assert len(live.pending) == offers and not live.participants

    # After the connect timeout: every peer closed, nothing shown, nothing stored.
    assert await wait_until(lambda: not live.pending, 10.0)
    await asyncio.sleep(0.5)
    after = process_figures()
    print(f"after  {after}")
    assert after["threads"] - before["threads"] <= 2
    assert after["udp_sockets"] <= before["udp_sockets"]
    assert manager.admission.unconnected == 0

    view = await host_view(client, meeting)
    assert view["participants"] == []
    assert view["unconnected_joins"] == offers
    assert await manager.store.list_participants(meeting["id"]) == []
    events = []
    while True:
        try:
            events.append(await asyncio.wait_for(ws.receive_json(), 0.5))
        except TimeoutError:
            break
    kinds = {e["type"] for e in events}
    assert "participant_joined" not in kinds and "participant_left" not in kinds
    assert max(e["unconnected"] for e in events if e["type"] == "join_attempts") == offers
    ws2 = await client.ws_connect(f"/api/meetings/{meeting['id']}/ws", headers=host(meeting))
    snapshot = await ws2.receive_json()
    assert snapshot["participants"] == [] and snapshot["unconnected_joins"] == offers
    await ws.close()
    await ws2.close()


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")
async def test_participant_appears_only_once_connected(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await app_client(aiohttp_client, settings)
    manager = client.app[MANAGER]
    meeting = await create_meeting(client)
    ws = await client.ws_connect(f"/api/meetings/{meeting['id']}/ws", headers=host(meeting))
    await ws.receive_json()
    pc = RTCPeerConnection()
    pc.addTrack(ImageVideoTrack(face_frame_rgb(), fps=15))
    pc.addTrack(AudioStreamTrack())
    try:
        await pc.setLocalDescription(await pc.createOffer())
        assert pc.localDescription is not None
        status, body, _ = await post_join(client, meeting, pc.localDescription.sdp)
        assert status == 201
        pid = body["participant_id"]
        # Answered, not connected: no card, no row, no session.
        assert (await host_view(client, meeting))["participants"] == []
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.receive_json(), 0.3)
        live = await manager.live(meeting["id"])
        assert pid in live.pending and not live.participants

        await pc.setRemoteDescription(RTCSessionDescription(**body["answer"]))

        async def joined() -> dict[str, Any]:
            while True:
                event = await ws.receive_json()
                if event["type"] == "participant_joined":
                    return event

        event = await asyncio.wait_for(joined(), 20)
        assert event["participant"]["participant_id"] == pid
        assert pc.connectionState == "connected"
        assert pid in live.participants and not live.pending
        assert manager.admission.unconnected == 0
        view = await host_view(client, meeting)
        assert [p["participant_id"] for p in view["participants"]] == [pid]
        assert view["unconnected_joins"] == 0
        resp = await client.post(
            f"/api/meetings/{meeting['id']}/participants/{pid}/leave",
            json={"token": body["participant_token"]},
        )
        assert resp.status == 204
    finally:
        await pc.close()
        await ws.close()


# -- a failing database ----------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")
async def test_locked_database_refuses_join_and_leaves_no_peer_open(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await app_client(aiohttp_client, settings)
    manager = client.app[MANAGER]
    meeting = await create_meeting(client)
    await manager.live(meeting["id"])  # the meeting is running, as during a call
    pc, sdp = await offer_sdp()
    await pc.close()
    await asyncio.sleep(0.3)
    before = process_figures()

    # Another process's connection holds the write lock for the whole request.
    other = sqlite3.connect(settings.storage.database_path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        status, body, headers = await post_join(client, meeting, sdp)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert (status, body["error"]["code"]) == (503, "store_unavailable"), body
    assert int(headers["Retry-After"]) > 0
    live = await manager.live(meeting["id"])
    assert not live.pending and not live.participants
    assert manager.admission.unconnected == 0
    await asyncio.sleep(0.3)
    assert process_figures()["udp_sockets"] <= before["udp_sockets"]

    # Once the database is back, joining works again.
    status, _, _ = await post_join(client, meeting, sdp)
    assert status == 201


# -- ICE candidates an offer names ----------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")
@pytest.mark.parametrize("allow", [False, True], ids=["default-denies", "allowed"])
async def test_offer_cannot_make_server_probe_private_addresses(
    aiohttp_client: Any, tmp_path: Path, allow: bool
) -> None:
    settings = make_settings(tmp_path, **{"limits.allow_private_candidates": allow})
    client = await app_client(aiohttp_client, settings)
    meeting = await create_meeting(client)
    ((transport, target, port),) = await listeners(1)
    pc, sdp = await offer_sdp()
    await pc.close()
    sdp = with_candidates(sdp, [f"a=candidate:99 1 udp 2130706431 127.0.0.1 {port} typ host"])
    try:
        status, body, _ = await post_join(client, meeting, sdp)
        assert status == 201, body
        reached = await wait_until(lambda: target.packets > 0, 3.0)
        # Allowed: the server does send STUN there (so the test can see it when it happens).
        assert reached is allow
    finally:
        transport.close()


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")
async def test_offer_candidates_are_capped(aiohttp_client: Any, tmp_path: Path) -> None:
    cap = 3
    settings = make_settings(tmp_path, **{"limits.max_candidates_per_offer": cap})
    client = await app_client(aiohttp_client, settings)
    meeting = await create_meeting(client)
    targets = await listeners(12)
    pc, sdp = await offer_sdp(video=False)
    await pc.close()
    # Higher priority than the peer's own candidate (2130706431), highest first.
    lines = [
        f"a=candidate:{i} 1 udp {2147483000 - i} 127.0.0.1 {port} typ host"
        for i, (_, _, port) in enumerate(targets)
    ]
    try:
        status, body, _ = await post_join(client, meeting, with_candidates(sdp, lines))
        assert status == 201, body
        await wait_until(lambda: sum(t.packets > 0 for _, t, _ in targets) >= cap, 3.0)
        await asyncio.sleep(1.0)
        reached = [i for i, (_, t, _) in enumerate(targets) if t.packets > 0]
        assert reached == list(range(cap))
    finally:
        for transport, _, _ in targets:
            transport.close()


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")
async def test_peer_connects_by_default_without_its_local_candidates(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """With the production default (no private candidates) a browser on this machine or
    network still connects: its checks reach the server, which answers on that path."""
    settings = make_settings(tmp_path, **{"limits.allow_private_candidates": False})
    client = await app_client(aiohttp_client, settings)
    manager = client.app[MANAGER]
    meeting = await create_meeting(client)
    pc = RTCPeerConnection()
    pc.addTrack(ImageVideoTrack(face_frame_rgb(), fps=15))
    try:
        await pc.setLocalDescription(await pc.createOffer())
        assert pc.localDescription is not None
        status, body, _ = await post_join(client, meeting, pc.localDescription.sdp)
        assert status == 201, body
        server_pc = (await manager.live(meeting["id"])).pending[body["participant_id"]].source.pc
        ice = server_pc.getTransceivers()[0].receiver.transport.transport
        assert ice.getRemoteCandidates() == []  # every offered candidate was dropped
        await pc.setRemoteDescription(RTCSessionDescription(**body["answer"]))
        live = await manager.live(meeting["id"])
        assert await wait_until(lambda: body["participant_id"] in live.participants, 15.0)
        assert pc.connectionState == "connected"
    finally:
        await pc.close()


# -- what the host sees ----------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")
async def test_sidebar_shows_unconnected_joins_as_a_count(
    aiohttp_server: Any, tmp_path: Path, browser: Browser
) -> None:
    settings = make_settings(
        tmp_path, **{"analyzers.enabled": [], "limits.connect_timeout_secs": 0.5}
    )
    server = await aiohttp_server(create_app(settings))
    base = str(server.make_url("")).rstrip("/")
    manager = server.app[MANAGER]
    record, host_token = await manager.create_meeting("Count")
    page = await browser.new_page(viewport={"width": 400, "height": 900})
    await open_host_link(page, base, record.id, host_token)

    pc, sdp = await offer_sdp()
    await pc.close()
    async with ClientSession() as http:
        for _ in range(2):
            resp = await http.post(
                f"{base}/api/meetings/{record.id}/participants",
                json={
                    "token": record.join_token,
                    "display_name": "Ghost",
                    "consent": True,
                    "offer": {"sdp": sdp, "type": "offer"},
                },
            )
            assert resp.status == 201, await resp.text()
    notice = page.locator('#notices [data-code="unconnected_joins"]')
    await expect(notice).to_have_text(re.compile("2 join attempts did not connect"))
    assert await page.evaluate("Object.keys(window.sidebar.participants).length") == 0
    # A sidebar opened later is told the count by its snapshot.
    await page.reload()
    await wait_for_js(page, "window.sidebar.socketState === 'live'", timeout_ms=10_000)
    await expect(notice).to_have_text(re.compile("2 join attempts did not connect"))
    assert await page.evaluate("window.sidebar.unconnectedJoins") == 2
    await page.close()
