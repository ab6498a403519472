"""OpenFace CSVs become meetings: parsing by header name, failed frames, faces, follow, CLI."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analyzers.face.geometry.pose import rotation_from_angles
from analyzers.face.openface import (
    OpenFaceFaceState,
    OpenFaceFrame,
    openface_gaze,
    openface_pose,
)
from bot.cli import main
from bot.meeting import MeetingManager
from bot.settings import Settings
from bot.sources.openface import (
    NO_EXPRESSION_CLASSIFIER,
    NotOpenFace,
    OpenFaceHeader,
    OpenFaceReader,
    import_openface,
)
from bot.store import Store
from bot.types import ParticipantState
from tests.conftest import make_settings
from web.app import create_app
from web.keys import MANAGER

pytestmark = pytest.mark.unit

AUS_R = (
    "AU01 AU02 AU04 AU05 AU06 AU07 AU09 AU10 AU12 AU14 AU15 AU17 AU20 AU23 AU25 AU26 AU45"
).split()
AUS_C = [*AUS_R[:-1], "AU28", "AU45"]
FPS = 15.0


def columns(version: int = 2, *, landmarks: bool = False, extra: bool = False) -> list[str]:
    """OpenFace's columns: 2.x (face_id, gaze angles) or 1.x (neither), optionally more."""
    cols = ["frame", "face_id"] if version == 2 else ["frame"]
    cols += ["timestamp", "confidence", "success"]
    cols += [f"gaze_{eye}_{axis}" for eye in (0, 1) for axis in "xyz"]
    if version == 2:
        cols += ["gaze_angle_x", "gaze_angle_y"]
    if extra:
        cols += ["eye_lmk_x_0", "my_column"]
    cols += [f"pose_T{a}" for a in "xyz"] + [f"pose_R{a}" for a in "xyz"]
    if landmarks:
        cols += [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)]
    cols += [f"{au}_r" for au in AUS_R] + [f"{au}_c" for au in AUS_C]
    return cols


def row_values(
    t: float,
    *,
    frame: int,
    face_id: int = 0,
    success: bool = True,
    confidence: float = 0.97,
    aus: Mapping[str, float] | None = None,
    gaze_x: float = 0.02,
    gaze_y: float = 0.15,
    pitch: float = 0.1,
) -> dict[str, float]:
    """One row's values by column name; a failed frame is zeros, as OpenFace writes it."""
    v: dict[str, float] = {
        "frame": frame,
        "face_id": face_id,
        "timestamp": round(t, 3),
        "confidence": confidence,
        "success": 1 if success else 0,
        "eye_lmk_x_0": 1.0,
        "my_column": 7.0,
    }
    g = np.array([math.tan(gaze_x), math.tan(gaze_y), -1.0])
    g /= np.linalg.norm(g)
    for eye in (0, 1):
        for axis, value in zip("xyz", g, strict=True):
            v[f"gaze_{eye}_{axis}"] = round(float(value), 6)
    v.update(gaze_angle_x=gaze_x, gaze_angle_y=gaze_y)
    v.update(pose_Tx=0.0, pose_Ty=0.0, pose_Tz=600.0, pose_Rx=pitch, pose_Ry=-0.05, pose_Rz=0.02)
    for i in range(68):  # open eyes: EAR = (2 * 4) / (2 * 12) = 1/3
        v[f"x_{i}"] = 100.0 + 3 * i
        v[f"y_{i}"] = 100.0
    for eye in (36, 42):
        for k, (dx, dy) in enumerate([(0, 0), (4, -2), (8, -2), (12, 0), (8, 2), (4, 2)]):
            v[f"x_{eye + k}"], v[f"y_{eye + k}"] = 100.0 + eye * 10 + dx, 100.0 + dy
    for au in AUS_R:
        v[f"{au}_r"] = 0.2
    for au in AUS_C:
        v[f"{au}_c"] = 0.0
    for au, value in (aus or {}).items():
        v[f"{au}_r"] = value
        v[f"{au}_c"] = 1.0
    if not success:
        for key in v:
            if key not in ("frame", "face_id", "timestamp", "confidence", "success"):
                v[key] = 0.0
    return v


def meeting_rows(secs: float, *, face_id: int = 0) -> Iterable[dict[str, float]]:
    """A scripted face: blinks every 3 s, a smile 10-20 s, looks away 30-36 s, frames
    failed 40-42 s and at low confidence 44-45 s."""
    for k in range(int(secs * FPS)):
        t = k / FPS
        aus: dict[str, float] = {}
        if t % 3.0 < 0.15:
            aus["AU45"] = 3.0
        if 10 <= t < 20:
            aus["AU06"] = aus["AU12"] = 2.5
        yield row_values(
            t,
            frame=k + 1,
            face_id=face_id,
            success=not 40 <= t < 42,
            confidence=0.5 if 44 <= t < 45 else 0.97,
            aus=aus,
            gaze_x=0.6 if 30 <= t < 36 else 0.02,
        )


def write_csv(
    path: Path, cols: list[str], rows: Iterable[Mapping[str, float]], sep: str = ", "
) -> Path:
    with path.open("w", encoding="utf-8") as f:
        f.write(sep.join(cols) + "\n")
        for r in rows:
            f.write(sep.join(f"{r.get(c, 0.0):g}" for c in cols) + "\n")
    return path


def test_header_by_name_in_both_separator_styles(tmp_path: Path) -> None:
    rows = list(meeting_rows(3.0))
    new = write_csv(tmp_path / "new.csv", columns(2, extra=True), rows, ", ")
    old = write_csv(tmp_path / "old.csv", list(reversed(columns(2))), rows, ",")
    groups = [OpenFaceReader().feed(p.read_text(), final=True) for p in (new, old)]
    assert len(groups[0]) == len(groups[1]) == len(rows)
    for a, b in zip(groups[0], groups[1], strict=True):
        assert a.ts == b.ts
        fa, fb = a.rows[0].face, b.rows[0].face
        assert fa is not None and fb is not None
        assert fa.aus == fb.aus and fa.pose == pytest.approx(fb.pose)
        assert fa.gaze == pytest.approx(fb.gaze)


def test_openface_1x_columns_and_missing_optional_groups(tmp_path: Path) -> None:
    # 1.x: no face_id, no gaze angles (the vectors are used); no landmarks: EAR is None.
    rows = list(meeting_rows(1.0))
    path = write_csv(tmp_path / "v1.csv", columns(1), rows, ",")
    groups = OpenFaceReader().feed(path.read_text(), final=True)
    face = groups[0].rows[0].face
    assert face is not None and face.gaze is not None and face.ear is None
    assert face.gaze[0] == pytest.approx(math.degrees(0.02), abs=0.01)
    # AUs only: pose and gaze are None, the AUs are read.
    cols = ["frame", "timestamp", "confidence", "success", "AU12_r", "AU12_c"]
    path = write_csv(tmp_path / "aus.csv", cols, rows)
    face = OpenFaceReader().feed(path.read_text(), final=True)[0].rows[0].face
    assert face is not None and face.pose is None and face.gaze is None
    assert set(face.aus) == {"AU12_r", "AU12_c"}
    # With the 68 landmarks the eye aspect ratio is read.
    path = write_csv(tmp_path / "lmk.csv", columns(2, landmarks=True), rows)
    face = OpenFaceReader().feed(path.read_text(), final=True)[0].rows[0].face
    assert face is not None and face.ear == pytest.approx(1 / 3)


def test_a_file_that_is_not_openface_names_the_missing_columns() -> None:
    with pytest.raises(NotOpenFace, match="missing columns timestamp, success$"):
        OpenFaceHeader.parse("frame, confidence, AU12_r")
    with pytest.raises(NotOpenFace, match="missing columns AUxx_r, pose_Rx"):
        OpenFaceHeader.parse("frame,timestamp,confidence,success,x_0,y_0")
    header = OpenFaceHeader.parse("\ufefftimestamp , confidence,success, pose_Rx,pose_Ry,pose_Rz")
    assert header.index["timestamp"] == 0 and header.has("pose_Rx", "pose_Ry", "pose_Rz")


def test_failed_frames_low_confidence_partial_lines_and_restarts() -> None:
    cols = ["frame", "timestamp", "confidence", "success", "AU12_r"]
    reader = OpenFaceReader(min_confidence=0.8)
    text = ", ".join(cols) + "\n1, 0.0, 0.9, 1, 1.5\n2, 0.1, 0.9, 0, 0\n3, 0.2, 0.5, 1, 1.5\n"
    groups = reader.feed(text + "4, 0.3, 0.9")  # a line OpenFace is still writing
    assert [g.rows[0].face is not None for g in groups] == [True, False]  # 3 waits for 4
    groups = reader.feed(", 1, 1.5\n5, 0.0, 0.9, 1\n6, 0.033, 0.9, 1, 1.0\n", final=True)
    # Row 3 is low confidence: no face. Row 5 has a field missing: skipped.
    # Row 6 restarts at 0 (a second chunk): it continues after row 4.
    assert [g.rows[0].face is not None for g in groups] == [False, True, True]
    assert [g.ts for g in groups] == pytest.approx([0.2, 0.3, 0.4])
    assert reader.skipped_rows == 1 and reader.rows == 5 and reader.tracked_rows == 3


def test_pose_and_gaze_in_our_conventions() -> None:
    # Rx is pitch (+ down), Ry is minus our yaw, Rz is roll; degrees.
    assert openface_pose(0.1, 0.0, 0.0, None) == pytest.approx((math.degrees(0.1), 0, 0))
    assert openface_pose(0.0, 0.2, 0.0, None) == pytest.approx((0, -math.degrees(0.2), 0))
    assert openface_pose(0.0, 0.0, 0.3, None) == pytest.approx((0, 0, math.degrees(0.3)))
    # Combined angles match our rotation: OpenFace's Rx Ry Rz = ours for the same head.
    pitch, yaw, roll = openface_pose(0.2, -0.3, 0.1, None)
    a, b, c = 0.2, -0.3, 0.1
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    assert np.allclose(rotation_from_angles(pitch, yaw, roll), rx @ ry @ rz)
    # A face 200 mm above the axis that faces the camera is turned down in camera
    # coordinates, and faces the camera relative to its line of sight.
    tilt = math.atan2(200, 800)
    assert openface_pose(tilt, 0.0, 0.0, (0.0, -200.0, 800.0)) == pytest.approx((0, 0, 0), abs=1e-6)
    # Its gaze straight at the camera reads 0/0 as well; looking right/down read +.
    to_camera = (0.0, 200.0, -800.0)
    assert openface_gaze(to_camera, (0.0, -200.0, 800.0)) == pytest.approx((0, 0), abs=1e-6)
    yaw_deg, pitch_deg = openface_gaze((math.tan(0.3), math.tan(0.1), -1.0), None) or (0, 0)
    assert (yaw_deg, pitch_deg) == pytest.approx((math.degrees(0.3), math.degrees(0.1)))


def test_blinks_are_au45_events_and_need_ten_frames_a_second() -> None:
    def run(fps: float) -> tuple[int, float | None]:
        state = OpenFaceFaceState(1)
        reading = None
        for k in range(int(12 * fps)):
            t = k / fps
            au45 = 3.0 if t % 3.0 < 0.2 else 0.1
            frame = OpenFaceFrame({"AU45_r": au45, "AU45_c": 1.0}, (5.0, 0.0, 0.0), (0.0, 5.0))
            reading = state.update(t, frame)
        assert reading is not None
        return reading.blink_count_total, reading.blink_rate_per_min

    blinks, rate = run(30.0)
    assert blinks == 3  # at 3, 6 and 9 s (the one at 0 s has no open eye before it)
    assert rate == pytest.approx(12.0, abs=0.5)  # one blink in the last 5 s
    assert run(4.0)[1] is None  # too slow to see blinks: "not measurable"


async def _import(settings: Settings, paths: list[Path], **kw: Any) -> tuple[str, Any]:
    manager = MeetingManager(settings)
    await manager.store.open()
    try:
        record, _ = await manager.create_meeting("Imported")
        result = await import_openface(
            lambda timeline: manager.live_on_clock(record.id, timeline), paths, **kw
        )
    finally:
        await manager.store.close()
    return record.id, result


async def _states(settings: Settings, meeting_id: str) -> tuple[list[Any], list[ParticipantState]]:
    store = Store(settings.storage.database_path)
    await store.open()
    try:
        return await store.list_participants(meeting_id), await store.read_states(meeting_id)
    finally:
        await store.close()


def _run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_cli_imports_two_files_into_a_meeting_with_summaries_and_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ada = write_csv(tmp_path / "ada.csv", columns(2, extra=True), meeting_rows(66.0), ", ")
    bo = write_csv(tmp_path / "bo.csv", columns(1), meeting_rows(50.0), ",")
    db = tmp_path / "m.sqlite3"
    code, out, err = _run_cli(
        capsys, ["import-openface", str(ada), str(bo), "--name", "Recorded", "--database", str(db)]
    )
    assert code == 0, err
    meeting_id = re.search(r"meeting:\s+Recorded \((\S+)\)", out)
    assert meeting_id is not None and "host link: http" in out
    assert "ada: participant" in out and f"{int(66 * FPS)} rows" in out
    settings = make_settings(tmp_path, **{"storage.database": str(db)})
    people, states = asyncio.run(_states(settings, meeting_id.group(1)))
    assert sorted(p.display_name for p in people) == ["ada", "bo"]
    assert {p.source for p in people} == {"openface"}
    by_name = {p.display_name: p for p in people}
    ada_states = [s for s in states if s.participant_id == by_name["ada"].id]
    start = min(s.ts for s in ada_states)
    # Each file's participant leaves at its own last row.
    assert by_name["bo"].left_at is not None and by_name["ada"].left_at is not None
    assert by_name["ada"].left_at - by_name["bo"].left_at == pytest.approx(16.0, abs=0.2)

    def at(t: float) -> ParticipantState:
        return min(ada_states, key=lambda s: abs(s.ts - start - t))

    smiling = at(18.0)
    assert smiling.face_visible and smiling.emotion is None  # no expression classifier
    face = smiling.face
    assert face is not None and face.calibrated and face.aus is not None
    assert face.aus["AU12"] == pytest.approx(2.5) and face.aus["AU04"] == 0.0  # _c gates
    assert "joy" in face.au_labels and face.is_smiling
    assert face.blink_rate_per_min is not None and 10 <= face.blink_rate_per_min <= 25
    assert face.head_pitch == pytest.approx(math.degrees(0.1), abs=0.5)
    assert face.head_yaw == pytest.approx(math.degrees(0.05), abs=0.5)
    assert face.gaze_yaw is not None and face.gaze_pitch is not None and not face.looking_away
    assert face.window is not None and face.window.smile_freq == pytest.approx(1.0)
    assert face.window.blink_freq is not None and face.window.percent_away == 0.0
    assert face.window.emotion_counts.get("joy", 0) > 0
    happy = smiling.readings["happy"]
    assert happy.value is None and happy.reason is not None
    assert NO_EXPRESSION_CLASSIFIER in happy.reason  # null with the reason, no neutral filler
    valence = smiling.readings["valence"].value
    assert valence is not None and valence > 0.3  # from the AUs: 6 + 12
    away = at(35.5)
    assert away.face is not None and away.face.looking_away
    assert away.face.window is not None and (away.face.window.percent_away or 0) > 50
    for t in (41.0, 44.5):  # success 0, then low confidence: no face, never neutral
        gone = at(t)
        assert not gone.face_visible and gone.face is None and gone.emotion is None
    assert at(50.0).face_visible

    store = Store(db)

    async def summaries() -> list[Any]:
        await store.open()
        try:
            return await store.summaries(meeting_id.group(1))
        finally:
            await store.close()

    made = asyncio.run(summaries())
    assert {s.reason for s in made} >= {"interval", "end"}
    interval = next(s for s in made if s.reason == "interval")
    assert interval.window_end - interval.window_start == pytest.approx(60.0, abs=1.0)
    assert interval.error is None and "ada" in interval.text

    report = tmp_path / "report.json"
    code, _, err = _run_cli(
        capsys,
        ["report", meeting_id.group(1), "--format", "json", "-o", str(report)]
        + ["--database", str(db)],
    )
    assert code == 0, err
    body = json.loads(report.read_text())
    assert len(body["participants"]) == 2


async def test_a_multi_face_file_becomes_face_slots(tmp_path: Path, settings: Settings) -> None:
    rows = []
    for k in range(int(8 * FPS)):
        t = k / FPS
        rows.append(row_values(t, frame=k + 1, face_id=3, aus={"AU12": 2.0}))
        if t >= 2.0:  # the second face shows up later, and is lost at 6 s
            rows.append(row_values(t, frame=k + 1, face_id=5, success=t < 6.0))
    path = write_csv(tmp_path / "room.csv", columns(2), rows)
    meeting_id, result = await _import(settings, [path])
    people, states = await _states(settings, meeting_id)
    names = sorted(p.display_name for p in people)
    assert names == ["room", "room · face 2"]
    sub = next(p for p in people if p.display_name == "room · face 2")
    assert sub.parent_id == result.participants["room"] and sub.face_track == 2
    sub_states = [s for s in states if s.participant_id == sub.id]
    assert sub_states and sub_states[0].ts - result.start == pytest.approx(2.0, abs=0.1)
    assert sub_states[-1].face_visible is False  # lost at 6 s: no face, not neutral
    own = [s for s in states if s.participant_id == result.participants["room"]]
    assert own[-1].face is not None and own[-1].face.aus is not None
    assert own[-1].face.aus["AU12"] == 2.0


def test_files_that_are_not_openface_fail_before_anything_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_csv(tmp_path / "good.csv", columns(2), meeting_rows(1.0))
    bad = tmp_path / "bad.csv"
    bad.write_text("frame,confidence,AU12_r\n1,0.9,1.0\n")
    db = tmp_path / "m.sqlite3"
    code, out, err = _run_cli(
        capsys, ["import-openface", str(good), str(bad), "--database", str(db)]
    )
    assert code == 2 and out == ""
    assert err == f"meetmood: {bad}: not OpenFace output: missing columns timestamp, success\n"
    assert not db.exists()  # nothing was created
    code, _, err = _run_cli(capsys, ["import-openface", str(tmp_path / "none.csv")])
    assert code == 2 and err.startswith(f"meetmood: {tmp_path / 'none.csv'}: cannot read")


async def test_follow_tails_a_growing_csv_live_to_the_sidebar(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, **{"analyzers.enabled": []})
    client = await aiohttp_client(create_app(settings))
    manager = client.app[MANAGER]
    record, host_token = await manager.create_meeting("Live")
    cols = columns(2)
    path = tmp_path / "live.csv"
    path.write_text(", ".join(cols) + "\n")  # OpenFace has started: the header only
    stop = asyncio.Event()
    importer = asyncio.create_task(
        import_openface(
            lambda timeline: manager.live_on_clock(record.id, timeline),
            [path],
            follow=True,
            poll_secs=0.02,
            idle_secs=10.0,
            stop=stop,
        )
    )

    async def write_rows() -> None:
        rows = list(meeting_rows(4.0))
        with path.open("a", encoding="utf-8") as f:
            for k in range(0, len(rows), 5):
                text = "".join(", ".join(f"{r[c]:g}" for c in cols) + "\n" for r in rows[k : k + 5])
                cut = len(text) // 2  # half a line now, the rest at the next write
                f.write(text[:cut])
                f.flush()
                await asyncio.sleep(0.01)
                f.write(text[cut:])
                f.flush()
                await asyncio.sleep(0.03)

    writer = asyncio.create_task(write_rows())
    ws = await client.ws_connect(
        f"/api/meetings/{record.id}/ws", headers={"Authorization": f"Bearer {host_token}"}
    )
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while True:
            msg = await ws.receive_json()
            if msg["type"] == "participant_state" and msg["state"]["face"]:
                seen.append(msg["state"])
                if msg["state"]["face"]["blinks"] >= 1:
                    break
    await writer
    stop.set()
    result = await importer
    await ws.close()
    state = seen[-1]
    assert state["face_visible"] and state["emotion"] is None
    assert state["face"]["aus"]["AU12"] == pytest.approx(0.0)  # gated: AU12_c is 0
    assert state["face"]["head_pitch"] == pytest.approx(math.degrees(0.1), abs=0.5)
    assert result.rows["live"] == int(4.0 * FPS) and result.skipped_rows["live"] == 0
    people, states = await _states(settings, record.id)
    assert [p.source for p in people] == ["openface"] and people[0].left_at is not None
    assert states and all(s.participant_id == people[0].id for s in states)
    # Live rows are on the wall clock: the last state is about now.
    assert abs(states[-1].ts - time.time()) < 5.0


async def test_a_followed_file_that_turns_out_not_openface_says_which(
    tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "later.csv"
    path.write_text("")  # OpenFace has not written its header yet

    async def write_later() -> None:
        await asyncio.sleep(0.05)
        path.write_text("time,score\n0.0,1\n")

    writer = asyncio.create_task(write_later())
    with pytest.raises(NotOpenFace, match=f"^{re.escape(str(path))}: not OpenFace output"):
        await _import(settings, [path], follow=True, poll_secs=0.01, idle_secs=5.0)
    await writer


def test_cli_follow_serves_and_stops_when_idle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "cam.csv", columns(2), meeting_rows(2.0))
    argv = ["import-openface", str(path), "--follow", "--idle-secs", "0.3"]
    argv += ["--database", str(tmp_path / "m.sqlite3"), "--set", "server.port=0"]
    argv += ["--set", "analyzers.enabled=[]"]
    code, out, err = _run_cli(capsys, argv)
    assert code == 0, err
    assert re.search(r"host link: http://127\.0\.0\.1:\d+/host/\S+\?token=", out)
    assert f"{int(2 * FPS)} rows" in out
