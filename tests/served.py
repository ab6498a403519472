"""A real meetmood for tests: a ``meetmood serve`` child process, and a peer that joins.

:func:`serve` starts ``python -m bot serve`` in this run's clean environment
(:func:`tests.isolation.server_env`) with the given settings, on a free loopback port,
and keeps reading everything it prints; by default it returns once the server's models
are loaded too (the server answers before that: ``/healthz`` says when). :func:`join_peer`
makes an aiortc peer join a meeting as a browser does (offer, consent), through any
aiohttp client.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription

from tests.isolation import server_env

#: What every server here runs with besides its database: loopback ICE, quick flushes.
LOOPBACK = {
    "webrtc.ice_addresses": ["127.0.0.1"],
    "webrtc.drop_mdns_candidates": True,
    "limits.allow_private_candidates": True,  # the test peers offer 127.0.0.1
    "storage.flush_interval_secs": 0.1,
}


@dataclass
class Served:
    """A ``meetmood serve`` child process and everything it printed (stdout and stderr)."""

    proc: asyncio.subprocess.Process
    url: str
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def line_matching(self, pattern: str, secs: float = 30.0) -> re.Match[str]:
        """The first printed line that matches ``pattern`` (waiting for it if need be)."""
        async with asyncio.timeout(secs):
            while True:
                for line in self.lines:
                    if m := re.search(pattern, line):
                        return m
                if self.reader is not None and self.reader.done():
                    raise AssertionError(f"never printed {pattern!r}:\n{self.output}")
                await asyncio.sleep(0.05)

    async def stop(self, sig: int = signal.SIGINT) -> int:
        """Send ``sig`` (SIGINT: the clean shutdown, as Ctrl-C), wait, return the exit status."""
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        try:
            code = await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        if self.reader is not None:
            await asyncio.wait_for(self.reader, 10)
        return code


async def serve(
    database: Path, start_secs: float = 60.0, *, models_loaded: bool = True, **settings: Any
) -> Served:
    """Start ``python -m bot serve`` on a free loopback port with the database and settings.

    ``models_loaded``: return only once ``/healthz`` says the models are loaded (within
    ``start_secs`` too); else as soon as the server answers.
    """
    values = {**LOOPBACK, "server.port": 0, "storage.database": str(database), **settings}
    env = settings_env(values)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    served = Served(proc, "")
    async with asyncio.timeout(start_secs):
        while not served.url:
            line = (await proc.stdout.readline()).decode()
            if not line:
                raise AssertionError("the server did not start:\n" + served.output)
            served.lines.append(line)
            if m := re.search(r"running at (http://\S+?)/ ", line):
                served.url = m.group(1)

    async def read_rest() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            served.lines.append(raw.decode())

    served.reader = asyncio.create_task(read_rest())
    if models_loaded:
        async with asyncio.timeout(start_secs), aiohttp.ClientSession() as http:
            while True:
                async with http.get(f"{served.url}/healthz") as resp:
                    if (await resp.json())["models"] == "ready":
                        break
                await asyncio.sleep(0.1)
    return served


def settings_env(values: dict[str, Any]) -> dict[str, str]:
    """This run's clean environment with ``values`` ("section.key": value) as settings."""
    return server_env(
        {"MEETMOOD_" + key.upper().replace(".", "__"): env_value(v) for key, v in values.items()}
    )


def env_value(value: Any) -> str:
    """A setting's value as a ``MEETMOOD_*`` environment variable spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return str(value)


async def join_peer(
    client: Any,
    url: str,
    join_token: str,
    pc: RTCPeerConnection,
    name: str = "Ada",
    *,
    answer: bool = True,
) -> dict[str, Any]:
    """Join as a browser does (offer, consent) by POSTing to ``url`` with ``client``.

    ``client`` is an aiohttp ``ClientSession`` (``url`` absolute) or a test client
    (``url`` a path). With ``answer`` the peer takes the server's answer. Returns the
    join answer's body.
    """
    await pc.setLocalDescription(await pc.createOffer())
    assert pc.localDescription is not None
    async with client.post(
        url,
        json={
            "token": join_token,
            "display_name": name,
            "consent": True,
            "offer": {"sdp": pc.localDescription.sdp, "type": "offer"},
        },
    ) as resp:
        body: dict[str, Any] = await resp.json()
        assert resp.status == 201, body
    if answer:
        await pc.setRemoteDescription(RTCSessionDescription(**body["answer"]))
    return body
