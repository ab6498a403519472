"""A recorded file as a media source: demuxed and decoded with PyAV, on the file's own time.

:func:`probe` checks a file before anything is stored: that ffmpeg can read it, that it
has a video or an audio stream (or both), and that the first frames of each decode.
:class:`RecordingSource` is the :class:`~bot.sources.MediaSource` of such a file: it
hands the session one video and/or one audio track that play the file as fast as the
analysis takes them. Nothing is paced to the wall clock and nothing is dropped for being
late: the session's video slot waits for the analysis (``LatestSlot(block=True)``),
:class:`~bot.session.clock.MediaPacing` picks one frame per ``1 / fps`` seconds of media
time, and the voice queue waits instead of dropping. Decoding runs on the source's own
thread; frames reach the tracks through small bounded queues, so memory stays flat
whatever the file's length.

:class:`RecordingClock` is the meeting time of a recording: ``origin`` plus how far the
file has been read, that is how far its slowest track has been taken (a track that ended
no longer holds it back). The meeting's once-a-second tick waits on it
(:meth:`RecordingClock.sleep`), so room fusion, talk figures and the summaries every
``summaries.interval_secs`` follow the recording, not the wall.

A packet that does not decode is skipped and counted (as ffmpeg does); a file that
cannot be read on makes :meth:`RecordingSource.wait_ended` answer ``"failed"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import av.container
import av.error
import av.stream
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bot.session.clock import Clock, MediaPacing, Pacing
from bot.tracks import media_time
from bot.types import LeaveReason, Observation

log = logging.getLogger(__name__)

#: Decoded video frames waiting for the session (the analysis slot holds one more).
VIDEO_QUEUE_FRAMES = 4
#: Decoded audio frames waiting for the session (about a second of AAC or Opus).
AUDIO_QUEUE_FRAMES = 50
#: Packets :func:`probe` reads at most while looking for each stream's first frame.
PROBE_PACKETS = 600
#: Frame rate assumed for a video stream that does not say its own.
DEFAULT_FPS = 25.0

Frame = av.VideoFrame | av.AudioFrame


class RecordingError(ValueError):
    """The file cannot be analysed; the message says why (shown after the file's name)."""


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """What :func:`probe` found in a file.

    Attributes:
        path: The file.
        duration_secs: Its length (the longest analysed stream).
        start_secs: Media time of its beginning (``pts * time_base`` of the first frame).
        video: ``"h264 640x480 30 fps"``-like description, or None without video.
        audio: ``"aac 48000 Hz 2 ch"``-like description, or None without audio.
        fps: The video's frame rate (None without video).
    """

    path: Path
    duration_secs: float
    start_secs: float
    video: str | None
    audio: str | None
    fps: float | None

    @property
    def tracks(self) -> tuple[str, ...]:
        """The kinds of track the file has: ``("video", "audio")``, ``("audio",)``, ..."""
        return tuple(k for k, d in (("video", self.video), ("audio", self.audio)) if d)


def _video_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    for stream in container.streams.video:
        # A cover picture (an mp3's or m4a's artwork) is a video stream of one frame.
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _audio_stream(container: av.container.InputContainer) -> av.AudioStream | None:
    return container.streams.audio[0] if container.streams.audio else None


def _reason(e: BaseException) -> str:
    if isinstance(e, av.error.FFmpegError):
        return str(e.strerror or type(e).__name__).rstrip(".").lower()
    return str(e) or type(e).__name__


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise RecordingError("no such file")
    if not path.is_file():
        raise RecordingError("not a file")
    try:
        return av.open(str(path), "r")
    except av.error.InvalidDataError:
        raise RecordingError("not a media file (ffmpeg cannot read it)") from None
    except (av.error.FFmpegError, OSError) as e:
        raise RecordingError(f"cannot be opened: {_reason(e)}") from None


def _seconds(value: int | None, time_base: object) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)  # type: ignore[operator]


def probe(path: Path) -> RecordingInfo:
    """Check that ``path`` can be analysed and describe it. Blocking (reads the file).

    Raises:
        RecordingError: missing, not a media file, no audio and no video stream, or a
            stream whose codec cannot be decoded.
    """
    with _open(path) as container:
        video = _video_stream(container)
        audio = _audio_stream(container)
        if video is None and audio is None:
            raise RecordingError("has no audio and no video stream")
        streams: list[av.VideoStream | av.AudioStream] = [s for s in (video, audio) if s]
        for stream in streams:
            if stream.codec_context is None:
                raise RecordingError(f"its {stream.type} codec is not supported")
        first: dict[int, float | None] = {}
        failures: dict[int, str] = {}
        try:
            for packets, packet in enumerate(container.demux(streams)):
                if len(first) == len(streams) or packets >= PROBE_PACKETS:
                    break
                index = packet.stream.index
                if index in first:
                    continue
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as e:
                    failures[index] = _reason(e)
                    continue
                decoded = [f for f in frames if isinstance(f, (av.VideoFrame, av.AudioFrame))]
                if decoded:
                    first[index] = media_time(decoded[0])
        except av.error.FFmpegError as e:
            raise RecordingError(f"cannot be read: {_reason(e)}") from None
        for stream in streams:
            if stream.index not in first:
                name = stream.codec_context.name
                why = failures.get(stream.index, "no frame could be decoded")
                raise RecordingError(f"its {stream.type} stream ({name}) cannot be decoded: {why}")
        starts = [t for t in first.values() if t is not None]
        start = min(starts) if starts else 0.0
        duration = _duration(container, streams, start)
    fps = None
    described_video = described_audio = None
    if video is not None:
        rate = video.average_rate or video.guessed_rate
        fps = float(rate) if rate else DEFAULT_FPS
        described_video = (
            f"{video.codec_context.name} {video.codec_context.width}x"
            f"{video.codec_context.height} {fps:.4g} fps"
        )
    if audio is not None:
        ctx = audio.codec_context
        described_audio = f"{ctx.name} {ctx.sample_rate} Hz {ctx.channels} ch"
    return RecordingInfo(path, duration, start, described_video, described_audio, fps)


def _duration(
    container: av.container.InputContainer,
    streams: list[av.VideoStream | av.AudioStream],
    start: float,
) -> float:
    """The file's length: the streams' stated durations, else the container's, else a scan."""
    stated = [_seconds(s.duration, s.time_base) for s in streams]
    known = [d for d in stated if d]
    if known:
        return max(known)
    if container.duration:
        return float(container.duration) / 1_000_000
    # No stated length (some WebM files): read every packet's time, decoding nothing.
    end = start
    container.seek(0)
    for packet in container.demux(streams):
        ts = _seconds(packet.pts, packet.time_base)
        if ts is not None:
            length = _seconds(packet.duration, packet.time_base) or 0.0
            end = max(end, ts + length)
    return max(0.0, end - start)


class RecordingClock:
    """A recording's meeting time: ``origin`` plus how far its slowest track has been read.

    Implements :class:`~bot.session.clock.Clock`. Event loop only.

    Args:
        origin: Meeting-clock (Unix) seconds of the file's first instant.
        tracks: The kinds of track the file has (each starts at 0).
    """

    def __init__(self, origin: float, tracks: Iterable[str]) -> None:
        self.origin = origin
        self._positions = dict.fromkeys(tracks, 0.0)
        self._ended: set[str] = set()
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    @property
    def position(self) -> float:
        """Seconds of the recording read: the slowest running track's, or the end."""
        running = [p for kind, p in self._positions.items() if kind not in self._ended]
        if running:
            return min(running)
        return max(self._positions.values(), default=0.0)

    @property
    def finished(self) -> bool:
        """Whether every track has been read to its end."""
        return self._ended.issuperset(self._positions)

    def wall(self) -> float:
        """Meeting-clock seconds now: the origin plus :attr:`position`."""
        return self.origin + self.position

    def monotonic(self) -> float:
        """Real ``time.monotonic()`` (latency and slowness are measured in real time)."""
        return time.monotonic()

    async def sleep(self, secs: float) -> None:
        """Wait until ``secs`` seconds of the recording have been read (wall time once done)."""
        if self.finished:
            await asyncio.sleep(secs)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self.position + secs, future))
        try:
            await future
        finally:
            self._waiters = [(t, f) for t, f in self._waiters if f is not future]

    def advance(self, kind: str, position: float) -> None:
        """Track ``kind`` has been read up to ``position`` seconds of the recording."""
        if position > self._positions[kind]:
            self._positions[kind] = position
            self._wake()

    def end(self, kind: str) -> None:
        """Track ``kind`` has been read to its end."""
        self._ended.add(kind)
        self._wake()

    def _wake(self) -> None:
        position, finished = self.position, self.finished
        for target, future in self._waiters:
            if (finished or position >= target) and not future.done():
                future.set_result(None)


class _FileTrack(MediaStreamTrack):
    """One stream of the file as a track: frames as fast as the session takes them."""

    def __init__(
        self, kind: str, queue: asyncio.Queue[Frame | None], clock: RecordingClock, start: float
    ) -> None:
        super().__init__()
        self.kind = kind
        self._queue = queue
        self._clock = clock
        self._start = start
        self._end = 0.0  # seconds of the recording just after the last frame handed out

    async def recv(self) -> Frame:
        """The next frame; ``MediaStreamError`` after the last one."""
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()  # cancellable without losing the frame
        if frame is None:
            self._clock.advance(self.kind, self._end)
            self._clock.end(self.kind)
            self.stop()
            raise MediaStreamError
        ts = media_time(frame)
        if ts is not None:
            position = ts - self._start
            self._clock.advance(self.kind, position)
            if isinstance(frame, av.AudioFrame) and frame.sample_rate:
                position += frame.samples / frame.sample_rate
            self._end = max(self._end, position)
        return frame


class _Decoder:
    """The file's demuxer and decoders. Used on the source's own thread only."""

    def __init__(self, path: Path, fps: float | None) -> None:
        self._path = path
        self._frame_secs = 1.0 / fps if fps else 1.0 / DEFAULT_FPS
        self._container: av.container.InputContainer | None = None
        self._packets: Iterator[av.Packet[Any]] | None = None
        self._next_pts: dict[str, float] = {}
        self.bad_packets = 0

    def open(self) -> None:
        container = av.open(str(self._path), "r")
        self._container = container
        video, audio = _video_stream(container), _audio_stream(container)
        if video is not None:
            video.thread_type = "AUTO"  # frame threads where the codec has them
        self._packets = container.demux([s for s in (video, audio) if s is not None])

    def next_frames(self) -> list[tuple[str, Frame]] | None:
        """The frames of the next packet(s) that give any; None at the end of the file."""
        assert self._packets is not None
        for packet in self._packets:
            kind = packet.stream.type
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                # A damaged packet: skip it, as ffmpeg does, and say so once at the end.
                self.bad_packets += 1
                continue
            out: list[tuple[str, Frame]] = []
            for frame in frames:
                if isinstance(frame, (av.VideoFrame, av.AudioFrame)):
                    self._stamp(kind, frame, packet.stream.time_base)
                    out.append((kind, frame))
            if out:
                return out
        return None

    def _stamp(self, kind: str, frame: Frame, time_base: object) -> None:
        """Give a frame without a timestamp the one after its predecessor's."""
        if frame.time_base is None and time_base is not None:
            frame.time_base = time_base  # type: ignore[assignment]
        ts = media_time(frame)
        if ts is None and frame.time_base is not None:
            ts = self._next_pts.get(kind, 0.0)
            frame.pts = round(ts / frame.time_base)
        if ts is None:
            return
        if isinstance(frame, av.AudioFrame) and frame.sample_rate:
            self._next_pts[kind] = ts + frame.samples / frame.sample_rate
        else:
            self._next_pts[kind] = ts + self._frame_secs

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


class RecordingSource:
    """A recorded file as one participant's media. Event loop only; decodes on its own thread.

    Args:
        info: The file, as :func:`probe` described it.
        origin: Meeting-clock seconds of the file's first instant (default: now minus
            its length, so that the recording ends when its analysis starts).
    """

    kind = "recording"

    def __init__(self, info: RecordingInfo, origin: float | None = None) -> None:
        self.info = info
        if origin is None:
            origin = time.time() - info.duration_secs
        self.recording_clock = RecordingClock(origin, info.tracks)
        self.clock: Clock = self.recording_clock
        self.pacing: Callable[[], Pacing] = MediaPacing
        sizes = {"video": VIDEO_QUEUE_FRAMES, "audio": AUDIO_QUEUE_FRAMES}
        self._queues: dict[str, asyncio.Queue[Frame | None]] = {
            kind: asyncio.Queue(maxsize=sizes[kind]) for kind in info.tracks
        }
        self._decoder = _Decoder(info.path, info.fps)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recording.decode")
        self._demuxer: asyncio.Task[None] | None = None
        self._failed = asyncio.Event()
        self._closed = False
        self.error: str | None = None

    @property
    def done_secs(self) -> float:
        """Seconds of the recording read so far."""
        return min(self.recording_clock.position, self.info.duration_secs)

    @property
    def bad_packets(self) -> int:
        """Damaged packets skipped so far."""
        return self._decoder.bad_packets

    def start(
        self,
        participant_id: str,
        on_track: Callable[[MediaStreamTrack], None],
        emit: Callable[[Observation], None],
    ) -> None:
        """Hand over the file's tracks and start decoding."""
        for kind, queue in self._queues.items():
            on_track(_FileTrack(kind, queue, self.recording_clock, self.info.start_secs))
        self._demuxer = asyncio.create_task(self._demux(), name=f"recording.demux.{participant_id}")

    async def _demux(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._thread, self._decoder.open)
            while True:
                frames = await loop.run_in_executor(self._thread, self._decoder.next_frames)
                if frames is None:
                    break
                for kind, frame in frames:
                    await self._queues[kind].put(frame)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("recording could not be read to its end", extra={"error": type(e).__name__})
            self.error = f"cannot be read to its end: {_reason(e)}"
            self._failed.set()
            return
        if self._decoder.bad_packets:
            log.warning("damaged packets skipped", extra={"packets": self._decoder.bad_packets})
        for queue in self._queues.values():
            await queue.put(None)

    async def wait_ended(self) -> LeaveReason:
        """Wait until the file cannot be read on (a file read to its end ends its tracks)."""
        await self._failed.wait()
        return "failed"

    async def close(self) -> None:
        """Stop decoding and close the file."""
        if self._closed:
            return
        self._closed = True
        if self._demuxer is not None:
            self._demuxer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._demuxer
        # After any decoding still running on the thread, which then ends.
        self._thread.submit(self._decoder.close)
        self._thread.shutdown(wait=False)
