"""OpenFace FeatureExtraction CSVs as participants: read, tail and replay on media time.

OpenFace (``FeatureExtraction``, ``FaceLandmarkVidMulti``) writes one CSV row per face
per frame with action units, head pose and gaze already measured. Each CSV becomes one
participant whose :class:`OpenFaceSource` has no media: it turns rows into
:class:`~bot.types.FaceObservation` and hands them to the meeting through ``emit``.

**Reading** (:class:`OpenFaceReader`): columns are found by header name, never by
position, so any set of OpenFace flags (``-aus -pose -gaze -2Dfp ...`` or none), OpenFace
1.x and 2.x, and unknown extra columns all work. Names and values are stripped, so the
``", "`` separator of older 2.0.x releases and the ``","`` of later ones read alike.
Required: ``timestamp``, ``confidence``, ``success`` (:data:`REQUIRED_COLUMNS`) and at
least one measured group (:data:`MEASURED_GROUPS`: AU intensities ``AUxx_r``, head pose
``pose_Rx/Ry/Rz``, or gaze ``gaze_angle_x/y`` or the vectors ``gaze_0_*``/``gaze_1_*``).
Everything else is optional and read when present (``frame``, ``face_id``, ``AUxx_c``,
``pose_Tx..Tz``, ``x_36..x_47``/``y_36..y_47`` for the eye aspect ratio). A row with the
wrong number of fields (a line cut short) is skipped and counted.

**Failed frames**: ``success = 0`` or ``confidence`` below ``min_confidence`` (default
:data:`MIN_CONFIDENCE`) is a frame **without a face** ("no face"), never a neutral face:
OpenFace writes zeros there.

**Time**: ``timestamp`` is seconds from the start of each file (OpenFace: frame / fps
for videos, elapsed time for webcams), so each file keeps its own time base; a timestamp
that goes back (OpenFace runs on chunks of one video concatenated, as seed B did)
continues after the previous row instead. The meeting clock is ``origin + timestamp``
(:class:`MediaTimeline`): a finished import is placed so that its longest file ends at
the moment it runs (a CSV does not say when its video was recorded; files are aligned at
timestamp 0); a followed file's rows are placed so that what it held when first read
ends then, and later rows arrive on the wall clock. Timestamps that already are Unix
times (above :data:`UNIX_TIME_SECS`) are kept.

**Faces**: rows of one frame (same ``frame`` number, else same timestamp) are one group.
``face_id`` values become face slots in order of first appearance (slot 1 the
participant's own card, slot 2, 3, ... the meeting's "name · face k"); a slot without a
tracked row in a frame reads "no face" for that frame.

**What each row becomes**: :class:`~analyzers.face.openface.OpenFaceFaceState` per face
(AU intensities, AU-rule labels, smile, blinks from AU45, Kalman-smoothed pose and gaze,
looking away against the person's usual gaze, seed B's window) and
:func:`bot.session.faces.face_metrics`, as for a camera. OpenFace has no expression
classifier, so the observation has no expression scores and says why
(:data:`NO_EXPRESSION_CLASSIFIER`); fusion reads that reason instead of inventing a
neutral distribution. Every row feeds the face's state; observations go to fusion at
most ``fps`` times per second of media time (every row at ``fps = 0``).

:func:`import_openface` replays files as fast as they can be read, ticking the meeting
(room, moments, summaries) on media time; with ``follow=True`` it tails files that
OpenFace is still writing (polling, keeping partial last lines for the next read) until
stopped or until no file has grown for ``idle_secs``. Runs on the event loop thread.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from aiortc.mediastreams import MediaStreamTrack

from analyzers.face.geometry.au_rules import normalize_au_name
from analyzers.face.openface import (
    OpenFaceFaceState,
    OpenFaceFrame,
    eye_aspect_ratio_68,
    gaze_direction_from_angles,
    openface_gaze,
    openface_pose,
)
from analyzers.face.track_state import FaceTrackParams
from bot.session.clock import Clock, MediaPacing, Pacing
from bot.session.faces import face_metrics
from bot.types import FaceObservation, LeaveReason, Observation

if TYPE_CHECKING:
    from bot.meeting import LiveMeeting

log = logging.getLogger(__name__)

#: Columns every OpenFace CSV has (1.x and 2.x, whatever the flags).
REQUIRED_COLUMNS = ("timestamp", "confidence", "success")
#: The measured groups; at least one must be present, or there is nothing to read.
MEASURED_GROUPS = "AUxx_r, pose_Rx/pose_Ry/pose_Rz or gaze_angle_x/gaze_angle_y"
#: Rows below this ``confidence`` are frames without a face (OpenFace's own tracking
#: gate is looser; 0.8 is a common choice in OpenFace-based studies).
MIN_CONFIDENCE = 0.8
#: Observations per second of media time that go to fusion (every row feeds the face state).
IMPORT_FPS = 10.0
#: Why an imported face has no expression scores.
NO_EXPRESSION_CLASSIFIER = "OpenFace import: no expression classifier"
#: Timestamps above this are Unix times already, not seconds from the start of a file.
UNIX_TIME_SECS = 1e9
#: Frame interval assumed after a timestamp restart when none was seen yet (OpenFace's 30 fps).
DEFAULT_FRAME_SECS = 1.0 / 30.0

_POSE_R = ("pose_Rx", "pose_Ry", "pose_Rz")
_POSE_T = ("pose_Tx", "pose_Ty", "pose_Tz")
_GAZE_ANGLE = ("gaze_angle_x", "gaze_angle_y")
_GAZE_VECTORS = tuple(f"gaze_{eye}_{axis}" for eye in (0, 1) for axis in "xyz")
_EYE_POINTS = range(36, 48)


class NotOpenFace(ValueError):
    """A file that is not OpenFace output; the message names what is missing."""


# -- reading ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenFaceHeader:
    """Where each known column is in a file's rows.

    Attributes:
        width: Number of fields of a row.
        index: Stripped column name -> position.
        aus: ``AUxx_r`` / ``AUxx_c`` column names -> position.
    """

    width: int
    index: dict[str, int]
    aus: dict[str, int]

    @classmethod
    def parse(cls, line: str) -> OpenFaceHeader:
        """Read a header line.

        Raises:
            NotOpenFace: required columns are missing (named in the message).
        """
        names = [n.strip().strip('"').strip() for n in line.rstrip("\r\n").split(",")]
        if names:
            names[0] = names[0].lstrip("\ufeff")
        index = {n: i for i, n in enumerate(names) if n}
        missing = [c for c in REQUIRED_COLUMNS if c not in index]
        aus: dict[str, int] = {}
        for name, i in index.items():
            upper = name.upper()
            if upper.startswith("AU") and upper[-2:] in ("_R", "_C"):
                try:
                    normalize_au_name(name)
                except ValueError:
                    continue
                aus[name] = i
        measured = (
            any(n.upper().endswith("_R") for n in aus)
            or all(c in index for c in _POSE_R)
            or all(c in index for c in _GAZE_ANGLE)
            or all(c in index for c in _GAZE_VECTORS)
        )
        if not measured:
            missing.append(MEASURED_GROUPS)
        if missing:
            raise NotOpenFace(f"not OpenFace output: missing columns {', '.join(missing)}")
        return cls(len(names), index, aus)

    def has(self, *names: str) -> bool:
        """Whether every named column is present."""
        return all(n in self.index for n in names)


@dataclass(frozen=True, slots=True)
class OpenFaceRow:
    """One row: one face in one frame.

    Attributes:
        frame: OpenFace's frame number, or None without the column.
        face_id: OpenFace's face id (0 without the column).
        ts: Seconds on the file's own timeline (made monotonic).
        face: The measurement, or None when the face was not tracked in this row.
    """

    frame: int | None
    face_id: int
    ts: float
    face: OpenFaceFrame | None


@dataclass(frozen=True, slots=True)
class OpenFaceGroup:
    """The rows of one frame of one file."""

    ts: float
    rows: tuple[OpenFaceRow, ...]


def _float(fields: Sequence[str], i: int) -> float | None:
    try:
        value = float(fields[i])
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _floats(
    fields: Sequence[str], index: dict[str, int], names: Sequence[str]
) -> list[float] | None:
    """The named columns' values, or None if any is missing or not a number."""
    values = []
    for name in names:
        value = _float(fields, index[name])
        if value is None:
            return None
        values.append(value)
    return values


class OpenFaceReader:
    """Turns a file's text, as it arrives, into frame groups. Pure; one per file.

    Args:
        min_confidence: Rows below this confidence have no face.
    """

    def __init__(self, min_confidence: float = MIN_CONFIDENCE) -> None:
        """Start before the header."""
        self.min_confidence = min_confidence
        self.header: OpenFaceHeader | None = None
        self.rows = 0
        self.tracked_rows = 0
        self.skipped_rows = 0
        self._partial = ""
        self._pending: list[OpenFaceRow] = []
        self._pending_key: tuple[int | None, float] | None = None
        self._offset = 0.0
        self._last_ts: float | None = None
        self._frame_secs: float | None = None

    def feed(self, text: str, *, final: bool = False) -> list[OpenFaceGroup]:
        """Take more of the file; returns the frame groups known to be complete.

        A line without its newline waits for the rest, unless ``final``; the last
        frame's group waits for the next frame or for :meth:`flush`.

        Raises:
            NotOpenFace: the header is not OpenFace's.
        """
        data = self._partial + text
        lines = data.split("\n")
        self._partial = "" if final else lines.pop()
        groups: list[OpenFaceGroup] = []
        for line in lines:
            if not line.strip():
                continue
            if self.header is None:
                self.header = OpenFaceHeader.parse(line)
                continue
            row = self._row(line)
            if row is None:
                continue
            key = (row.frame, row.ts) if row.frame is not None else (None, row.ts)
            if self._pending and key != self._pending_key:
                groups.extend(self.flush())
            self._pending.append(row)
            self._pending_key = key
        if final:
            groups.extend(self.flush())
        return groups

    def flush(self) -> list[OpenFaceGroup]:
        """The pending frame's group, complete as far as can be told."""
        if not self._pending:
            return []
        group = OpenFaceGroup(self._pending[0].ts, tuple(self._pending))
        self._pending = []
        self._pending_key = None
        return [group]

    def _time(self, raw: float) -> float:
        """The row's time on a monotonic timeline (a restart continues after the last)."""
        ts = raw + self._offset
        last = self._last_ts
        if last is not None:
            if ts < last:
                step = self._frame_secs or DEFAULT_FRAME_SECS
                self._offset = last + step - raw
                ts = last + step
            elif ts > last:
                self._frame_secs = ts - last
        self._last_ts = ts
        return ts

    def _row(self, line: str) -> OpenFaceRow | None:
        h = self.header
        assert h is not None
        fields = line.rstrip("\r").split(",")
        if len(fields) != h.width:
            self.skipped_rows += 1
            return None
        ix = h.index
        raw_ts = _float(fields, ix["timestamp"])
        success = _float(fields, ix["success"])
        confidence = _float(fields, ix["confidence"])
        if raw_ts is None:
            self.skipped_rows += 1
            return None
        self.rows += 1
        frame_value = _float(fields, ix["frame"]) if "frame" in ix else None
        face_value = _float(fields, ix["face_id"]) if "face_id" in ix else None
        frame = None if frame_value is None else int(frame_value)
        face_id = 0 if face_value is None else int(face_value)
        ts = self._time(raw_ts)
        tracked = (
            success is not None
            and success > 0
            and confidence is not None
            and confidence >= self.min_confidence
        )
        if not tracked:
            return OpenFaceRow(frame, face_id, ts, None)
        self.tracked_rows += 1
        return OpenFaceRow(frame, face_id, ts, self._measure(fields))

    def _measure(self, fields: Sequence[str]) -> OpenFaceFrame:
        h = self.header
        assert h is not None
        ix = h.index
        aus = {}
        for name, i in h.aus.items():
            value = _float(fields, i)
            if value is not None:
                aus[name] = value
        translation = None
        if h.has(*_POSE_T):
            t = _floats(fields, ix, _POSE_T)
            translation = None if t is None else (t[0], t[1], t[2])
        pose = None
        if h.has(*_POSE_R):
            r = _floats(fields, ix, _POSE_R)
            pose = None if r is None else openface_pose(r[0], r[1], r[2], translation)
        direction: tuple[float, float, float] | None = None
        if h.has(*_GAZE_ANGLE):
            angles = _floats(fields, ix, _GAZE_ANGLE)
            if angles is not None:
                direction = gaze_direction_from_angles(angles[0], angles[1])
        elif h.has(*_GAZE_VECTORS):
            v = _floats(fields, ix, _GAZE_VECTORS)
            if v is not None:
                direction = (v[0] + v[3], v[1] + v[4], v[2] + v[5])
        gaze = None if direction is None else openface_gaze(direction, translation)
        ear = None
        if h.has(*(f"x_{i}" for i in _EYE_POINTS), *(f"y_{i}" for i in _EYE_POINTS)):
            xs = {i: _float(fields, ix[f"x_{i}"]) for i in _EYE_POINTS}
            ys = {i: _float(fields, ix[f"y_{i}"]) for i in _EYE_POINTS}
            ear = eye_aspect_ratio_68(
                {i: v for i, v in xs.items() if v is not None},
                {i: v for i, v in ys.items() if v is not None},
            )
        return OpenFaceFrame(aus, pose, gaze, ear)


def check_openface_file(path: Path) -> OpenFaceHeader | None:
    """Read a file's header; None for an empty file (a follow may wait for it).

    Raises:
        NotOpenFace: not OpenFace output.
        OSError: the file cannot be read.
    """
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        for line in f:
            if line.strip():
                return OpenFaceHeader.parse(line)
    return None


# -- the source ------------------------------------------------------------------------


class MediaTimeline:
    """The meeting clock of an import: the media time reached so far (a :class:`Clock`).

    Only moves forward. ``wall`` and ``monotonic`` both read it; ``sleep`` yields once.
    """

    def __init__(self, start: float) -> None:
        """Start at ``start`` (meeting-clock seconds)."""
        self.now = start

    def __call__(self) -> float:
        """The meeting clock now."""
        return self.now

    def advance(self, ts: float) -> None:
        """Move to ``ts`` if it is later."""
        self.now = max(self.now, ts)

    def wall(self) -> float:
        """Meeting-clock seconds now."""
        return self.now

    def monotonic(self) -> float:
        """The same time, for intervals."""
        return self.now

    async def sleep(self, secs: float) -> None:
        """Media time does not pass by waiting; yield to the loop."""
        await asyncio.sleep(0)


class OpenFaceSource:
    """One OpenFace CSV as a participant's media source (a :class:`MediaSource`).

    It has no tracks: :meth:`feed` turns frame groups into face observations, one per
    face slot, and passes them to ``emit``. Used on the event loop thread.

    Args:
        timeline: The import's meeting clock.
        origin: Meeting-clock time of the file's timestamp 0 (None: set by the driver).
        fps: Observations per second of media time per slot (0: every row).
        params: Per-face settings.
    """

    kind = "openface"
    pacing: Callable[[], Pacing] = MediaPacing

    def __init__(
        self,
        timeline: MediaTimeline,
        origin: float | None = None,
        fps: float = IMPORT_FPS,
        params: FaceTrackParams | None = None,
    ) -> None:
        self.clock: Clock = timeline
        self.timeline = timeline
        self.origin = origin
        self.fps = fps
        self.params = params
        self.participant_id: str | None = None
        self._emit: Callable[[Observation], None] | None = None
        self._slots: dict[int, int] = {}  # face_id -> slot
        self._faces: dict[int, OpenFaceFaceState] = {}  # slot -> state
        self._next_due: dict[int, float] = {}
        self._was_visible: dict[int, bool] = {}
        self._ended = asyncio.Event()
        self.observations = 0

    def start(
        self,
        participant_id: str,
        on_track: Callable[[MediaStreamTrack], None],
        emit: Callable[[Observation], None],
    ) -> None:
        """Remember where observations go; there are no tracks."""
        self.participant_id = participant_id
        self._emit = emit

    def _slot(self, face_id: int) -> int:
        slot = self._slots.get(face_id)
        if slot is None:
            slot = self._slots[face_id] = len(self._slots) + 1
        return slot

    def feed(self, group: OpenFaceGroup) -> None:
        """Fold one frame into each face slot's state and emit the due observations."""
        if self._emit is None or self.participant_id is None or self.origin is None:
            return
        ts = self.origin + group.ts
        seen: dict[int, OpenFaceFrame] = {}
        for row in group.rows:
            if row.face is not None:
                seen[self._slot(row.face_id)] = row.face
        if not self._slots and group.rows:
            self._slot(group.rows[0].face_id)  # the participant's own card, even faceless
        for slot in sorted(self._slots.values()):
            state = self._faces.get(slot)
            if state is None:
                state = self._faces[slot] = OpenFaceFaceState(slot, self.params)
            reading = state.update(ts, seen.get(slot))
            visible = reading.face_visible
            changed = self._was_visible.get(slot) != visible
            self._was_visible[slot] = visible
            due = self._next_due.get(slot)
            if not changed and due is not None and ts < due - 1e-6:
                continue
            self._next_due[slot] = ts + (1.0 / self.fps if self.fps > 0 else 0.0)
            if visible:
                obs = FaceObservation(
                    self.participant_id,
                    slot,
                    ts,
                    None,
                    face_metrics(reading),
                    expression_missing=NO_EXPRESSION_CLASSIFIER,
                )
            else:
                obs = FaceObservation(self.participant_id, slot, ts, None)
            self.observations += 1
            self._emit(obs)

    async def wait_ended(self) -> LeaveReason:
        """Wait until the import ends this participant."""
        await self._ended.wait()
        return "left"

    async def close(self) -> None:
        """Stop (idempotent)."""
        self._ended.set()


# -- the import ------------------------------------------------------------------------


@dataclass(slots=True)
class ImportedFile:
    """One CSV being imported: its reader, source and participant."""

    path: Path
    reader: OpenFaceReader
    source: OpenFaceSource
    display_name: str
    participant_id: str | None = None
    handle: TextIO | None = None
    done: bool = False


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did.

    Attributes:
        participants: Display name -> participant id, one per file.
        rows: Rows read per file name.
        tracked_rows: Rows with a tracked face per file name.
        skipped_rows: Malformed rows skipped per file name.
        start: Meeting-clock start.
        end: Meeting-clock end.
    """

    participants: dict[str, str]
    rows: dict[str, int]
    tracked_rows: dict[str, int]
    skipped_rows: dict[str, int]
    start: float
    end: float


@dataclass(slots=True)
class _MediaTime:
    """Moves the import's clock and ticks the meeting once a room interval of media time."""

    timeline: MediaTimeline
    interval_secs: float
    tick: Callable[[float], None]
    next_tick: float | None = None

    def advance(self, ts: float) -> None:
        """Tick for every interval that ends by ``ts``, then move the clock to ``ts``."""
        if self.next_tick is None:
            self.next_tick = ts + self.interval_secs
        while self.next_tick <= ts:
            self.timeline.advance(self.next_tick)
            self.tick(self.next_tick)
            self.next_tick += self.interval_secs
        self.timeline.advance(ts)


def display_names(paths: Sequence[Path]) -> list[str]:
    """A participant name per file: its stem, made unique with its position."""
    stems = [p.stem or p.name for p in paths]
    return [s if stems.count(s) == 1 else f"{s} ({i + 1})" for i, s in enumerate(stems)]


async def import_openface(
    meeting_factory: Callable[[MediaTimeline], Awaitable[LiveMeeting]],
    paths: Sequence[Path],
    *,
    follow: bool = False,
    idle_secs: float = 30.0,
    poll_secs: float = 0.1,
    min_confidence: float = MIN_CONFIDENCE,
    fps: float = IMPORT_FPS,
    params: FaceTrackParams | None = None,
    stop: asyncio.Event | None = None,
    clock: Callable[[], float] = time.time,
) -> ImportResult:
    """Replay (or tail) OpenFace CSVs into a meeting; see the module docstring.

    Args:
        meeting_factory: Makes the meeting on the import's clock
            (``lambda timeline: manager.live_on_clock(meeting_id, timeline)``), awaited.
        paths: The CSVs, one participant each.
        follow: Keep reading files that grow until ``stop`` or ``idle_secs``.
        idle_secs: With ``follow``: stop after this long without a new row.
        poll_secs: With ``follow``: how often files are read.
        min_confidence: Rows below this confidence have no face.
        fps: Observations per second of media time per face (0: every row).
        params: Per-face settings.
        stop: Set to end a follow early (Ctrl-C).
        clock: Wall clock (where a file's time starts: see the README).

    Returns:
        What was imported.

    Raises:
        NotOpenFace: a file is not OpenFace output (checked before anything is created,
            except a followed file that was still empty).
    """
    stop = stop or asyncio.Event()
    names = display_names(paths)
    for path in paths:
        check_openface_file(path)
    timeline = MediaTimeline(clock())
    files = [
        ImportedFile(
            path,
            OpenFaceReader(min_confidence),
            OpenFaceSource(timeline, None, fps, params),
            name,
        )
        for path, name in zip(paths, names, strict=True)
    ]
    if not follow:
        # Read everything, then place the files so that the import ends now: a CSV does
        # not say when its video was recorded. Files share timestamp 0.
        groups = {}
        for f in files:
            text = f.path.read_text(encoding="utf-8", errors="replace")
            groups[f.path] = f.reader.feed(text, final=True)
        longest = max((g[-1].ts for g in groups.values() if g), default=0.0)
        origin = 0.0 if longest > UNIX_TIME_SECS else clock() - longest
        for f in files:
            f.source.origin = origin
        timeline.now = origin
    meeting = await meeting_factory(timeline)
    participants = {}
    for f in files:
        live = meeting.join(f.display_name, f.source)
        f.participant_id = live.record.id
        participants[f.display_name] = live.record.id
    start = timeline.now
    media = _MediaTime(timeline, meeting.settings.fusion.room_interval_secs, meeting.tick)
    media.advance(start)
    try:
        if follow:
            await _follow(meeting, files, media, idle_secs, poll_secs, stop, clock)
        else:
            await _replay(meeting, files, [groups[f.path] for f in files], media)
    finally:
        for f in files:
            if f.handle is not None:
                f.handle.close()
        end = timeline.now
        await meeting.close("left")
    return ImportResult(
        participants=participants,
        rows={f.display_name: f.reader.rows for f in files},
        tracked_rows={f.display_name: f.reader.tracked_rows for f in files},
        skipped_rows={f.display_name: f.reader.skipped_rows for f in files},
        start=start,
        end=end,
    )


async def _replay(
    meeting: LiveMeeting,
    files: Sequence[ImportedFile],
    groups: Sequence[Sequence[OpenFaceGroup]],
    media: _MediaTime,
) -> None:
    """Every file's frames in meeting-time order; each participant leaves at its last row."""
    streams = [
        [((f.source.origin or 0.0) + g.ts, k, g) for g in file_groups]
        for k, (f, file_groups) in enumerate(zip(files, groups, strict=True))
    ]
    ends = sorted((s[-1][0] if s else media.timeline.now, k) for k, s in enumerate(streams))
    pending_ends = list(reversed(ends))
    count = 0
    for ts, k, group in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
        while pending_ends and pending_ends[-1][0] < ts:
            end_ts, ended = pending_ends.pop()
            await _leave(meeting, files[ended], end_ts, media)
        media.advance(ts)
        files[k].source.feed(group)
        count += 1
        if count % 500 == 0:
            await asyncio.sleep(0)  # let summaries and the store's writer run
    while pending_ends:
        end_ts, ended = pending_ends.pop()
        await _leave(meeting, files[ended], end_ts, media)


async def _leave(meeting: LiveMeeting, f: ImportedFile, ts: float, media: _MediaTime) -> None:
    """The file ended: its participant leaves at ``ts`` (its last row's time)."""
    if f.done or f.participant_id is None:
        return
    f.done = True
    media.advance(ts)
    participant = meeting.participants.get(f.participant_id)
    if participant is not None:
        await meeting.end(participant, "left")


def _read_new(f: ImportedFile) -> str:
    if f.handle is None:
        f.handle = f.path.open(encoding="utf-8", errors="replace", newline="")
    return f.handle.read()


async def _follow(
    meeting: LiveMeeting,
    files: Sequence[ImportedFile],
    media: _MediaTime,
    idle_secs: float,
    poll_secs: float,
    stop: asyncio.Event,
    clock: Callable[[], float],
) -> None:
    """Tail the files: each poll reads what was appended and replays it in time order."""
    last_row_wall = clock()
    while True:
        batch: list[tuple[float, int, OpenFaceGroup]] = []
        final = stop.is_set()
        for k, f in enumerate(files):
            try:
                text = _read_new(f)
            except FileNotFoundError:
                continue
            try:
                groups = f.reader.feed(text, final=final)
            except NotOpenFace as e:  # a file that was empty at the start
                raise NotOpenFace(f"{f.path}: {e}") from e
            if not text:
                groups.extend(f.reader.flush())  # no more rows of that frame came
            if not groups:
                continue
            if f.source.origin is None:
                # What the file holds when first read ends now; later rows arrive live.
                f.source.origin = clock() - groups[-1].ts
            batch.extend((f.source.origin + g.ts, k, g) for g in groups)
        if batch:
            last_row_wall = clock()
            batch.sort(key=lambda item: (item[0], item[1]))
            for n, (ts, k, group) in enumerate(batch, 1):
                media.advance(ts)
                files[k].source.feed(group)
                if n % 500 == 0:
                    await asyncio.sleep(0)  # a backlog must not stall the sidebar
        if final or clock() - last_row_wall >= idle_secs:
            break
        try:
            await asyncio.wait_for(stop.wait(), poll_secs)
        except TimeoutError:
            pass
    for f in files:
        await _leave(meeting, f, media.timeline.now, media)
