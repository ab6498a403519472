"""Periodic mood summaries: a window of the meeting in, a few plain statements out.

- :mod:`bot.summaries.window` — :class:`SummaryWindow` folds the meeting's events since
  the last summary into a pseudonymised :class:`SummaryInput` (seed B's window
  features, talk, engagement and what moved it, mood, trends, moments, data quality).
- :mod:`bot.summaries.models` — the input, the :class:`SummaryOutput` response schema,
  :func:`validate_output` and :class:`Pseudonyms`.
- :mod:`bot.summaries.local` — the local summarizer: documented deterministic rules.
- :mod:`bot.summaries.vertex` — Gemini on Vertex AI (``summaries.summarizer = "vertex"``):
  the pseudonymised input as JSON, the response schema, retries, a per-meeting rate limit.
- :mod:`bot.summaries.questions`, :mod:`bot.summaries.answers`, :mod:`bot.summaries.ask`
  and :mod:`bot.summaries.vertex_answers` — the host's questions about the meeting:
  reading rules, the local answerer, the context from the store, Gemini's answers.
- :mod:`bot.sinks.summaries` — the scheduler: a sink of the live meeting that makes a
  summary every ``summaries.interval_secs`` of meeting time, when the last participant
  leaves and when the host asks, and publishes it as a :class:`~bot.types.SummaryEvent`.

A summarizer sees pseudonyms only (``P1``, ``P2``...); :func:`to_event` maps them back
to names on this machine. An output that does not fit its input is never shown as a
summary (:class:`InvalidSummary`).
"""

from __future__ import annotations

from typing import Protocol

from bot.summaries.models import (
    InvalidSummary,
    Pseudonyms,
    SummarizerUnavailable,
    SummaryInput,
    SummaryOutput,
    SummaryReason,
    validate_output,
)
from bot.summaries.redact import summary_text
from bot.summaries.window import SummaryWindow
from bot.types import SummaryEvent, SummaryParticipant

__all__ = [
    "InvalidSummary",
    "Pseudonyms",
    "Summarizer",
    "SummarizerUnavailable",
    "SummaryInput",
    "SummaryOutput",
    "SummaryWindow",
    "to_event",
    "validate_output",
]


class Summarizer(Protocol):
    """Writes a :class:`SummaryOutput` for a :class:`SummaryInput`. Called on the event loop.

    ``summarize`` must not block the loop (a remote call is awaited; local rules are
    cheap). It may raise or time out: the scheduler catches that and shows the local
    summary with a note (:class:`SummarizerUnavailable` says why in its message).
    """

    #: ``local`` or ``vertex``.
    name: str
    #: How the sidebar labels its summaries ("local summary").
    label: str

    @property
    def model(self) -> str | None:
        """The model that writes them (``None`` for the local rules)."""
        ...

    @property
    def where(self) -> str:
        """Where it runs and what leaves this machine, for the sidebar."""
        ...

    async def summarize(self, inp: SummaryInput, names: Pseudonyms) -> SummaryOutput:
        """The summary of one window.

        ``names`` says who the pseudonyms are; a summarizer sends no name anywhere
        unless it is configured to (``summaries.vertex.share_names``).
        """
        ...

    async def aclose(self) -> None:
        """Release connections (the meeting ends)."""
        ...


def to_event(
    output: SummaryOutput,
    inp: SummaryInput,
    names: Pseudonyms,
    *,
    summary_id: str,
    ts: float,
    window: tuple[float, float],
    reason: SummaryReason,
    source: str,
    label: str,
    model: str | None = None,
    note: str | None = None,
) -> SummaryEvent:
    """A validated output as the event the sidebar and the store get, names mapped back.

    Raises:
        InvalidSummary: the output does not fit the input.
    """
    validate_output(output, inp)
    participants = [
        SummaryParticipant(
            participant_id=names.by_alias.get(e.participant, (e.participant, ""))[0],
            display_name=names.name(e.participant),
            engagement_band=e.engagement_band,
            text=names.reveal(e.sentence),
        )
        for e in output.participants
    ]
    room_mood = names.reveal(output.room_mood)
    changes = [names.reveal(c) for c in output.changes]
    suggestion = names.reveal(output.suggestion)
    return SummaryEvent(
        id=summary_id,
        ts=ts,
        window_start=window[0],
        window_end=window[1],
        reason=reason,
        source="vertex" if source == "vertex" else "local",
        label=label,
        model=model,
        participants=participants,
        room_mood=room_mood,
        changes=changes,
        suggestion=suggestion,
        text=summary_text(
            label, note, (p.text for p in participants), room_mood, changes, suggestion
        ),
        note=note,
    )
