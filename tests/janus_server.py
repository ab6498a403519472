"""A real Janus 1.1 (Debian's ``janus``) for tests, on loopback inside the test namespace.

Janus skips loopback interfaces when gathering ICE candidates, so 127.0.0.1/32 is also
put on an ``ifb`` interface (``jlo0``) that Janus is told to use (see
../shared/reference/WEBRTC.md, "the loopback trick"). The configuration lives in the
test's own folder; ``/etc/janus`` is untouched. Test publishers are aiortc peers that
join the VideoRoom and publish real tracks.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from bot.sources.janus_api import JanusSession

LIBDIR = Path("/usr/lib/x86_64-linux-gnu/janus")
ROOM = 1234
PIN_ROOM = 5678
PIN = "sesame"
HTTP_PORT = 8088
WS_PORT = 8188

_JANUS = """general: {{
    configs_folder = "{dir}"
    plugins_folder = "{lib}/plugins"
    transports_folder = "{lib}/transports"
    events_folder = "{lib}/events"
    loggers_folder = "{lib}/loggers"
    debug_level = 4
    session_timeout = 60
    server_name = "meetmood-test"
    interface = "127.0.0.1"
}}
certificates: {{
}}
media: {{
    rtp_port_range = "20000-20999"
}}
nat: {{
    nice_debug = false
    ice_enforce_list = "jlo0"
    ignore_mdns = true
}}
plugins: {{
    disable = "{disabled_plugins}"
}}
transports: {{
    disable = "libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so"
}}
loggers: {{
    disable = "libjanus_jsonlog.so"
}}
events: {{
    broadcast = false
}}
"""
_HTTP = f"""general: {{
    json = "indented"
    base_path = "/janus"
    http = true
    port = {HTTP_PORT}
    ip = "127.0.0.1"
    https = false
}}
admin: {{
    admin_http = false
}}
cors: {{
}}
"""
_WS = f"""general: {{
    json = "indented"
    ws = true
    ws_port = {WS_PORT}
    ws_ip = "127.0.0.1"
    wss = false
}}
admin: {{
    admin_ws = false
}}
"""
_VIDEOROOM = f"""general: {{
}}
room-{ROOM}: {{
    description = "Test room"
    publishers = 16
    bitrate = 1000000
    fir_freq = 2
    audiocodec = "opus"
    videocodec = "vp8,h264"
}}
room-{PIN_ROOM}: {{
    description = "Room with a pin"
    pin = "{PIN}"
    publishers = 4
    audiocodec = "opus"
    videocodec = "vp8"
}}
"""
_TEXTROOM = f"""general: {{
    json = "indented"
}}
room-{ROOM}: {{
    description = "Test room chat"
}}
"""


_DISABLED_PLUGINS = ",".join(
    f"libjanus_{name}.so"
    for name in (
        "audiobridge",
        "duktape",
        "lua",
        "nosip",
        "recordplay",
        "sip",
        "streaming",
        "videocall",
        "voicemail",
        "echotest",
    )
)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def ensure_ifb() -> None:
    """Put 127.0.0.1/32 on a non-loopback interface Janus will gather from."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    if "jlo0" not in links:
        _ip("link", "add", "jlo0", "type", "ifb")
        _ip("addr", "add", "127.0.0.1/32", "dev", "jlo0")
        _ip("link", "set", "jlo0", "up")


def remove_ifb() -> None:
    """Take the interface away again."""
    subprocess.run(["ip", "link", "del", "jlo0"], capture_output=True)


class JanusServer:
    """A Janus process with the test configuration in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "janus.jcfg").write_text(
            _JANUS.format(dir=folder, lib=LIBDIR, disabled_plugins=_DISABLED_PLUGINS)
        )
        (folder / "janus.transport.http.jcfg").write_text(_HTTP)
        (folder / "janus.transport.websockets.jcfg").write_text(_WS)
        (folder / "janus.plugin.videoroom.jcfg").write_text(_VIDEOROOM)
        (folder / "janus.plugin.textroom.jcfg").write_text(_TEXTROOM)

    url = f"http://127.0.0.1:{HTTP_PORT}/janus"
    ws_url = f"ws://127.0.0.1:{WS_PORT}"

    def start(self) -> None:
        """Start Janus and wait until its HTTP API answers."""
        ensure_ifb()
        self.proc = subprocess.Popen(
            [
                "janus",
                "-F",
                str(self.folder),
                "-C",
                str(self.folder / "janus.jcfg"),
                "-o",
                "-N",
                "-L",
                str(self.folder / "janus.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/info", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("Janus did not start; see " + str(self.folder / "janus.log"))

    def kill(self) -> None:
        """Kill Janus at once (as a crash would)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        """Stop Janus."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None


class _JanusClient:
    """A test client of the Janus API with one peer connection; :meth:`leave` ends both."""

    def __init__(self, url: str, room: int) -> None:
        self.url = url
        self.room = room
        self.http: aiohttp.ClientSession | None = None
        self.session: JanusSession | None = None
        self.pc: RTCPeerConnection | None = None

    async def _connect(self) -> JanusSession:
        self.http = aiohttp.ClientSession()
        self.session = await JanusSession.connect(self.url, self.http)
        return self.session

    async def leave(self) -> None:
        """Hang up and end the Janus session."""
        if self.pc is not None:
            await self.pc.close()
        if self.session is not None:
            await self.session.close()
        if self.http is not None:
            await self.http.close()
        self.pc = self.session = self.http = None


class Publisher(_JanusClient):
    """A test participant publishing real tracks into a VideoRoom through the Janus API."""

    def __init__(self, url: str, display: str, tracks: list[MediaStreamTrack], room: int = ROOM):
        super().__init__(url, room)
        self.display = display
        self.tracks = tracks
        self.feed_id: Any = None

    async def publish(self, video_codec: str | None = None) -> None:
        """Join the room and publish; returns once Janus has answered."""
        session = await self._connect()
        handle = await session.attach("janus.plugin.videoroom")
        joined = await session.message(
            handle,
            {"request": "join", "ptype": "publisher", "room": self.room, "display": self.display},
        )
        self.feed_id = joined["id"]
        self.pc = RTCPeerConnection()
        for track in self.tracks:
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            if video_codec and track.kind == "video":
                from aiortc.rtcrtpsender import RTCRtpSender

                codecs = RTCRtpSender.getCapabilities("video").codecs
                transceiver.setCodecPreferences(
                    [c for c in codecs if c.mimeType.lower() == f"video/{video_codec}"]
                )
        await self.pc.setLocalDescription(await self.pc.createOffer())
        assert self.pc.localDescription is not None
        reply = await session.message(
            handle,
            {"request": "publish", "audio": True, "video": True},
            {"type": "offer", "sdp": self.pc.localDescription.sdp, "trickle": False},
        )
        await self.pc.setRemoteDescription(RTCSessionDescription(**_answer(reply["jsep"])))


def _answer(jsep: dict[str, Any]) -> dict[str, str]:
    return {"sdp": jsep["sdp"], "type": jsep["type"]}


class TextRoomPerson(_JanusClient):
    """Someone in the room's text channel (Janus TextRoom over a data channel)."""

    def __init__(self, url: str, username: str, room: int = ROOM) -> None:
        super().__init__(url, room)
        self.username = username
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def join(self) -> None:
        """Set up the data channel and join the text room."""
        import json
        import secrets

        session = await self._connect()
        handle = await session.attach("janus.plugin.textroom")
        offer = await session.message(handle, {"request": "setup"})
        self.pc = RTCPeerConnection()
        await self.pc.setRemoteDescription(RTCSessionDescription(**_answer(offer["jsep"])))
        channel = self.pc.createDataChannel("JanusDataChannel")
        opened = asyncio.Event()
        channel.on("open", opened.set)
        channel.on("message", lambda m: self.messages.put_nowait(json.loads(m)))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        assert self.pc.localDescription is not None
        await session.message(
            handle,
            {"request": "ack"},
            {"type": "answer", "sdp": self.pc.localDescription.sdp, "trickle": False},
        )
        await asyncio.wait_for(opened.wait(), 10)
        channel.send(
            json.dumps(
                {
                    "textroom": "join",
                    "transaction": secrets.token_hex(6),
                    "room": self.room,
                    "username": self.username,
                }
            )
        )

    async def next_message(self, secs: float = 20.0) -> dict[str, Any]:
        """The next chat message (not joins, leaves or replies)."""

        async def read() -> dict[str, Any]:
            while True:
                data = await self.messages.get()
                if data.get("textroom") == "message":
                    return data

        return await asyncio.wait_for(read(), secs)
