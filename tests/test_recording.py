"""Recorded meetings: a file made with PyAV (a real face, espeak speech) analysed end to end."""

from __future__ import annotations

import asyncio
import fractions
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import pytest
from yarl import URL

from analyzers.voice.bench import save_tiny_emotion_model
from analyzers.voice.synth import espeak_speech
from bot.cli import main
from bot.meeting import MeetingManager
from bot.recordings import AnalysisProgress, analyze_recording
from bot.session.clock import MediaPacing, SystemClock
from bot.settings import Settings
from bot.sources import recording
from bot.sources.recording import RecordingClock, RecordingError, probe
from bot.store import Store
from tests.conftest import ADMIN, make_settings
from tests.media import face_frame_rgb, two_faces_frame, write_recording, write_wav
from web.app import create_app

pytestmark = pytest.mark.model

#: Seconds of the main test recording.
SECS = 12.0
SENTENCES = (
    "Good morning everyone, thanks for joining the call today.",
    "The quarterly numbers look good, and we should ship next week.",
    "Any questions before we move on?",
)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """About 9 s of espeak speech with pauses, 16 kHz mono."""
    pause = np.zeros(8000, np.float32)
    return np.concatenate([np.concatenate([pause, espeak_speech(s)]) for s in SENTENCES])


@pytest.fixture(scope="module")
def meeting_mp4(tmp_path_factory: pytest.TempPathFactory, speech: np.ndarray) -> Path:
    """12 s of a 640x480, 30 fps H.264 camera on the astronaut's face, with AAC speech."""
    path = tmp_path_factory.mktemp("media") / "standup.mp4"
    return write_recording(path, SECS, image=face_frame_rgb(680, 520), speech=speech)


def _cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _flags(tmp_path: Path, *extra: str) -> list[str]:
    sets = {
        "inference.mode": "thread",
        "analyzers.face_emotion.device": "cpu",
        "analyzers.voice_emotion.device": "cpu",
        "analyzers.voice_emotion.local_files_only": "true",
        "summaries.interval_secs": "5",
        "logging.level": "WARNING",
    }
    argv = ["--database", str(tmp_path / "meetmood.sqlite3")]
    for key, value in sets.items():
        argv += ["--set", f"{key}={value}"]
    for item in extra:
        argv += ["--set", item]
    return argv


def test_probe_describes_the_file(meeting_mp4: Path) -> None:
    info = probe(meeting_mp4)
    assert info.duration_secs == pytest.approx(SECS, abs=0.1)
    assert info.video == "h264 640x480 30 fps" and info.fps == 30
    assert info.audio is not None and info.audio.startswith("aac 48000 Hz")
    assert info.tracks == ("video", "audio")


async def test_the_recording_clock_follows_its_slowest_track() -> None:
    clock = RecordingClock(1000.0, ("video", "audio"))
    woke: list[float] = []

    async def tick() -> None:
        while True:
            await clock.sleep(1.0)
            woke.append(clock.wall())

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    clock.advance("audio", 3.0)  # audio ran ahead: the video still holds the time back
    await asyncio.sleep(0)
    assert clock.wall() == 1000.0 and woke == []
    clock.advance("video", 1.2)
    await asyncio.sleep(0)
    assert woke == [1001.2]
    clock.advance("video", 2.0)  # not a second since the last tick
    await asyncio.sleep(0)
    assert woke == [1001.2]
    clock.end("video")  # the audio alone now
    await asyncio.sleep(0)
    assert woke == [1001.2, 1003.0]
    clock.end("audio")
    assert clock.finished and clock.position == 3.0
    ticker.cancel()
    await asyncio.gather(ticker, return_exceptions=True)


@pytest.mark.parametrize(
    ("file_fps", "rounding", "picked"),
    [(15, 0.001, 45), (30, 0.001, 45), (25, None, 45), (6, None, 18)],
)
async def test_media_pacing_takes_every_due_frame(
    file_fps: int, rounding: float | None, picked: int
) -> None:
    # 3 s of frames at ``file_fps``, timestamps rounded as WebM/Matroska round them:
    # analysing at 15 fps takes 15 a second (every frame of a file at 15 fps or less).
    pacing = MediaPacing()
    taken = []
    for i in range(3 * file_fps):
        ts = i / file_fps if rounding is None else round(i / file_fps / rounding) * rounding
        if await pacing.wait_due(SystemClock(), ts):
            pacing.analysed(SystemClock(), ts, 15.0)
            taken.append(ts)
    assert len(taken) == picked


async def test_a_webm_with_opus_is_analysed_frame_for_frame(
    tmp_path: Path, speech: np.ndarray
) -> None:
    webm = write_recording(tmp_path / "call.webm", 2.0, image=face_frame_rgb(680, 520),
                           speech=speech, fps=15, video_codec="libvpx",
                           audio_codec="libopus")  # fmt: skip
    manager = _manager(tmp_path)
    result, _ = await _analyse(manager, webm)
    assert result.info.video == "vp8 640x480 15 fps" and result.info.audio is not None
    assert result.stats.frames_received == result.stats.frames_analyzed == 30
    assert result.stats.audio_frames > 0


async def _stored(path: Path, meeting_id: str) -> dict[str, Any]:
    store = Store(path)
    await store.open()
    try:
        people = await store.list_participants(meeting_id)
        return {
            "people": people,
            "states": {p.id: await store.read_states(meeting_id, p.id) for p in people},
            "summaries": sorted(await store.summaries(meeting_id), key=lambda s: s.window_start),
            "room": await store.read_room(meeting_id),
            "meetings": await store.list_meetings(),
        }
    finally:
        await store.close()


def test_cli_analyses_a_recording_faster_than_real_time_and_reports_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, meeting_mp4: Path
) -> None:
    model = save_tiny_emotion_model(tmp_path / "tiny-er")
    report = tmp_path / "report.html"
    argv = ["analyze", str(meeting_mp4), "--name", "Standup", "--report", str(report), "--json"]
    argv += _flags(tmp_path, f"analyzers.voice_emotion.model={model}")
    started = time.monotonic()
    code, out, err = _cli(capsys, argv)
    wall = time.monotonic() - started
    assert code == 0, err
    result = json.loads(out)

    # A progress bar with the media seconds done, the speed and an ETA, on stderr.
    assert re.search(r"standup\.mp4: +100%.*12\.0/12\.0 s of media \[.*<.*x real time\]", err)
    # Every frame was taken (none dropped for being late); one in two analysed (15 of 30 fps).
    frames = result["frames"]
    assert frames["received"] == 360 and frames["dropped"] == 0
    assert 170 <= frames["analysed"] <= 181
    assert result["media_secs"] == pytest.approx(SECS, abs=0.1)
    assert result["participants"] == 1
    # The speed is reported (how fast is `meetmood bench`'s business, not a test's: a busy
    # CI box must not fail it); the whole command, with model loading, is shown for the record.
    print(f"analysis speed {result['speed']:.2f}x real time; command {wall:.1f} s")
    assert result["speed"] == pytest.approx(SECS / result["wall_secs"], rel=0.01)

    # The report was written, and the meeting stored with states from face and voice.
    assert Path(result["report"]) == report
    assert "Standup" in report.read_text()
    stored = asyncio.run(_stored(tmp_path / "meetmood.sqlite3", result["meeting_id"]))
    (person,) = stored["people"]
    states = stored["states"][person.id]
    start = person.joined_at
    assert person.display_name == "Recording" and person.source == "recording"
    assert person.left_at is not None and person.left_at - start == pytest.approx(SECS, abs=0.1)
    assert sum(s.face_visible for s in states) > 0.8 * len(states)
    assert any(s.emotion is not None and s.emotion.dominant == "happy" for s in states)
    assert any(s.voice is not None and s.voice.is_speaking for s in states)
    assert any(s.voice is not None and s.voice.emotion is not None for s in states)
    # Meeting time is media time: states span the recording, not the wall time it took.
    assert max(s.ts for s in states) - start == pytest.approx(SECS, abs=0.6)
    # The room once a second of media, and a summary every 5 s of media, then at the end.
    room = stored["room"]
    assert abs(len(room) - SECS) <= 1
    assert all(0.9 < b.ts - a.ts < 1.3 for a, b in zip(room, room[1:], strict=False))
    windows = [
        (round(s.window_start - start), round(s.window_end - start)) for s in stored["summaries"]
    ]
    assert windows == [(0, 5), (5, 10), (10, 12)]
    assert all(s.error is None for s in stored["summaries"])


def _manager(tmp_path: Path, **overrides: Any) -> MeetingManager:
    return MeetingManager(make_settings(tmp_path, **{"summaries.interval_secs": 5, **overrides}))


async def _analyse(manager: MeetingManager, path: Path) -> tuple[Any, list[AnalysisProgress]]:
    await manager.start()
    seen: list[AnalysisProgress] = []
    try:
        result = await analyze_recording(manager, path, on_progress=seen.append)
    finally:
        await manager.close()
    return result, seen


async def test_an_audio_recording_gives_voice_without_a_face(
    tmp_path: Path, speech: np.ndarray
) -> None:
    samples = np.zeros(16_000 * 10, np.float32)
    samples[: len(speech)] = speech[: len(samples)]
    wav = write_wav(tmp_path / "call.wav", (samples * 32767).astype(np.int16), 16_000)
    manager = _manager(tmp_path)
    result, seen = await _analyse(manager, wav)
    print(f"audio only: {result.speed:.1f}x real time")
    assert result.info.tracks == ("audio",) and result.participants == 1
    assert seen[-1].done_secs == seen[-1].duration_secs == pytest.approx(10.0)
    assert result.stats.audio_frames > 0 and result.stats.audio_frames_dropped == 0
    stored = await _stored(tmp_path / "meetmood.sqlite3", result.meeting_id)
    states = next(iter(stored["states"].values()))
    assert not any(s.face_visible for s in states)
    talk = [s.voice.talk_secs for s in states if s.voice is not None]
    assert max(talk) > 4.0  # most of the sentences were heard as speech
    assert len(stored["summaries"]) >= 2


async def test_a_silent_video_with_two_faces_gives_two_participants(tmp_path: Path) -> None:
    frame = two_faces_frame()
    canvas = np.zeros((520, 680, 3), np.uint8)
    canvas[20:500, 20:660] = frame
    avi = write_recording(tmp_path / "room.avi", 4.0, image=canvas, fps=15, video_codec="mpeg4")
    manager = _manager(tmp_path)
    result, _ = await _analyse(manager, avi)
    assert result.info.tracks == ("video",)
    stored = await _stored(tmp_path / "meetmood.sqlite3", result.meeting_id)
    names = sorted(p.display_name for p in stored["people"])
    assert names == ["Recording", "Recording · face 2"]
    for person in stored["people"]:
        states = stored["states"][person.id]
        assert any(s.face_visible for s in states), person.display_name
        assert all(s.voice is None for s in states)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: d / "missing.mp4", "no such file"),
        (lambda d: d, "not a file"),
        (
            lambda d: _write(d / "notes.mp4", b"these are minutes, not a video\n" * 50),
            "not a media",
        ),
        (lambda d: _write(d / "cut.mp4", d.joinpath("whole.mp4").read_bytes()[:20_000]), None),
        (lambda d: _subtitles_only(d / "subs.mkv"), "has no audio and no video stream"),
    ],
)
def test_bad_files_are_one_line_and_store_nothing(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    meeting_mp4: Path,
    make: Any,
    reason: str | None,
) -> None:
    (tmp_path / "whole.mp4").write_bytes(meeting_mp4.read_bytes())
    path = make(tmp_path)
    code, out, err = _cli(capsys, ["analyze", str(path), *_flags(tmp_path)])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"meetmood: {path}: "), err
    if reason is not None:
        assert reason in err
    assert not (tmp_path / "meetmood.sqlite3").exists()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _subtitles_only(path: Path) -> Path:
    """A Matroska file whose one stream is a subtitle track."""
    out = av.open(str(path), "w", format="matroska")
    stream = out.add_stream("ass")
    out.start_encoding()
    packet = av.Packet(b"0,0,Default,,0,0,0,,Hello")
    packet.stream, packet.pts, packet.dts = stream, 0, 0
    packet.duration, packet.time_base = 1000, fractions.Fraction(1, 1000)
    out.mux(packet)
    out.close()
    return path


async def test_a_file_that_breaks_mid_way_leaves_no_meeting(
    tmp_path: Path, meeting_mp4: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real = recording._Decoder.next_frames

    def breaking(self: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls > 40:
            raise OSError("the disk went away")
        return real(self)

    monkeypatch.setattr(recording._Decoder, "next_frames", breaking)
    manager = _manager(tmp_path)
    with pytest.raises(RecordingError, match="cannot be read to its end: the disk went away"):
        await _analyse(manager, meeting_mp4)
    stored = await _stored(tmp_path / "meetmood.sqlite3", "none")
    assert stored["meetings"] == []


async def test_upload_is_analysed_then_deleted_and_never_served(
    aiohttp_client: Any, tmp_path: Path, speech: np.ndarray
) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    settings: Settings = make_settings(
        tmp_path, **{"recordings.upload_dir": str(uploads), "recordings.max_upload_mb": 1}
    )
    client = await aiohttp_client(create_app(settings))
    home = await (await client.get("/")).text()
    assert 'id="recording-form"' in home and "Up to 1 MB" in home

    # Too large: 413, and nothing kept.
    big = np.random.default_rng(0).bytes(1_300_000)
    resp = await client.post("/api/recordings", data=_form(big, "big.mp4", "Big"), headers=ADMIN)
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "too_large"
    assert list(uploads.iterdir()) == []

    # A recording: queued, analysed with progress, then its meeting's links; the file is gone.
    clip = write_recording(tmp_path / "clip.mp4", 4.0, image=face_frame_rgb(680, 520),
                           speech=speech, fps=15)  # fmt: skip
    form = _form(clip.read_bytes(), "clip.mp4", "Retro")
    resp = await client.post("/api/recordings", data=form, headers=ADMIN)
    assert resp.status == 202, await resp.text()
    job = await resp.json()
    seen: list[dict[str, Any]] = []
    for _ in range(300):
        status = await (await client.get(job["status_url"])).json()
        seen.append(status)
        if status["state"] in ("done", "failed"):
            break
        await asyncio.sleep(0.1)
    assert status["state"] == "done", status
    assert status["participants"] == 1 and status["speed"] > 0
    assert any(s["state"] == "analysing" for s in seen)
    assert list(uploads.iterdir()) == []
    host = await client.get(URL(status["host_url"]).path_qs)
    assert host.status == 200 and "Retro" in await host.text()
    report = await client.get(URL(status["report_url"]).path_qs)
    assert report.status == 200 and "Retro" in await report.text()

    # A file that is not a recording fails with the reason; nothing kept either.
    form = _form(b"not a video" * 100, "x.mp4")
    resp = await client.post("/api/recordings", data=form, headers=ADMIN)
    bad = await resp.json()
    for _ in range(100):
        status = await (await client.get(bad["status_url"])).json()
        if status["state"] == "failed":
            break
        await asyncio.sleep(0.05)
    assert status["error"] == "not a media file (ffmpeg cannot read it)"
    assert list(uploads.iterdir()) == []
    assert (await client.get("/api/recordings/nope")).status == 404


def _form(data: bytes, filename: str, name: str | None = None) -> aiohttp.FormData:
    form = aiohttp.FormData()
    if name is not None:
        form.add_field("name", name)
    form.add_field("file", io.BytesIO(data), filename=filename)
    return form
