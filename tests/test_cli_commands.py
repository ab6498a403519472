"""``meetmood meeting create``, ``bench pipeline`` and eval's exit status 1, as users run them."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import cv2
import pytest

from analyzers.face.emotion import DEEPFACE_EMOTION_WEIGHTS
from analyzers.voice.synth import espeak_speech
from bot.store import Store
from tests.fixtures import run_cli
from tests.media import astronaut, write_wav


async def read_meetings(database: Path) -> list[object]:
    store = Store(database)
    await store.open()
    try:
        return list(await store.list_meetings())
    finally:
        await store.close()


@pytest.mark.unit
def test_meeting_create_prints_working_links_and_stores_the_meeting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    database = tmp_path / "meetmood.sqlite3"
    code, out, err = run_cli(
        capsys,
        "meeting",
        "create",
        "--name",
        "  Weekly sync  ",
        "--database",
        database,
        "--set",
        "server.public_url=https://meet.example.org",
    )
    assert code == 0, err
    meeting = re.search(r"^meeting: +Weekly sync \((\S+)\)$", out, re.MULTILINE)
    join = re.search(r"^join link: (\S+)$", out, re.MULTILINE)
    host = re.search(r"^host link: (\S+)$", out, re.MULTILINE)
    assert meeting and join and host, out
    meeting_id = meeting.group(1)
    join_url, host_url = urlsplit(join.group(1)), urlsplit(host.group(1))
    assert (join_url.scheme, join_url.netloc, join_url.path) == (
        "https",
        "meet.example.org",
        f"/join/{meeting_id}",
    )
    assert host_url.path == f"/host/{meeting_id}"
    assert "shown only once" in out
    # The links work against what was stored: the join token as is, the host token by hash.
    (record,) = asyncio.run(read_meetings(database))
    assert record.id == meeting_id and record.name == "Weekly sync"  # type: ignore[attr-defined]
    (join_token,) = parse_qs(join_url.query)["token"]
    (host_token,) = parse_qs(host_url.query)["token"]
    assert record.join_token_matches(join_token)  # type: ignore[attr-defined]
    assert record.host_token_matches(host_token)  # type: ignore[attr-defined]
    assert not record.host_token_matches(join_token)  # type: ignore[attr-defined]
    assert host_token not in database.read_bytes().decode("latin-1")  # stored hashed only

    # `meeting list` finds it, with its join link and never the host link.
    code, listed, err = run_cli(capsys, "meeting", "list", "--database", database)
    assert code == 0, err
    assert meeting_id in listed and join_token in listed and host_token not in listed


@pytest.mark.unit
def test_meeting_create_without_a_name_is_called_meeting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_cli(capsys, "meeting", "create", "--database", tmp_path / "m.sqlite3")
    assert code == 0, err
    assert re.search(r"^meeting: +Meeting \(\S+\)$", out, re.MULTILINE), out


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")
def test_bench_pipeline_tiny_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # One loopback peer sending the astronaut at 10 fps for 1 s (after its 3 s warm-up).
    code, out, err = run_cli(
        capsys,
        "bench",
        "pipeline",
        "--seconds",
        "1",
        "--send-fps",
        "10",
        "--json",
        "--database",
        tmp_path / "unused.sqlite3",
        "--set",
        "inference.mode=thread",
        "--set",
        'analyzers.enabled=["face_emotion"]',
        "--set",
        "analyzers.face_emotion.device=cpu",
        "--set",
        "analyzers.face_emotion.fps=5",
    )
    assert code == 0, err
    figures = json.loads(out)  # stdout is pure JSON
    assert figures["participants"] == 1 and figures["inference_mode"] == "thread"
    assert figures["send_fps"] == 10.0 and figures["target_analysis_fps"] == 5.0
    # The camera's frames arrived (VP8 over loopback); analysis kept to its own rate.
    assert 5.0 <= figures["frames_received_per_sec"] <= 13.0
    assert 0.0 < figures["analysed_per_sec"] <= 5.0 * 1.5
    assert figures["failures"] == 0
    assert 0 < figures["inference_ms_p50"] <= figures["inference_ms_p95"]
    assert figures["inference_ms_p50"] <= figures["latency_ms_p50"]
    assert not (tmp_path / "unused.sqlite3").exists()  # the bench keeps nothing on disk


@pytest.mark.model
def test_eval_voice_exits_1_when_the_model_cannot_load(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    write_wav(clips / "a.wav", espeak_speech("Hello there.") * 32767, 16_000)
    labels = tmp_path / "labels.csv"
    labels.write_text("filename,label\na.wav,neutral\n")
    missing = tmp_path / "no-such-model"
    code, out, err = run_cli(capsys, "eval", "voice", clips, "--labels", labels, "--model", missing)
    assert code == 1
    assert out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("meetmood: cannot load the voice emotion model: ")
    assert str(missing) in line


@pytest.mark.model
def test_eval_faces_exits_1_when_the_model_cannot_load(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # DeepFace's weights file is there but is not a torch file (a broken download).
    home = tmp_path / "deepface"
    weights = home / ".deepface" / "weights" / DEEPFACE_EMOTION_WEIGHTS
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"<html>not the weights</html>")
    photos = tmp_path / "photos"
    photos.mkdir()
    assert cv2.imwrite(str(photos / "a.png"), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    labels = tmp_path / "labels.csv"
    labels.write_text("filename,label\na.png,happy\n")
    code, out, err = run_cli(
        capsys,
        "eval",
        "faces",
        photos,
        "--labels",
        labels,
        "--model",
        "deepface",
        "--device",
        "cpu",
        "--set",
        f"analyzers.face_emotion.deepface_home={home}",
    )
    assert code == 1
    assert out == ""
    assert err.strip().startswith("meetmood: cannot load the face analyzer: ")
    assert DEEPFACE_EMOTION_WEIGHTS in err
    assert weights.read_bytes() == b"<html>not the weights</html>"  # left as it was
