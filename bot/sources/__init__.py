"""Media sources: where a participant's media comes from.

A :class:`MediaSource` hands a participant's tracks to their session, says when the
media ended and why, and closes. The browser peer (:mod:`bot.sources.browser`) is one
source; a Janus VideoRoom subscriber, a WHEP client and a recorded file plug in the same
way. A source without media (an OpenFace CSV: rows of landmarks, action units, pose and
gaze already measured) hands observations straight to fusion through ``emit`` instead.
A source also chooses its clock and pacing (:mod:`bot.session.clock`): live sources run
on the wall clock with the newest frame winning; a file can run on its own media time,
faster than real time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from aiortc.mediastreams import MediaStreamTrack

from bot.session.clock import Clock, Pacing
from bot.types import LeaveReason, Observation


class MediaSource(Protocol):
    """One participant's media. Used on the event loop thread.

    Attributes:
        kind: What the source is (``"browser"``, ...); stored with the participant.
        clock: The clock the participant's session runs on.
        pacing: Makes the pacing for each video track.
    """

    kind: str
    clock: Clock
    pacing: Callable[[], Pacing]

    def start(
        self,
        participant_id: str,
        on_track: Callable[[MediaStreamTrack], None],
        emit: Callable[[Observation], None],
    ) -> None:
        """Hand every track of participant ``participant_id``, present and future, to ``on_track``.

        A source that measures its participant itself passes its observations to
        ``emit`` instead (they go to the meeting's fusion, as a session's do).
        """
        ...

    async def wait_ended(self) -> LeaveReason:
        """Wait until the media ends; returns why (disconnected, failed, ...)."""
        ...

    async def close(self) -> None:
        """Stop receiving and free the connection (idempotent)."""
        ...
