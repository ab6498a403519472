"""Benchmark: ``meetmood bench startup``, how soon a new server answers and analyses.

Each run launches ``python -m bot serve`` as users do (its models in spawned worker
processes), with the configured settings plus a temporary database, a free loopback
port, loopback-only WebRTC and no downloads (``local_files_only``), and measures:

* **first HTTP answer**: seconds from launch to the first answer of ``GET /healthz``
  (asked as soon as the server prints its address; the models still load then);
* **models ready**: seconds from launch until ``/healthz`` says ``models: ready``
  (asked every 50 ms);
* then, on that warm server, a participant joins: a real aiortc peer in this process
  sends a real face (scikit-image's astronaut, VP8 at 640x480, 15 fps) through the join
  API as a browser does, and the host's sidebar WebSocket is read. **Join → first
  state**: from sending the join request to the participant's first
  ``participant_state`` on the sidebar socket; **join → face**: to their first state
  with a face in view.

The runs are sequential and their medians are reported with every run's figures. The
sender encodes its video in this process, on the same cores as the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription

from bot.bench import ImageTrack, bench_face_image
from bot.child import environment_without_settings, start_server
from bot.sources.browser import restrict_host_addresses

#: How often /healthz is asked while the models load, in seconds.
POLL_SECS = 0.05
#: Longest wait for each stage of a run, in seconds.
STAGE_TIMEOUT_SECS = 120.0
#: The sender's camera rate.
SEND_FPS = 15.0


@dataclass(frozen=True, slots=True)
class StartupRun:
    """One launch: seconds from launch, and from the participant's join request."""

    first_http_secs: float
    models_ready_secs: float
    join_to_first_state_secs: float
    join_to_face_secs: float
    models_at_first_http: str
    analyzers: dict[str, str]


@dataclass(frozen=True, slots=True)
class StartupFigures:
    """Medians over the runs, and each run's figures."""

    runs: int
    first_http_secs: float
    models_ready_secs: float
    join_to_first_state_secs: float
    join_to_face_secs: float
    cpus: int
    per_run: list[dict[str, Any]] = field(default_factory=list)


def bench_settings(database: Path) -> dict[str, Any]:
    """What the bench sets on top of the user's settings: loopback, a free port, offline."""
    return {
        "server.host": "127.0.0.1",
        "server.port": 0,
        "storage.database": str(database),
        "webrtc.ice_addresses": ["127.0.0.1"],
        "webrtc.drop_mdns_candidates": True,
        "security.open_creation": True,
        "limits.allow_private_candidates": True,
        "analyzers.voice_emotion.local_files_only": True,
    }


async def bench_startup(
    runs: int = 3, config: Path | None = None, sets: tuple[str, ...] = ()
) -> StartupFigures:
    """Launch ``meetmood serve`` ``runs`` times and time its start-up (see the module doc)."""
    image = bench_face_image()
    # This process's peer offers loopback only, as the server does (aioice leaves it out).
    restrict_host_addresses(["127.0.0.1"])
    results: list[StartupRun] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="meetmood-bench-startup-") as folder:
            results.append(await _run_once(Path(folder), image, config, sets))

    def median(name: str) -> float:
        return round(float(statistics.median(getattr(r, name) for r in results)), 2)

    return StartupFigures(
        runs=runs,
        first_http_secs=median("first_http_secs"),
        models_ready_secs=median("models_ready_secs"),
        join_to_first_state_secs=median("join_to_first_state_secs"),
        join_to_face_secs=median("join_to_face_secs"),
        cpus=os.cpu_count() or 1,
        per_run=[asdict(r) for r in results],
    )


async def _run_once(
    folder: Path, image: Any, config: Path | None, sets: tuple[str, ...]
) -> StartupRun:
    # The user's --set flags first; the bench's last, so that it decides where and how.
    bench = bench_settings(folder / "meetmood.sqlite3")
    env = environment_without_settings()
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    launched = time.monotonic()
    server = await start_server(
        env=env,
        config=config,
        sets=[*sets, *(f"{k}={json.dumps(v)}" for k, v in bench.items())],
        start_secs=STAGE_TIMEOUT_SECS,
        keep_lines=200,
    )
    url = server.url
    try:
        async with aiohttp.ClientSession() as http:
            health = await _get_json(http, f"{url}/healthz")
            first_http = time.monotonic() - launched
            # A server without the field (an older meetmood) answers once its models are loaded.
            models_at_first = str(health.get("models", "ready"))
            async with asyncio.timeout(STAGE_TIMEOUT_SECS):
                while health.get("models", "ready") != "ready":
                    await asyncio.sleep(POLL_SECS)
                    health = await _get_json(http, f"{url}/healthz")
            models_ready = time.monotonic() - launched
            first_state, face = await _join_and_watch(http, url, image)
    except BaseException:
        print("".join(server.lines[-30:]), file=sys.stderr)
        raise
    finally:
        await server.stop()
    return StartupRun(
        first_http_secs=round(first_http, 3),
        models_ready_secs=round(models_ready, 3),
        join_to_first_state_secs=round(first_state, 3),
        join_to_face_secs=round(face, 3),
        models_at_first_http=models_at_first,
        analyzers=dict(health.get("analyzers", {})),
    )


async def _get_json(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url) as resp:
        resp.raise_for_status()
        body: dict[str, Any] = await resp.json()
        return body


async def _join_and_watch(http: aiohttp.ClientSession, url: str, image: Any) -> tuple[float, float]:
    """A participant joins; seconds from their join request to their first state, and face."""
    async with http.post(f"{url}/api/meetings", json={"name": "bench startup"}) as resp:
        resp.raise_for_status()
        meeting = await resp.json()
    auth = {"Authorization": f"Bearer {meeting['host_token']}"}
    pc = RTCPeerConnection()
    try:
        async with http.ws_connect(f"{url}/api/meetings/{meeting['id']}/ws", headers=auth) as ws:
            snapshot = await ws.receive_json()
            if snapshot.get("type") != "snapshot":
                raise RuntimeError(f"the sidebar socket began with {snapshot.get('type')!r}")
            pc.addTrack(ImageTrack(image, SEND_FPS))
            await pc.setLocalDescription(await pc.createOffer())  # gathers the candidates
            assert pc.localDescription is not None
            join_token = meeting["join_url"].split("token=")[1]
            body = {
                "token": join_token,
                "display_name": "Bench",
                "consent": True,
                "offer": {"sdp": pc.localDescription.sdp, "type": "offer"},
            }
            joined = time.monotonic()
            async with http.post(
                f"{url}/api/meetings/{meeting['id']}/participants", json=body
            ) as resp:
                resp.raise_for_status()
                answer = await resp.json()
            await pc.setRemoteDescription(RTCSessionDescription(**answer["answer"]))
            pid = answer["participant_id"]
            first_state: float | None = None
            async with asyncio.timeout(STAGE_TIMEOUT_SECS):
                while True:
                    event = await ws.receive_json()
                    if event.get("type") != "participant_state":
                        continue
                    state = event["state"]
                    if state["participant_id"] != pid:
                        continue
                    if first_state is None:
                        first_state = time.monotonic() - joined
                    if state["face_visible"]:
                        return first_state, time.monotonic() - joined
    finally:
        await pc.close()


def format_startup(figures: StartupFigures, as_json: bool) -> str:
    """The figures as JSON, or as a table of medians followed by each run."""
    data = asdict(figures)
    if as_json:
        return json.dumps(data)
    keys = (
        "first_http_secs",
        "models_ready_secs",
        "join_to_first_state_secs",
        "join_to_face_secs",
    )
    rows = [f"{'':<26}{'median':>8}" + "".join(f"{f'run {i + 1}':>8}" for i in range(figures.runs))]
    for key in keys:
        values = "".join(f"{run[key]:>8.2f}" for run in data["per_run"])
        rows.append(f"{key:<26}{data[key]:>8.2f}{values}")
    first = data["per_run"][0] if data["per_run"] else {}
    rows.append(f"models at first answer: {first.get('models_at_first_http')}")
    rows.append(f"analyzers: {first.get('analyzers')}  (cpus: {figures.cpus})")
    return "\n".join(rows)
