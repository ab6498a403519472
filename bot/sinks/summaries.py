"""SummarySink: the summary scheduler, a subscriber of one live meeting.

It is shown every event the meeting publishes (:meth:`SummarySink.handle`, which only
adds to the :class:`~bot.summaries.window.SummaryWindow`: constant time, no I/O) and
makes a summary:

- every ``summaries.interval_secs`` of meeting time: the meeting calls
  :meth:`SummarySink.tick` with its ``now`` once a second, so a test drives it on a
  virtual clock;
- when the meeting ends (its last participant leaves): :meth:`SummarySink.meeting_ended`;
- when the host asks: :meth:`SummarySink.summarize_now`.

Each summary covers the time since the previous one. Building the input is synchronous
and cheap; the summarizer is awaited in a task, bounded by ``summaries.timeout_secs``,
and its output is validated against the input before it is published as a
:class:`~bot.types.SummaryEvent` (through the meeting's ``publish``, so the sidebars
and the store get it). Nothing here raises into the meeting: a failed or invalid
summary is logged (without names or scores), replaced by the local summary when another
summarizer failed (with a note saying why; the next summary asks that summarizer again),
or published with ``error`` set — never shown as if it were valid.

:func:`summarizer_for` picks the summarizer from ``summaries.summarizer``: the local
rules, or Gemini on Vertex AI (:mod:`bot.summaries.vertex`, one per meeting: its rate
limit is the meeting's).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from bot.fusion.params import FusionParams
from bot.settings import SummarySettings
from bot.summaries import (
    Pseudonyms,
    Summarizer,
    SummaryInput,
    SummaryOutput,
    to_event,
)
from bot.summaries.local import LocalSummarizer, summarize_local
from bot.summaries.models import SummaryReason, failure_text
from bot.summaries.vertex import VertexSummarizer
from bot.summaries.window import SummaryWindow
from bot.types import MeetingEvent, SummarizerInfo, SummaryEvent

log = logging.getLogger(__name__)

#: Longest wait for summaries still being written when the meeting closes, seconds.
CLOSE_WAIT_SECS = 5.0


@dataclass(frozen=True, slots=True)
class SummaryJob:
    """One window to summarize: the input, its pseudonyms and its meeting-clock span."""

    input: SummaryInput
    names: Pseudonyms
    start: float
    end: float
    reason: SummaryReason


def summarizer_for(settings: SummarySettings) -> Summarizer:
    """The summarizer ``settings`` ask for; building it never fails nor does I/O."""
    if settings.summarizer == "vertex":
        return VertexSummarizer(settings.vertex, settings.timeout_secs)
    return LocalSummarizer()


class SummarySink:
    """Schedules, writes and publishes one meeting's summaries. Event loop only.

    Args:
        settings: ``[summaries]``.
        params: Fusion settings (engagement bands).
        publish: The meeting's publish (the summary goes to every sink).
        summarizer: Who writes summaries (default: the one ``settings`` name, see
            :func:`summarizer_for`).
    """

    def __init__(
        self,
        settings: SummarySettings,
        params: FusionParams,
        publish: Callable[[MeetingEvent], None],
        summarizer: Summarizer | None = None,
    ) -> None:
        self.settings = settings
        self.window = SummaryWindow(params)
        self.summarizer: Summarizer = summarizer or summarizer_for(settings)
        self._publish = publish
        self._tasks: set[asyncio.Task[SummaryEvent]] = set()

    @property
    def info(self) -> SummarizerInfo:
        """Which summarizer is active, for the sidebar."""
        s = self.summarizer
        return SummarizerInfo(
            name="vertex" if s.name == "vertex" else "local",
            label=s.label,
            interval_secs=self.settings.interval_secs,
            enabled=self.settings.enabled,
            model=s.model,
            where=s.where,
        )

    # -- events -------------------------------------------------------------------------

    def handle(self, event: MeetingEvent) -> None:
        """Add the event to the current window (summaries themselves are ignored)."""
        if not self.settings.enabled or isinstance(event, SummaryEvent):
            return
        try:
            self.window.add(event)
        except Exception:
            log.exception("summary window could not take an event", extra={"type": event.type})

    def forget(self, participant_id: str, name: str) -> None:
        """A participant withdrew: later summaries leave them out (and call them ``name``)."""
        self.window.forget(participant_id, name)

    def tick(self, now: float) -> None:
        """Start a summary when ``summaries.interval_secs`` have passed since the last one."""
        start = self.window.start
        if (
            self.settings.enabled
            and start is not None
            and now - start >= self.settings.interval_secs
        ):
            self.start(now, "interval")

    def meeting_ended(self, now: float) -> None:
        """The last participant left: summarize what is left of the window."""
        start = self.window.start
        if self.settings.enabled and start is not None and now > start:
            self.start(now, "end")

    # -- summaries ----------------------------------------------------------------------

    def start(self, now: float, reason: SummaryReason) -> asyncio.Task[SummaryEvent] | None:
        """Close the window at ``now`` and write its summary in a task (published when done)."""
        job = self.take(now, reason)
        if job is None:
            return None
        task = asyncio.create_task(self._run(job), name=f"summary.{reason}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def summarize_now(self, now: float) -> SummaryEvent:
        """The host asked: close the window at ``now``, summarize it, publish and return it."""
        job = self.take(now, "request")
        if job is None:
            event = self._error_event(
                now, now, now, "request", "the summary input could not be built"
            )
            self._publish(event)
            return event
        return await self._run(job)

    def take(self, now: float, reason: SummaryReason) -> SummaryJob | None:
        """The window ending at ``now`` as a job; the next window starts at ``now``."""
        try:
            inp, names = self.window.build(now, reason)
            start = self.window.start if self.window.start is not None else now
            return SummaryJob(inp, names, start, max(now, start), reason)
        except Exception:
            log.exception("summary input could not be built", extra={"reason": reason})
            return None
        finally:
            self.window.roll(now)

    async def _run(self, job: SummaryJob) -> SummaryEvent:
        event = await self.write(job)
        self._publish(event)
        return event

    async def write(self, job: SummaryJob) -> SummaryEvent:
        """The summary of ``job``: the summarizer's, else the local one, else an error."""
        s = self.summarizer
        try:
            output = await asyncio.wait_for(
                s.summarize(job.input, job.names), self.settings.timeout_secs
            )
            return self._event(job, output, s.name, s.label, s.model)
        except Exception as e:
            failure = failure_text(e, self.settings.timeout_secs)
            log.warning(
                "summarizer failed", extra={"summarizer": s.name, "error": type(e).__name__}
            )
        if s.name != "local":
            try:
                output = summarize_local(job.input)
                note = f"the {s.label} {failure}; local summary instead"
                return self._event(
                    job, output, LocalSummarizer.name, LocalSummarizer.label, note=note
                )
            except Exception as e:
                log.warning("local summary failed", extra={"error": type(e).__name__})
        return self._error_event(
            job.end, job.start, job.end, job.reason, f"no summary: the {s.label} {failure}"
        )

    @staticmethod
    def _event(
        job: SummaryJob,
        output: SummaryOutput,
        source: str,
        label: str,
        model: str | None = None,
        note: str | None = None,
    ) -> SummaryEvent:
        return to_event(
            output,
            job.input,
            job.names,
            summary_id=secrets.token_urlsafe(9),
            ts=job.end,
            window=(job.start, job.end),
            reason=job.reason,
            source=source,
            label=label,
            model=model,
            note=note,
        )

    def _error_event(
        self, ts: float, start: float, end: float, reason: SummaryReason, error: str
    ) -> SummaryEvent:
        return SummaryEvent(
            id=secrets.token_urlsafe(9),
            ts=ts,
            window_start=start,
            window_end=end,
            reason=reason,
            source=self.info.name,
            label=self.summarizer.label,
            error=error,
        )

    async def wait(self) -> None:
        """Let summaries being written finish (at most :data:`CLOSE_WAIT_SECS`)."""
        tasks = list(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=CLOSE_WAIT_SECS)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def close(self) -> None:
        """The meeting ends: finish the summaries being written, release the summarizer."""
        await self.wait()
        try:
            await self.summarizer.aclose()
        except Exception as e:
            log.warning("summarizer did not close", extra={"error": type(e).__name__})
