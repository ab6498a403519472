"""Synthetic and packaged media for tests: frames, tracks, a real face, y4m/wav files."""

from __future__ import annotations

import asyncio
import fractions
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

VIDEO_CLOCK = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)


def astronaut() -> np.ndarray:
    """scikit-image's astronaut (public-domain NASA portrait), 512x512 RGB; loads offline."""
    from skimage import data

    return np.asarray(data.astronaut())


def face_frame_rgb(width: int = 640, height: int = 480) -> np.ndarray:
    """The astronaut's face centred on a grey canvas of the given size."""
    canvas = np.full((height, width, 3), 128, np.uint8)
    face = astronaut()
    h, w = min(height, 512), min(width, 512)
    y0, x0 = (height - h) // 2, (width - w) // 2
    canvas[y0 : y0 + h, x0 : x0 + w] = face[:h, :w]
    return canvas


def make_video_frame(
    w: int = 64, h: int = 48, rgb: tuple[int, int, int] = (0, 255, 0), pts: int = 0
) -> av.VideoFrame:
    """A uniform video frame (yuv420p, 90 kHz time base)."""
    image = np.empty((h, w, 3), np.uint8)
    image[:] = rgb
    return frame_from_rgb(image, pts)


def frame_from_rgb(image: np.ndarray, pts: int = 0) -> av.VideoFrame:
    """An av.VideoFrame (yuv420p, 90 kHz time base) from an RGB array."""
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
    frame.pts = pts
    frame.time_base = VIDEO_TIME_BASE
    return frame


def make_tone(hz: float = 220.0, secs: float = 1.0, sample_rate: int = 16_000) -> np.ndarray:
    """A sine tone as int16 samples."""
    t = np.arange(int(secs * sample_rate)) / sample_rate
    return (0.3 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


class ScriptedTrack(MediaStreamTrack):
    """Yields the given frames (optionally paced), then raises MediaStreamError."""

    kind = "video"

    def __init__(
        self, frames: Sequence[av.VideoFrame], interval_secs: float = 0.0, linger_secs: float = 0.0
    ) -> None:
        super().__init__()
        self._frames = list(frames)
        self._interval = interval_secs
        self._linger = linger_secs  # wait this long after the last frame before ending

    async def recv(self) -> av.VideoFrame:
        if not self._frames:
            await asyncio.sleep(self._linger)
            self.stop()
            raise MediaStreamError
        if self._interval:
            await asyncio.sleep(self._interval)
        return self._frames.pop(0)


class ImageVideoTrack(MediaStreamTrack):
    """A live video source that sends one RGB image at ``fps`` with correct pts."""

    kind = "video"

    def __init__(self, image: np.ndarray, fps: float = 15.0) -> None:
        super().__init__()
        self._image = image
        self._fps = fps
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        due = self._start + self._count / self._fps
        await asyncio.sleep(max(0.0, due - loop.time()))
        frame = frame_from_rgb(self._image, pts=int(self._count * VIDEO_CLOCK / self._fps))
        self._count += 1
        return frame


def write_y4m(path: Path, image: np.ndarray | None = None, frames: int = 60, fps: int = 30) -> Path:
    """A y4m video of a slowly moving crop of ``image`` (Chromium's fake camera input)."""
    out = av.open(str(path), "w", format="yuv4mpegpipe")
    stream = out.add_stream("wrapped_avframe", rate=fps)
    stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
    canvas = face_frame_rgb(720, 560) if image is None else image
    for i in range(frames):
        dx = int(20 + 20 * np.sin(2 * np.pi * i / frames))
        crop = np.ascontiguousarray(canvas[40 : 40 + 480, dx : dx + 640])
        frame = av.VideoFrame.from_ndarray(crop, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = 48_000) -> Path:
    """A mono 16-bit wav file."""
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(samples.astype(np.int16).tobytes())
    return path


class SpeechAudioTrack(MediaStreamTrack):
    """A live microphone: plays 16 kHz mono ``samples`` once in real time, then silence.

    Frames are what a browser's Opus track decodes to in aiortc: 20 ms of s16 stereo
    at 48 kHz, with pts in samples and ``time_base = 1/48000``.
    """

    kind = "audio"

    def __init__(self, samples: np.ndarray, lead_secs: float = 0.5) -> None:
        super().__init__()
        silence = np.zeros(int(lead_secs * 16_000), dtype=np.float32)
        mono16 = np.concatenate([silence, np.asarray(samples, dtype=np.float32)])
        # 16 kHz -> 48 kHz by libswresample, once, up front.
        source = av.AudioFrame.from_ndarray(mono16.reshape(1, -1), format="flt", layout="mono")
        source.sample_rate = 16_000
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=48_000)
        out = resampler.resample(source) + resampler.resample(None)
        self._pcm = np.concatenate([f.to_ndarray() for f in out], axis=1).reshape(-1)  # LRLR
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        due = self._start + self._count * 0.02
        await asyncio.sleep(max(0.0, due - loop.time()))
        n = 960  # 20 ms at 48 kHz
        begin = self._count * n * 2
        chunk = self._pcm[begin : begin + n * 2]
        if len(chunk) < n * 2:
            chunk = np.concatenate([chunk, np.zeros(n * 2 - len(chunk), dtype=np.int16)])
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = 48_000
        frame.pts = self._count * n
        frame.time_base = fractions.Fraction(1, 48_000)
        self._count += 1
        return frame


def two_faces_frame() -> np.ndarray:
    """640x480 RGB with two faces about 130 px tall: the astronaut and her mirror image."""
    import cv2

    crop = astronaut()[30:330, 110:350]
    left = cv2.resize(crop, (320, 400), interpolation=cv2.INTER_AREA)
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[40:440, :320] = left
    frame[40:440, 320:] = left[:, ::-1]
    return frame


class TrackSource:
    """A media source that hands over given tracks (implements bot.sources.MediaSource).

    It ends only when closed; the participant ends when its tracks have ended.
    """

    kind = "test"

    def __init__(self, *tracks: MediaStreamTrack) -> None:
        from bot.session.clock import RealtimePacing, SystemClock

        self.tracks = list(tracks)
        self.clock = SystemClock()
        self.pacing = RealtimePacing
        self.closed = asyncio.Event()

    def start(self, participant_id: str, on_track: Any, emit: Any) -> None:
        for track in self.tracks:
            on_track(track)

    async def wait_ended(self) -> Any:
        await self.closed.wait()
        return "disconnected"

    async def close(self) -> None:
        self.closed.set()


def write_recording(
    path: Path,
    secs: float,
    *,
    image: np.ndarray | None = None,
    speech: np.ndarray | None = None,
    fps: int = 30,
    size: tuple[int, int] = (640, 480),
    video_codec: str = "libx264",
    audio_codec: str = "aac",
    audio_rate: int = 48_000,
) -> Path:
    """A recorded meeting made with PyAV: ``image`` gently moving, and/or ``speech``.

    ``image`` (RGB, larger than ``size`` by 40 px each way, else centred on grey)
    pans slowly; without it there is no video stream. ``speech`` (16 kHz float32 mono)
    is placed from the start and padded with silence to ``secs``; without it there is
    no audio stream. The container follows the suffix (mp4, mkv, webm, mov, avi, wav...).
    """
    width, height = size
    out = av.open(str(path), "w")
    video = None
    if image is not None:
        canvas = image
        if canvas.shape[0] < height + 40 or canvas.shape[1] < width + 40:
            canvas = np.full((height + 40, width + 40, 3), 128, np.uint8)
            h, w = min(image.shape[0], height + 40), min(image.shape[1], width + 40)
            y0, x0 = (height + 40 - h) // 2, (width + 40 - w) // 2
            canvas[y0 : y0 + h, x0 : x0 + w] = image[:h, :w]
        video = out.add_stream(video_codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if video_codec == "libx264":
            video.options = {"preset": "ultrafast", "tune": "zerolatency"}
    audio = None
    pcm = None
    if speech is not None:
        audio = out.add_stream(audio_codec, rate=audio_rate)
        audio.layout = "mono"
        mono16 = np.zeros(int(secs * 16_000), np.float32)
        n = min(len(speech), len(mono16))
        mono16[:n] = speech[:n]
        source = av.AudioFrame.from_ndarray(mono16.reshape(1, -1), format="flt", layout="mono")
        source.sample_rate = 16_000
        resampler = av.AudioResampler(format="s16", layout="mono", rate=audio_rate)
        pcm = np.concatenate(
            [f.to_ndarray() for f in resampler.resample(source) + resampler.resample(None)], axis=1
        ).reshape(-1)
    frames = int(secs * fps) if video is not None else 0
    chunk = 1024
    samples_done = 0
    for i in range(max(frames, 1)):
        if video is not None:
            dx = int(20 + 20 * np.sin(2 * np.pi * i / (fps * 4)))
            dy = int(20 + 10 * np.cos(2 * np.pi * i / (fps * 6)))
            crop = np.ascontiguousarray(canvas[dy : dy + height, dx : dx + width])
            frame = av.VideoFrame.from_ndarray(crop, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        if audio is not None and pcm is not None:
            # Audio up to the end of this video frame (everything when there is no video).
            until = len(pcm) if video is None else min(len(pcm), (i + 1) * audio_rate // fps)
            while samples_done + chunk <= until or (samples_done < until == len(pcm)):
                piece = pcm[samples_done : samples_done + chunk]
                aframe = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(piece.reshape(1, -1)), format="s16", layout="mono"
                )
                aframe.sample_rate = audio_rate
                aframe.pts = samples_done
                samples_done += len(piece)
                for packet in audio.encode(aframe):
                    out.mux(packet)
    for stream in (video, audio):
        if stream is not None:
            for packet in stream.encode():
                out.mux(packet)
    out.close()
    return path
