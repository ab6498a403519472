"""Recorded meetings: a video or audio file analysed into a stored meeting.

:func:`analyze_recording` runs the live pipeline on a file: a meeting is created, a
:class:`~bot.sources.recording.RecordingSource` joins it as one participant (further
faces in its picture become sub-participants, as with a room camera), and the meeting
runs on the recording's own clock: its once-a-second tick waits for a second of media
to be read, so room states, talk figures and the summaries every
``summaries.interval_secs`` fall where they would have fallen live. It goes as fast as
the analysis allows (no frame is dropped for being late) and ends when the file has
been analysed to its end. A file that cannot be analysed leaves nothing behind: the
meeting is removed and :class:`~bot.sources.recording.RecordingError` says why.

:class:`RecordingJobs` is the web app's queue of uploaded files: one analysis at a time
(they would only share the same cores), progress readable at any time, and each upload
deleted as soon as its analysis ends, whatever the outcome.

Everything runs on the event loop; decoding and inference run where the source and the
pools put them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bot.meeting import MeetingManager
from bot.session import SessionStats
from bot.sources.recording import (
    RecordingClock,
    RecordingError,
    RecordingInfo,
    RecordingSource,
    probe,
)

log = logging.getLogger(__name__)

#: The display name of a recording's participant (further faces: "Recording · face 2").
PARTICIPANT_NAME = "Recording"
#: How often progress is reported, in seconds of wall time.
PROGRESS_INTERVAL_SECS = 0.5


@dataclass(frozen=True, slots=True)
class AnalysisProgress:
    """How far an analysis has come.

    Attributes:
        done_secs: Seconds of the recording analysed.
        duration_secs: Its length.
        wall_secs: Seconds of wall time since the analysis started.
    """

    done_secs: float
    duration_secs: float
    wall_secs: float

    @property
    def speed(self) -> float | None:
        """Seconds of recording per second of wall time (None before it can be told)."""
        return self.done_secs / self.wall_secs if self.wall_secs > 0 and self.done_secs else None

    @property
    def eta_secs(self) -> float | None:
        """Seconds of wall time left at the speed so far."""
        speed = self.speed
        return max(0.0, self.duration_secs - self.done_secs) / speed if speed else None


@dataclass(frozen=True, slots=True)
class RecordingAnalysis:
    """A recording analysed into a meeting.

    Attributes:
        meeting_id: The meeting it became.
        host_token: The meeting's host token (shown once).
        info: The file, as probed.
        wall_secs: Seconds of wall time the analysis took (models already loaded).
        participants: Participants stored: the recording and each further face.
        bad_packets: Damaged packets skipped.
        stats: The session's figures (frames received, analysed, dropped...).
    """

    meeting_id: str
    host_token: str
    info: RecordingInfo
    wall_secs: float
    participants: int
    bad_packets: int
    stats: SessionStats

    @property
    def speed(self) -> float:
        """Seconds of recording analysed per second of wall time."""
        return self.info.duration_secs / self.wall_secs if self.wall_secs > 0 else float("inf")


async def _tick(meeting_tick: Callable[[float], None], clock: RecordingClock) -> None:
    """Tick the meeting once a second of the recording (each media instant once)."""
    last = -float("inf")
    while True:
        await clock.sleep(1.0)
        now = clock.wall()
        if now > last:
            last = now
            meeting_tick(now)


async def analyze_recording(
    manager: MeetingManager,
    path: Path,
    name: str | None = None,
    *,
    info: RecordingInfo | None = None,
    on_progress: Callable[[AnalysisProgress], None] | None = None,
    origin: float | None = None,
) -> RecordingAnalysis:
    """Analyse the file at ``path`` into a new meeting; returns it once stored.

    The manager's store and pools must be started.

    Args:
        manager: Where the meeting is created and analysed.
        path: The file.
        name: The meeting's name (default: the file's name without its suffix).
        info: The file's :func:`~bot.sources.recording.probe` result, if already known.
        on_progress: Told how far the analysis is, every :data:`PROGRESS_INTERVAL_SECS`
            and at the end.
        origin: Meeting-clock seconds of the recording's start (default: it ends now).

    Raises:
        RecordingError: The file cannot be analysed (nothing is stored then).
    """
    if info is None:
        info = await asyncio.to_thread(probe, path)
    record, host_token = await manager.create_meeting((name or "").strip() or path.stem)
    source = RecordingSource(info, origin)
    clock = source.recording_clock
    started = time.monotonic()

    def progress() -> AnalysisProgress:
        return AnalysisProgress(source.done_secs, info.duration_secs, time.monotonic() - started)

    async def report_progress() -> None:
        assert on_progress is not None
        while True:
            on_progress(progress())
            await asyncio.sleep(PROGRESS_INTERVAL_SECS)

    tasks: list[asyncio.Task[None]] = []
    try:
        meeting = await manager.live_on_clock(record.id, clock.wall)
        participant = meeting.join(PARTICIPANT_NAME, source)
        watcher = participant.watcher
        assert watcher is not None
        tasks.append(asyncio.create_task(_tick(meeting.tick, clock), name="recording.tick"))
        if on_progress is not None:
            tasks.append(asyncio.create_task(report_progress(), name="recording.progress"))
        # The participant leaves when every track is analysed to its end, or on failure.
        await asyncio.wait({watcher})
        wall_secs = time.monotonic() - started
        stats = participant.session.stats()
        if source.error is not None:
            raise RecordingError(source.error)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await manager.close_meeting(record.id)  # the last summary is written and stored
        await manager.store.flush()
        stored = await manager.store.list_participants(record.id)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await manager.close_meeting(record.id)
        with contextlib.suppress(Exception):
            await manager.store.delete_meeting(record.id)
        raise
    if on_progress is not None:
        on_progress(AnalysisProgress(info.duration_secs, info.duration_secs, wall_secs))
    log.info(
        "recording analysed",
        extra={
            "meeting": record.id,
            "media_secs": round(info.duration_secs, 1),
            "wall_secs": round(wall_secs, 1),
        },
    )
    return RecordingAnalysis(
        record.id, host_token, info, wall_secs, len(stored), source.bad_packets, stats
    )


JobState = Literal["queued", "analysing", "done", "failed"]


@dataclass(slots=True)
class RecordingJob:
    """One uploaded file's analysis, as the uploader's page follows it."""

    id: str
    name: str
    state: JobState = "queued"
    progress: AnalysisProgress | None = None
    result: RecordingAnalysis | None = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)


class RecordingJobs:
    """Uploaded recordings waiting for, or under, analysis. Event loop only.

    Args:
        manager: Where the meetings are created and analysed.
        keep: Most finished jobs remembered (their page may still ask for them).
    """

    def __init__(self, manager: MeetingManager, keep: int = 100) -> None:
        self.manager = manager
        self.keep = keep
        self.jobs: dict[str, RecordingJob] = {}
        self._lock = asyncio.Lock()  # one analysis at a time
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, path: Path, name: str) -> RecordingJob:
        """Queue the file at ``path`` (deleted when its analysis ends) for analysis."""
        job = RecordingJob(secrets.token_urlsafe(16), name)
        self.jobs[job.id] = job
        self._forget_old()
        task = asyncio.create_task(self._run(job, path), name=f"recording.job.{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job: RecordingJob, path: Path) -> None:
        try:
            async with self._lock:
                job.state = "analysing"

                def on_progress(p: AnalysisProgress) -> None:
                    job.progress = p

                job.result = await analyze_recording(
                    self.manager, path, job.name, on_progress=on_progress
                )
                job.state = "done"
        except RecordingError as e:
            job.state, job.error = "failed", str(e)
        except Exception:
            log.exception("recording analysis failed")
            job.state, job.error = "failed", "the analysis failed"
        finally:
            # Analysed or not, the upload goes at once.
            await asyncio.to_thread(path.unlink, missing_ok=True)

    def _forget_old(self) -> None:
        finished = [j for j in self.jobs.values() if j.state in ("done", "failed")]
        for job in finished[: max(0, len(finished) - self.keep)]:
            del self.jobs[job.id]

    async def close(self) -> None:
        """Cancel every analysis (its meeting is removed, its upload deleted)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
