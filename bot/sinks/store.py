"""StoreSink: records a live meeting's events in the store.

Participants joining and leaving, room states, moments, summaries and the count of join
attempts that never connected are all recorded.
Participant states are sampled: one per participant every
``storage.state_interval_secs`` (the sidebar still gets every state), plus every
state where the face appears or disappears, speaking starts or stops, or the
analysis goes stale or recovers. Writes are queued in the store and flushed in
order on its thread.
"""

from __future__ import annotations

from bot.settings import StorageSettings
from bot.store import ParticipantRecord, Store
from bot.types import (
    JoinAttemptsEvent,
    MeetingEvent,
    MomentEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    ParticipantState,
    ParticipantStateEvent,
    RoomEvent,
    SummaryEvent,
)


def changed(state: ParticipantState, last: ParticipantState) -> bool:
    """Whether a state changes what is visible at a glance (face, speaking, stale)."""
    return (
        state.face_visible != last.face_visible
        or state.is_speaking != last.is_speaking
        or state.stale != last.stale
    )


class StoreSink:
    """Writes one meeting's events to the store. Event loop only.

    Args:
        store: The store (open).
        meeting_id: The meeting.
        settings: Storage settings (the state sampling interval).
    """

    def __init__(self, store: Store, meeting_id: str, settings: StorageSettings) -> None:
        self.store = store
        self.meeting_id = meeting_id
        self.settings = settings
        self._last: dict[str, ParticipantState] = {}

    def handle(self, event: MeetingEvent) -> None:
        """Queue what the event changes."""
        if isinstance(event, ParticipantStateEvent):
            state = event.state
            last = self._last.get(state.participant_id)
            if (
                last is None
                or state.ts - last.ts >= self.settings.state_interval_secs
                or changed(state, last)
            ):
                self._last[state.participant_id] = state
                self.store.add_state(self.meeting_id, state)
        elif isinstance(event, ParticipantJoinedEvent):
            info = event.participant
            self.store.add_participant_record(
                ParticipantRecord(
                    id=info.participant_id,
                    meeting_id=self.meeting_id,
                    display_name=info.display_name,
                    source=info.source,
                    joined_at=info.joined_at,
                    left_at=None,
                    leave_reason=None,
                    parent_id=info.parent_id,
                    face_track=info.face_track,
                )
            )
        elif isinstance(event, ParticipantLeftEvent):
            self._last.pop(event.participant_id, None)
            self.store.end_participant(event.participant_id, event.ts, event.reason)
        elif isinstance(event, RoomEvent):
            self.store.add_room(self.meeting_id, event.room)
        elif isinstance(event, MomentEvent):
            self.store.add_moment(self.meeting_id, event.moment)
        elif isinstance(event, SummaryEvent):
            self.store.add_summary(self.meeting_id, event)
        elif isinstance(event, JoinAttemptsEvent):
            self.store.set_unconnected_joins(self.meeting_id, event.unconnected)

    async def close(self) -> None:
        """Write what is queued."""
        await self.store.flush()
