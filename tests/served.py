"""A real meetmood for tests: a ``meetmood serve`` child process, and a peer that joins.

:func:`serve` starts ``python -m bot serve`` (:func:`bot.child.start_server`) in this
run's clean environment (:func:`tests.isolation.server_env`) with the given settings, on a
free loopback port, and keeps reading everything it prints; by default it returns once the
server's models are loaded too (the server answers before that: ``/healthz`` says when).
:func:`join_peer`
makes an aiortc peer join a meeting as a browser does (offer, consent), through any
aiohttp client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription

from bot.child import ChildServer, start_server
from tests.isolation import server_env

#: What every server here runs with besides its database: loopback ICE, quick flushes.
LOOPBACK = {
    "webrtc.ice_addresses": ["127.0.0.1"],
    "webrtc.drop_mdns_candidates": True,
    "limits.allow_private_candidates": True,  # the test peers offer 127.0.0.1
    "storage.flush_interval_secs": 0.1,
}


async def serve(
    database: Path, start_secs: float = 60.0, *, models_loaded: bool = True, **settings: Any
) -> ChildServer:
    """Start ``python -m bot serve`` on a free loopback port with the database and settings.

    ``models_loaded``: return only once ``/healthz`` says the models are loaded (within
    ``start_secs`` too); else as soon as the server answers.
    """
    values = {**LOOPBACK, "server.port": 0, "storage.database": str(database), **settings}
    served = await start_server(env=settings_env(values), start_secs=start_secs)
    if models_loaded:
        await served.wait_models_loaded(start_secs)
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
