"""What the README and the join notice promise, checked on real servers.

- A participant's leave token is theirs: a wrong one gets 403 while they are connected,
  and they stay connected.
- Each participant's states are stored at most every ``storage.state_interval_secs``
  (besides the changes that are always stored).
- The log of a whole run (pages with tokens in their links, a join, face and speech
  analysis in the inference worker process, the sidebar, a summary, the leave, the
  shutdown) names no one and carries no token and no score, even at DEBUG.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection

from analyzers.voice.bench import save_tiny_emotion_model
from analyzers.voice.synth import espeak_speech
from bot.sinks.store import changed
from bot.store import Store
from bot.types import ParticipantStateEvent
from tests.conftest import make_settings
from tests.media import ImageVideoTrack, SpeechAudioTrack, face_frame_rgb
from tests.served import LOOPBACK, serve
from tests.test_lifecycles import (
    create_meeting,
    host,
    join,
    loopback_peers,  # noqa: F401  (an autouse fixture: this module's peers offer 127.0.0.1)
    running_app,
    until,
)
from web.keys import MANAGER

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("loopback_only")]


async def test_a_wrong_leave_token_is_refused_while_connected(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **LOOPBACK, **{"analyzers.enabled": []})
    pc = RTCPeerConnection()
    pc.addTrack(ImageVideoTrack(face_frame_rgb(), fps=10))
    async with running_app(settings) as (runner, base), aiohttp.ClientSession() as http:
        manager = runner.app[MANAGER]
        record, _ = await manager.create_meeting("Tokens")
        try:
            joined = await join(http, base, record, pc)
            pid = joined["participant_id"]
            await until(
                lambda: manager.find_participant(record.id, pid) is not None, 20, "connected"
            )
            leave = f"{base}/api/meetings/{record.id}/participants/{pid}/leave"
            others = (record.join_token, joined["participant_token"][:-1] + "x", "")
            for wrong in others:
                async with http.post(leave, json={"token": wrong}) as resp:
                    body = await resp.json()
                    assert resp.status in (400, 403), body
                    if wrong:
                        assert (resp.status, body["error"]["code"]) == (403, "token_invalid")
                assert manager.find_participant(record.id, pid) is not None  # still there
            assert pc.connectionState == "connected"
            async with http.post(leave, json={"token": joined["participant_token"]}) as resp:
                assert resp.status == 204
            assert manager.find_participant(record.id, pid) is None
            (row,) = await manager.store.list_participants(record.id)
            assert row.leave_reason == "left"
        finally:
            await pc.close()


def _scores(value: Any, key: str = "") -> list[float]:
    """Every score in a state's JSON (probabilities, readings, metrics), not its times."""
    if isinstance(value, dict):
        return [v for k, item in value.items() for v in _scores(item, k)]
    if isinstance(value, list):
        return [v for item in value for v in _scores(item, key)]
    if isinstance(value, float) and not (key == "ts" or key.endswith(("_ts", "_at"))):
        return [value]
    return []


async def test_a_whole_run_logs_no_name_token_or_score_and_stores_states_at_the_rate(
    tmp_path: Path,
) -> None:
    database = tmp_path / "meetmood.sqlite3"
    name = "Zelda Quuxington"
    record, host_token = await create_meeting(database, "Quarterly Secrets Review")
    model = save_tiny_emotion_model(tmp_path / "tiny-er")
    served = await serve(
        database,
        **{
            "logging.level": "DEBUG",
            "inference.mode": "process",  # what users run: the workers log too
            "analyzers.face_emotion.device": "cpu",
            "analyzers.voice_emotion.model": str(model),
            "analyzers.voice_emotion.device": "cpu",
            "analyzers.voice_emotion.local_files_only": True,
            "storage.state_interval_secs": 0.5,
        },
    )
    speech = espeak_speech("Good morning, I have a short update on the budget for this quarter.")
    pc = RTCPeerConnection()
    pc.addTrack(ImageVideoTrack(face_frame_rgb(), fps=15))
    pc.addTrack(SpeechAudioTrack(speech, lead_secs=0.5))
    base = served.url
    try:
        async with aiohttp.ClientSession() as http:
            # The links as people open them: tokens in the address.
            for page in (
                f"/join/{record.id}?token={record.join_token}",
                f"/host/{record.id}?token={host_token}",
            ):
                async with http.get(base + page) as resp:
                    assert resp.status == 200
            ws = await http.ws_connect(
                f"{base}/api/meetings/{record.id}/ws", headers=host(host_token)
            )
            joined = await join(http, base, record, pc, name)
            pid = joined["participant_id"]
            seen: dict[str, bool] = {"face": False, "spoke": False, "quiet": False}

            async def until_face_and_speech() -> None:
                while not all(seen.values()):
                    event = await ws.receive_json()
                    if event["type"] != "participant_state":
                        continue
                    state = event["state"]
                    seen["face"] = seen["face"] or state["face_visible"]
                    speaking = bool(state["voice"] and state["voice"]["is_speaking"])
                    seen["spoke"] = seen["spoke"] or speaking
                    seen["quiet"] = seen["spoke"] and not speaking

            await asyncio.wait_for(until_face_and_speech(), 60)
            async with http.post(
                f"{base}/api/meetings/{record.id}/summaries", headers=host(host_token)
            ) as resp:
                assert resp.status in (200, 201), await resp.text()
            async with http.post(
                f"{base}/api/meetings/{record.id}/participants/{pid}/leave",
                json={"token": joined["participant_token"]},
            ) as resp:
                assert resp.status == 204
            await ws.close()
    finally:
        await pc.close()
        code = await served.stop()
    log = served.output
    assert code == 0, log[-3000:]
    assert "stopped" in log and "participant joined" in log

    store = Store(database)
    await store.open()
    try:
        states = await store.read_states(record.id, pid)
    finally:
        await store.close()

    # Stored at most every 0.5 s, except a state that changes face, speaking or stale.
    assert len(states) >= 4
    for last, state in zip(states, states[1:], strict=False):
        assert state.ts - last.ts >= 0.5 - 1e-6 or changed(state, last), (last.ts, state.ts)
    span = states[-1].ts - states[0].ts
    changes = sum(changed(b, a) for a, b in zip(states, states[1:], strict=False))
    assert len(states) <= span / 0.5 + changes + 1

    # Nobody's name, no token, no score in the log.
    secrets = {
        name,
        "Zelda",
        "Quuxington",
        "Quarterly Secrets Review",
        record.join_token,
        host_token,
        joined["participant_token"],
    }
    leaked = [s for s in secrets if s in log]
    assert leaked == [], leaked
    scores = {
        v
        for s in states
        for v in _scores(ParticipantStateEvent(state=s).model_dump(mode="json")["state"])
    }
    # A score with one decimal (0.0, 0.5, 1.0) cannot be told from a timing such as
    # "ms=1.0" in the access log, so only finer values are looked for.
    fine = {v for v in scores if round(v, 1) != v}
    shown = {f"{v:.4f}" for v in fine if abs(v) >= 1e-3} | {repr(v) for v in fine}
    found = sorted(s for s in shown if re.search(rf"(?<![\d.]){re.escape(s)}(?!\d)", log))
    assert found == [], (found, log[-3000:])
    assert not re.search(r"\b(probs|happy|engagement|valence|arousal)\s*[=:]\s*[-\d]", log)
