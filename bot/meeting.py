"""Meetings at run time: participants, fusion, and fan-out to sinks. No media, no SQL.

:class:`LiveMeeting` is one meeting while it runs: it receives every participant's
observations (:meth:`LiveMeeting.observe`), keeps the meeting's talk tracker, fuses
each participant (:func:`bot.fusion.fuse`) and, about once a second, the room
(:class:`~bot.fusion.room.RoomFusion`), and publishes each state and event once to
its sinks (:mod:`bot.sinks`: the store, the sidebars, the mood summaries, and later
the report recorder). A face of a room camera beyond the first (an observation of
slot 2, 3, ...) becomes a sub-participant ("Room A · face 2") fused on its own; it
leaves when its feed does.

:class:`MeetingManager` knows every meeting and owns the store and the inference
pool; participants join through a media source (:mod:`bot.sources`). Everything
runs on the event loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from analyzers.voice.talk import TalkSnapshot, TalkTracker
from bot.fusion import Fused, fuse
from bot.fusion.registry import definitions
from bot.fusion.room import RoomFusion
from bot.inference import AnalyzerPools, Inference
from bot.session import ParticipantSession
from bot.settings import Settings
from bot.sinks import Sink
from bot.sinks.live import LiveSink, Subscription
from bot.sinks.store import StoreSink
from bot.sinks.summaries import SummarySink
from bot.sources import MediaSource
from bot.sources.browser import BrowserSource, restrict_host_addresses
from bot.store import MeetingRecord, ParticipantRecord, Store
from bot.types import (
    FaceObservation,
    LeaveReason,
    ListeningObservation,
    MeetingEvent,
    MeetingRef,
    MomentEvent,
    NoticeEvent,
    Observation,
    ParticipantInfo,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    ParticipantStateEvent,
    RoomEvent,
    RoomState,
    SnapshotEvent,
    SpeakingObservation,
    SummaryEvent,
    TalkEvent,
    TalkFigures,
    TalkObservation,
    TalkParticipantView,
)

log = logging.getLogger(__name__)

#: What the host is told, once, when an analyzer's model could not be loaded.
UNAVAILABLE_NOTICES = {
    "voice_emotion": "voice emotion model unavailable",
    "face_emotion": "face emotion model unavailable",
}


class MeetingNotFound(LookupError):
    """No meeting has this id."""


def talk_event(snap: TalkSnapshot) -> TalkEvent:
    """The sidebar's view of the meeting's talk statistics."""
    return TalkEvent(
        ts=snap.ts,
        speaking=list(snap.current_speakers),
        participants=[
            TalkParticipantView(
                participant_id=p.participant_id,
                is_speaking=p.is_speaking,
                talk_secs=p.talk_secs,
                talk_share=p.talk_share if snap.talk_secs > 0 else None,
                turns=p.turns,
                interruptions=p.interruptions,
                overlap_secs=p.overlap_secs,
                longest_turn_secs=p.longest_turn_secs,
            )
            for p in snap.participants
            if p.is_present
        ],
        duration_secs=snap.duration_secs,
        speech_secs=snap.speech_secs,
        silence_secs=snap.silence_secs,
        long_silences=snap.long_silences,
        overlap_secs=snap.overlap_secs,
        current_silence_secs=snap.current_silence_secs,
    )


def talk_figures(snap: TalkSnapshot) -> dict[str, TalkFigures]:
    """Each present participant's talk figures, for fusion."""
    present = [p for p in snap.participants if p.is_present]
    return {
        p.participant_id: TalkFigures(
            talk_secs=p.talk_secs,
            talk_share=p.talk_share if snap.talk_secs > 0 else None,
            turns=p.turns,
            interruptions=p.interruptions,
            overlap_secs=p.overlap_secs,
            present=len(present),
            meeting_speech_secs=snap.speech_secs,
            meeting_turns=snap.turns,
        )
        for p in present
    }


@dataclass(eq=False)
class LiveParticipant:
    """A connected participant: their record, media source, session and leave token."""

    record: ParticipantRecord
    token: str
    session: ParticipantSession
    source: MediaSource
    watcher: asyncio.Task[None] | None = None
    ending: bool = False
    faces: dict[int, str] = field(default_factory=dict)  # slot >= 2 -> sub-participant id


class LiveMeeting:
    """One running meeting: participants, fusion and sinks. Event loop only.

    Args:
        record: The stored meeting.
        settings: All settings.
        store: Where the store sink writes.
        pool: Where the sessions' inference runs.
        clock: Wall clock (meeting time).
        ticking: Tick once a second of wall time by itself; False when the caller
            calls :meth:`tick` on its own clock (an import running on media time).
    """

    def __init__(
        self,
        record: MeetingRecord,
        settings: Settings,
        store: Store,
        pool: Inference,
        clock: Callable[[], float] = time.time,
        *,
        ticking: bool = True,
    ) -> None:
        self.record = record
        self.settings = settings
        self.pool = pool
        self.clock = clock
        self.ticking = ticking
        self.participants: dict[str, LiveParticipant] = {}
        self.faces: dict[str, ParticipantRecord] = {}  # sub-participant id -> record
        self.fused: dict[str, Fused] = {}
        self.talk: TalkTracker | None = None  # from the first participant with audio
        self.room_fusion = RoomFusion(settings.fusion)
        self.room: RoomState | None = None
        self.live = LiveSink(
            settings.sidebar.state_interval_secs, settings.sidebar.max_queued_events
        )
        self.summaries = SummarySink(settings.summaries, settings.fusion, self.publish)
        self.sinks: list[Sink] = [
            StoreSink(store, record.id, settings.storage),
            self.live,
            self.summaries,
        ]
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None

    # -- publishing --------------------------------------------------------------

    def publish(self, event: MeetingEvent) -> None:
        """Send an event to every sink, once."""
        for sink in self.sinks:
            sink.handle(event)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- participants ------------------------------------------------------------

    def join(self, display_name: str, source: MediaSource) -> LiveParticipant:
        """A participant joins with their media source; their analysis starts now."""
        settings = self.settings
        record = ParticipantRecord.new(self.record.id, display_name, source.kind, self.clock())
        session = ParticipantSession(
            record.id,
            self.pool,
            settings.analyzers.face_emotion,
            settings.pipeline,
            self.observe,
            face_enabled="face_emotion" in settings.analyzers.enabled,
            voice=settings.voice,
            voice_emotion=settings.analyzers.voice_emotion,
            clock=source.clock,
            pacing=source.pacing,
        )
        participant = LiveParticipant(record, secrets.token_urlsafe(18), session, source)
        self.participants[record.id] = participant
        self.publish(ParticipantJoinedEvent(participant=self.info(record)))
        log.info("participant joined", extra={"meeting": self.record.id, "participant": record.id})
        if self._ticker is None and self.ticking:
            self._ticker = self._spawn(self._tick_loop(), f"meeting.tick.{self.record.id}")
        source.start(record.id, session.add_track, self.observe)
        participant.watcher = self._spawn(self._watch(participant), f"source.watch.{record.id}")
        return participant

    async def _watch(self, participant: LiveParticipant) -> None:
        """End the participant when their media source ends or every track has ended."""
        ended = asyncio.ensure_future(participant.session.ended.wait())
        source_ended = asyncio.ensure_future(participant.source.wait_ended())
        try:
            await asyncio.wait({ended, source_ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            source_ended.cancel()
        reason: LeaveReason = "disconnected"
        if source_ended.done() and not source_ended.cancelled():
            reason = source_ended.result()
        # Ending closes the source; detach first so this task is not cancelled by itself.
        participant.watcher = None
        await self.end(participant, reason)

    async def end(self, participant: LiveParticipant, reason: LeaveReason) -> None:
        """Stop a participant's analysis, close their source and record that they left."""
        if participant.ending:
            return
        participant.ending = True
        ts = self.clock()
        if participant.watcher is not None:
            participant.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await participant.watcher
        await participant.session.close()
        await participant.source.close()
        pid = participant.record.id
        self.participants.pop(pid, None)
        if self.talk is not None:
            self.talk.left(pid, ts)
        for sub_id in participant.faces.values():
            self._forget(sub_id)
            self.faces.pop(sub_id, None)
            self.publish(ParticipantLeftEvent(participant_id=sub_id, ts=ts, reason="left"))
        self._forget(pid)
        self.publish(ParticipantLeftEvent(participant_id=pid, ts=ts, reason=reason))
        if not self.participants:
            self.summaries.meeting_ended(ts)
        log.info(
            "participant left",
            extra={"meeting": self.record.id, "participant": pid, "reason": reason},
        )

    def _forget(self, pid: str) -> None:
        self.fused.pop(pid, None)
        self.room_fusion.leave(pid)

    def info(self, record: ParticipantRecord) -> ParticipantInfo:
        """How the sidebar sees a participant, with their latest state."""
        fused = self.fused.get(record.id)
        return ParticipantInfo(
            participant_id=record.id,
            display_name=record.display_name,
            joined_at=record.joined_at,
            left_at=record.left_at,
            leave_reason=record.leave_reason,
            state=fused.state if fused is not None else None,
            parent_id=record.parent_id,
            face_track=record.face_track,
            source=record.source,
        )

    def record_of(self, pid: str) -> ParticipantRecord | None:
        """The record of a connected participant or face."""
        live = self.participants.get(pid)
        return live.record if live is not None else self.faces.get(pid)

    # -- observations and fusion --------------------------------------------------

    def observe(self, observation: Observation) -> None:
        """Take one observation of a participant (called by their session)."""
        pid = observation.participant_id
        participant = self.participants.get(pid)
        if participant is None or participant.ending:
            return  # arrived while the participant was leaving
        if isinstance(observation, SpeakingObservation):
            talk = self._tracker(observation.ts)
            if observation.is_speaking:
                talk.speaking_started(pid, observation.ts)
            else:
                talk.speaking_stopped(pid, observation.ts)
            return
        if isinstance(observation, ListeningObservation):
            self._tracker(observation.ts).joined(pid, observation.ts)
            return
        if isinstance(observation, FaceObservation) and observation.slot > 1:
            sub_id = self._face_participant(participant, observation.slot)
            self._fuse(sub_id, [observation], observation.ts, voice_attributable=False)
            return
        self._fuse(pid, [observation], observation.ts)

    def _fuse(
        self,
        pid: str,
        observations: list[Observation],
        now: float,
        *,
        voice_attributable: bool = True,
    ) -> None:
        fused = fuse(
            self.fused.get(pid),
            pid,
            observations,
            now,
            self.settings.fusion,
            voice_attributable=voice_attributable,
        )
        self.fused[pid] = fused
        self.room_fusion.observe(fused.state)
        self.publish(ParticipantStateEvent(state=fused.state))

    def _face_participant(self, parent: LiveParticipant, slot: int) -> str:
        """The sub-participant of a face slot of ``parent``'s feed (created when first seen)."""
        sub_id = parent.faces.get(slot)
        if sub_id is None:
            p = parent.record
            record = ParticipantRecord.new(
                self.record.id,
                f"{p.display_name} · face {slot}",
                p.source,
                self.clock(),
                parent_id=p.id,
                face_track=slot,
            )
            sub_id = parent.faces[slot] = record.id
            self.faces[sub_id] = record
            self.publish(ParticipantJoinedEvent(participant=self.info(record)))
        return sub_id

    def _tracker(self, ts: float) -> TalkTracker:
        if self.talk is None:
            self.talk = TalkTracker(ts, long_silence_secs=self.settings.voice.long_silence_secs)
        return self.talk

    # -- once a second: talk figures, the room, moments ---------------------------

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.fusion.room_interval_secs)
            if self.participants:
                self.tick(self.clock())

    def tick(self, now: float) -> None:
        """Publish the talk figures, fuse each participant with theirs, then fuse the room.

        Then start a mood summary when one is due (it is published when written).
        """
        if self.talk is not None:
            snap = self.talk.snapshot(now)
            self.publish(talk_event(snap))
            for pid, figures in talk_figures(snap).items():
                if pid in self.participants:
                    self._fuse(pid, [TalkObservation(pid, now, figures)], now)
        room, moments = self.room_fusion.tick(now)
        self.room = room
        self.publish(RoomEvent(room=room))
        for moment in moments:
            self.publish(MomentEvent(moment=moment))
        self.summaries.tick(now)

    async def summarize_now(self) -> SummaryEvent:
        """The host asked for a summary: of the time since the last one, published and returned."""
        return await self.summaries.summarize_now(self.clock())

    async def close(self, reason: LeaveReason = "server_shutdown") -> None:
        """End every participant, stop the meeting's tasks and let the sinks finish."""
        for p in list(self.participants.values()):
            await self.end(p, reason)
        await self.summaries.wait()  # the meeting-end summary reaches the store
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._ticker = None
        for sink in self.sinks:
            await sink.close()

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """Receive this meeting's events for the duration of the context."""
        sub = self.live.subscribe()
        try:
            yield sub
        finally:
            self.live.unsubscribe(sub)


class MeetingManager:
    """Every meeting, the store and the inference pool.

    Args:
        settings: All settings.
        store: The store (default: SQLite at ``settings.storage.database_path``).
        pool: Inference (default: one pool per enabled analyzer, see
            :class:`~bot.inference.AnalyzerPools`).
    """

    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        pool: Inference | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or Store(
            settings.storage.database_path, settings.storage.flush_interval_secs
        )
        enabled = settings.analyzers.enabled
        self.pool: Inference = pool or AnalyzerPools(
            {name: settings.analyzers.params(name).model_dump() for name in enabled},
            workers=settings.inference.workers,
            mode=settings.inference.mode,
        )
        self._live: dict[str, LiveMeeting] = {}

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Open the store and load the models. Blocking work runs off the loop."""
        if self.settings.webrtc.ice_addresses:
            restrict_host_addresses(self.settings.webrtc.ice_addresses)
        await self.store.open()
        closed = await self.store.close_dangling_participants()
        if closed:
            log.info("closed participants left open by an earlier run", extra={"count": closed})
        await self.pool.start()

    async def close(self) -> None:
        """End every participant (sources closed, tasks cancelled), then stop and flush."""
        for meeting in list(self._live.values()):
            await meeting.close("server_shutdown")
        await self.pool.close()
        await self.store.close()

    # -- meetings ----------------------------------------------------------------

    async def create_meeting(self, name: str) -> tuple[MeetingRecord, str]:
        """Create a meeting; returns it and its host token."""
        return await self.store.create_meeting(name)

    async def get_meeting(self, meeting_id: str) -> MeetingRecord:
        """A stored meeting.

        Raises:
            MeetingNotFound: unknown id.
        """
        live = self._live.get(meeting_id)
        if live is not None:
            return live.record
        record = await self.store.get_meeting(meeting_id)
        if record is None:
            raise MeetingNotFound(meeting_id)
        return record

    async def live(self, meeting_id: str) -> LiveMeeting:
        """The runtime side of a meeting (created on first use)."""
        meeting = self._live.get(meeting_id)
        if meeting is None:
            record = await self.get_meeting(meeting_id)
            meeting = self._live.get(meeting_id) or LiveMeeting(
                record, self.settings, self.store, self.pool
            )
            self._live[meeting_id] = meeting
        return meeting

    async def close_meeting(self, meeting_id: str) -> None:
        """End a running meeting's participants, let its sinks finish, and forget it."""
        meeting = self._live.pop(meeting_id, None)
        if meeting is not None:
            await meeting.close("left")

    async def live_on_clock(self, meeting_id: str, clock: Callable[[], float]) -> LiveMeeting:
        """The runtime side of a meeting whose caller drives its clock and ticks.

        For an import that runs on the media's own time (:mod:`bot.sources.openface`):
        the meeting reads ``clock`` and never ticks by itself.

        Raises:
            MeetingNotFound: unknown id.
            RuntimeError: the meeting already runs on another clock.
        """
        if meeting_id in self._live:
            raise RuntimeError("the meeting is already running")
        record = await self.get_meeting(meeting_id)
        meeting = LiveMeeting(record, self.settings, self.store, self.pool, clock, ticking=False)
        self._live[meeting_id] = meeting
        return meeting

    @staticmethod
    def join_url(base_url: str, record: MeetingRecord) -> str:
        """The participant link."""
        return f"{base_url}/join/{record.id}?token={record.join_token}"

    @staticmethod
    def host_url(base_url: str, record: MeetingRecord, host_token: str) -> str:
        """The host link (the sidebar)."""
        return f"{base_url}/host/{record.id}?token={host_token}"

    # -- participants ------------------------------------------------------------

    async def join_browser(
        self, meeting_id: str, display_name: str, sdp: str, kind: str
    ) -> tuple[LiveParticipant, str]:
        """Accept a browser participant's offer; returns the participant and the answer SDP.

        Raises:
            MeetingNotFound: unknown meeting.
            OfferError: the offer is unusable (nothing is stored then).
        """
        meeting = await self.live(meeting_id)
        source, answer = await BrowserSource.accept(sdp, kind, self.settings.webrtc)
        return meeting.join(display_name, source), answer

    async def leave(self, meeting_id: str, participant_id: str, token: str | None) -> bool:
        """A participant leaves by their own request. False if the token is wrong."""
        meeting = await self.live(meeting_id)
        participant = meeting.participants.get(participant_id)
        if participant is None:
            # Already gone (e.g. the peer closed first): leaving again is harmless.
            return True
        if not token or not secrets.compare_digest(token, participant.token):
            return False
        await meeting.end(participant, "left")
        return True

    def find_participant(self, meeting_id: str, participant_id: str) -> LiveParticipant | None:
        """A connected participant, if any."""
        meeting = self._live.get(meeting_id)
        return meeting.participants.get(participant_id) if meeting else None

    def notices(self) -> list[NoticeEvent]:
        """What the host should know about this server, once per sidebar connection."""
        return [
            NoticeEvent(code=f"{name}_unavailable", text=UNAVAILABLE_NOTICES.get(name, name))
            for name in sorted(self.pool.unavailable)
        ]

    # -- sidebar -----------------------------------------------------------------

    async def snapshot(self, meeting_id: str) -> SnapshotEvent:
        """Everything a sidebar needs: participants, states, timelines, room and moments."""
        meeting = await self.live(meeting_id)
        now = meeting.clock()
        history_secs = self.settings.sidebar.history_secs
        since = now - history_secs
        records = await self.store.list_participants(meeting_id)
        history = await self.store.history(meeting_id, since)
        infos = []
        for r in records:
            live = meeting.record_of(r.id)
            if live is not None:
                infos.append(meeting.info(live))
            elif r.left_at is not None and r.left_at < since and r.id not in history:
                continue  # long gone and nothing to draw
            else:
                # Gone: the sidebar shows the card dimmed with its timeline, no live state.
                infos.append(meeting.info(r))
        return SnapshotEvent(
            meeting=MeetingRef(id=meeting.record.id, name=meeting.record.name),
            history_secs=history_secs,
            server_ts=now,
            participants=infos,
            history=history,
            definitions=definitions(),
            engagement_bands=self.settings.fusion.bands,
            room=meeting.room,
            room_history=await self.store.room_history(meeting_id, since),
            moments=await self.store.moments(meeting_id, since),
            talk=talk_event(meeting.talk.snapshot(now)) if meeting.talk is not None else None,
            notices=self.notices(),
            summaries=await self.store.summaries(
                meeting_id, limit=self.settings.summaries.sidebar_count
            ),
            summarizer=meeting.summaries.info,
        )

    @contextlib.asynccontextmanager
    async def subscribe(self, meeting_id: str) -> AsyncIterator[Subscription]:
        """Receive a meeting's events for the duration of the context."""
        meeting = await self.live(meeting_id)
        async with meeting.subscribe() as sub:
            yield sub

    def stats(self) -> dict[str, Any]:
        """Pipeline figures per connected participant (no names)."""
        return {
            pid: p.session.stats()
            for meeting in self._live.values()
            for pid, p in meeting.participants.items()
        }
