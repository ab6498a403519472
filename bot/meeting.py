"""Meetings at run time: participants, their peers and sessions, and event fan-out.

:class:`MeetingManager` owns the store and the inference pool and knows every
meeting; :class:`LiveMeeting` holds the participants currently connected to one
meeting and pushes its events to every subscribed sidebar. All of it runs on the
event loop thread.

A participant's media source (today a browser peer; later a Janus feed, a WHEP
stream or a file) is kept apart from what happens to its media: every source
hands the meeting tracks, and a :class:`ParticipantSession` analyses them.

A face of a room camera beyond the first becomes a :class:`FaceParticipant`
("Room A · face 2", see :mod:`bot.faces`), stored as its own participant with
its feed's participant as parent; it leaves when its feed does. Each live
meeting has a :class:`~analyzers.voice.talk.TalkTracker` fed by its sessions'
speaking changes, and sends the sidebar a :class:`TalkEvent` about once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from analyzers.voice.talk import TalkSnapshot, TalkTracker
from bot import peer
from bot.faces import SLOT_SEPARATOR
from bot.inference import AnalyzerPools, Inference
from bot.session import ParticipantSession, TalkHooks
from bot.settings import Settings
from bot.store import MeetingRecord, ParticipantRecord, Store
from bot.types import (
    LeaveReason,
    MeetingEvent,
    MeetingRef,
    NoticeEvent,
    ParticipantInfo,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    ParticipantState,
    ParticipantStateEvent,
    SnapshotEvent,
    StateView,
    TalkEvent,
    TalkParticipantView,
)

log = logging.getLogger(__name__)

#: How long a new peer may take to connect before it counts as failed.
CONNECT_TIMEOUT_SECS = 30.0
#: What the host is told, once, when an analyzer's model could not be loaded.
UNAVAILABLE_NOTICES = {
    "voice_emotion": "voice emotion model unavailable",
    "face_emotion": "face emotion model unavailable",
}


class MeetingNotFound(LookupError):
    """No meeting has this id."""


@dataclass(eq=False)
class LiveParticipant:
    """A connected participant: stored record, peer, pipeline and leave token."""

    record: ParticipantRecord
    token: str
    session: ParticipantSession
    pc: RTCPeerConnection | None = None
    watcher: asyncio.Task[None] | None = None
    ending: bool = False

    def info(self) -> ParticipantInfo:
        """How the sidebar sees this participant."""
        state = self.session.state
        return ParticipantInfo(
            participant_id=self.record.id,
            display_name=self.record.display_name,
            joined_at=self.record.joined_at,
            state=StateView.of(state) if state else None,
        )


@dataclass(eq=False)
class FaceParticipant:
    """A face in a participant's feed beyond the first (a room camera's "face 2").

    ``record`` is None until the store has it; states that arrive before are kept
    as ``state`` and published once it exists.
    """

    parent_id: str
    slot: int
    record: ParticipantRecord | None = None
    state: ParticipantState | None = None

    def info(self) -> ParticipantInfo | None:
        """How the sidebar sees this face (None until stored)."""
        if self.record is None:
            return None
        return ParticipantInfo(
            participant_id=self.record.id,
            display_name=self.record.display_name,
            joined_at=self.record.joined_at,
            state=StateView.of(self.state) if self.state else None,
            parent_id=self.parent_id,
            face_track=self.slot,
        )


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
    )


@dataclass(eq=False)
class Subscription:
    """One sidebar's queue of events. Oldest events are dropped when it is full."""

    queue: asyncio.Queue[MeetingEvent] = field(default_factory=asyncio.Queue)
    max_queued: int = 500
    dropped: int = 0

    def push(self, event: MeetingEvent) -> None:
        """Queue an event without ever blocking the publisher."""
        if self.queue.qsize() >= self.max_queued:
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)


class LiveMeeting:
    """The connected participants of one meeting and its subscribers."""

    def __init__(self, record: MeetingRecord) -> None:
        """Create the runtime side of a stored meeting."""
        self.record = record
        self.participants: dict[str, LiveParticipant] = {}
        self.faces: dict[str, FaceParticipant] = {}  # sub-participant id -> face
        self.subscribers: set[Subscription] = set()
        self.talk: TalkTracker | None = None  # from the first participant with audio
        self.talk_task: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        # Per participant: the last stored state (storage is sampled, the sidebar is not).
        self.last_stored: dict[str, ParticipantState] = {}

    def publish(self, event: MeetingEvent) -> None:
        """Send an event to every subscribed sidebar."""
        for sub in self.subscribers:
            sub.push(event)


class MeetingManager:
    """Every meeting, their participants, the store and the inference pool.

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
        self._started = False

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Open the store and load the models. Blocking work runs off the loop."""
        if self.settings.webrtc.ice_addresses:
            peer.restrict_host_addresses(self.settings.webrtc.ice_addresses)
        await self.store.open()
        closed = await self.store.close_dangling_participants()
        if closed:
            log.info("closed participants left open by an earlier run", extra={"count": closed})
        await self.pool.start()
        self._started = True

    async def close(self) -> None:
        """End every participant (peers closed, tasks cancelled), then stop and flush."""
        for meeting in list(self._live.values()):
            for p in list(meeting.participants.values()):
                await self.end_participant(meeting, p, "server_shutdown")
            tasks = list(meeting.tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.pool.close()
        await self.store.close()
        self._started = False

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
            meeting = self._live.setdefault(meeting_id, LiveMeeting(record))
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
            peer.OfferError: the offer is unusable (nothing is stored then).
        """
        meeting = await self.live(meeting_id)
        tracks: list[MediaStreamTrack] = []
        pc, answer = await peer.accept_offer(sdp, kind, self.settings.webrtc, tracks.append)
        record = await self.store.add_participant(meeting_id, display_name, source="browser")
        participant = self._add_participant(meeting, record)
        participant.pc = pc
        for track in tracks:
            participant.session.add_track(track)
        # Tracks normally all arrive during setRemoteDescription; take late ones too.
        pc.remove_all_listeners("track")
        pc.on("track", participant.session.add_track)
        participant.watcher = asyncio.create_task(
            self._watch_peer(meeting, participant), name=f"peer.watch.{record.id}"
        )
        return participant, answer.sdp

    def _add_participant(self, meeting: LiveMeeting, record: ParticipantRecord) -> LiveParticipant:
        settings = self.settings

        def on_state(state: ParticipantState) -> None:
            if state.participant_id == record.id:
                self._record_state(meeting, state)
                meeting.publish(ParticipantStateEvent(state=StateView.of(state)))
            else:
                self._face_state(meeting, record, state)

        session = ParticipantSession(
            record.id,
            self.pool,
            settings.analyzers.face_emotion,
            settings.pipeline,
            on_state,
            face_enabled="face_emotion" in settings.analyzers.enabled,
            voice=settings.voice,
            voice_emotion=settings.analyzers.voice_emotion,
            talk=self._talk_hooks(meeting),
        )
        participant = LiveParticipant(
            record=record, token=secrets.token_urlsafe(18), session=session
        )
        meeting.participants[record.id] = participant
        meeting.publish(ParticipantJoinedEvent(participant=participant.info()))
        log.info(
            "participant joined", extra={"meeting": meeting.record.id, "participant": record.id}
        )
        return participant

    def _record_state(self, meeting: LiveMeeting, state: ParticipantState) -> None:
        """Store a state, sampled to ``storage.state_interval_secs`` per participant."""
        last = meeting.last_stored.get(state.participant_id)
        if (
            last is None
            or state.ts - last.ts >= self.settings.storage.state_interval_secs
            or state.face_visible != last.face_visible
            or state.is_speaking != last.is_speaking
            or state.stale != last.stale
        ):
            meeting.last_stored[state.participant_id] = state
            self.store.add_state(meeting.record.id, state)

    # -- faces of a room camera ----------------------------------------------------

    def _face_state(
        self, meeting: LiveMeeting, parent: ParticipantRecord, state: ParticipantState
    ) -> None:
        face = meeting.faces.get(state.participant_id)
        if face is None:
            slot = int(state.participant_id.rsplit(SLOT_SEPARATOR, 1)[1])
            face = meeting.faces[state.participant_id] = FaceParticipant(parent.id, slot)
            self._spawn(meeting, self._store_face(meeting, parent, face, state.participant_id))
        face.state = state
        if face.record is not None:
            self._record_state(meeting, state)
            meeting.publish(ParticipantStateEvent(state=StateView.of(state)))

    async def _store_face(
        self, meeting: LiveMeeting, parent: ParticipantRecord, face: FaceParticipant, sub_id: str
    ) -> None:
        face.record = await self.store.add_participant(
            meeting.record.id,
            f"{parent.display_name} · face {face.slot}",
            parent.source,
            parent_id=parent.id,
            face_track=face.slot,
            participant_id=sub_id,
        )
        if meeting.faces.get(sub_id) is not face:
            # Its feed left while the record was being written.
            await self.store.end_participant(sub_id, time.time(), "left")
            return
        info = face.info()
        assert info is not None
        meeting.publish(ParticipantJoinedEvent(participant=info))
        if face.state is not None:
            self._record_state(meeting, face.state)
            meeting.publish(ParticipantStateEvent(state=StateView.of(face.state)))

    async def _end_faces(self, meeting: LiveMeeting, parent_id: str, ts: float) -> None:
        for sub_id, face in list(meeting.faces.items()):
            if face.parent_id != parent_id:
                continue
            del meeting.faces[sub_id]
            meeting.last_stored.pop(sub_id, None)
            if face.record is not None:
                await self.store.end_participant(sub_id, ts, "left")
                meeting.publish(ParticipantLeftEvent(participant_id=sub_id, ts=ts, reason="left"))

    # -- talk ----------------------------------------------------------------------

    def _talk_hooks(self, meeting: LiveMeeting) -> TalkHooks:
        voice = self.settings.voice

        def tracker(ts: float) -> TalkTracker:
            if meeting.talk is None:
                meeting.talk = TalkTracker(ts, long_silence_secs=voice.long_silence_secs)
                meeting.talk_task = self._spawn(meeting, self._publish_talk(meeting))
            return meeting.talk

        def on_listening(pid: str, ts: float) -> None:
            tracker(ts).joined(pid, ts)

        def on_speaking(pid: str, ts: float, is_speaking: bool) -> None:
            talk = tracker(ts)
            if is_speaking:
                talk.speaking_started(pid, ts)
            else:
                talk.speaking_stopped(pid, ts)

        def figures(pid: str) -> tuple[float | None, int]:
            if meeting.talk is None:
                return None, 0
            snap = meeting.talk.snapshot(time.time())
            mine = snap.participant(pid)
            if mine is None:
                return None, 0
            return (mine.talk_share if snap.talk_secs > 0 else None), mine.turns

        return TalkHooks(on_listening=on_listening, on_speaking=on_speaking, figures=figures)

    async def _publish_talk(self, meeting: LiveMeeting) -> None:
        """Send the meeting's talk figures to the sidebars about once a second."""
        while True:
            await asyncio.sleep(self.settings.voice.state_interval_secs)
            if meeting.talk is not None and meeting.participants:
                meeting.publish(talk_event(meeting.talk.snapshot(time.time())))

    def _spawn(self, meeting: LiveMeeting, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.create_task(coro)
        meeting.tasks.add(task)
        task.add_done_callback(meeting.tasks.discard)
        return task

    def notices(self) -> list[NoticeEvent]:
        """What the host should know about this server, once per sidebar connection."""
        return [
            NoticeEvent(code=f"{name}_unavailable", text=UNAVAILABLE_NOTICES.get(name, name))
            for name in sorted(self.pool.unavailable)
        ]

    async def _watch_peer(self, meeting: LiveMeeting, participant: LiveParticipant) -> None:
        """End the participant when the connection fails, closes, or never connects."""
        pc = participant.pc
        assert pc is not None
        changed = asyncio.Event()
        pc.on("connectionstatechange", changed.set)
        deadline = time.monotonic() + CONNECT_TIMEOUT_SECS
        ended = asyncio.ensure_future(participant.session.ended.wait())
        try:
            while True:
                changed.clear()
                state = pc.connectionState
                if state == "failed":
                    reason: LeaveReason = "failed"
                    break
                if state == "closed":
                    reason = "disconnected"
                    break
                if ended.done():
                    reason = "disconnected"  # every track ended
                    break
                timeout = None
                if state != "connected":
                    timeout = max(0.0, deadline - time.monotonic())
                    if timeout == 0.0:
                        reason = "failed"
                        break
                waiter = asyncio.ensure_future(changed.wait())
                await asyncio.wait({waiter, ended}, timeout=timeout, return_when="FIRST_COMPLETED")
                waiter.cancel()
        finally:
            ended.cancel()
        # Ending closes the peer; detach first so this task is not cancelled by itself.
        participant.watcher = None
        await self.end_participant(meeting, participant, reason)

    async def leave(self, meeting_id: str, participant_id: str, token: str | None) -> bool:
        """A participant leaves by their own request. False if the token is wrong."""
        meeting = await self.live(meeting_id)
        participant = meeting.participants.get(participant_id)
        if participant is None:
            # Already gone (e.g. the peer closed first): leaving again is harmless.
            return True
        if not token or not secrets.compare_digest(token, participant.token):
            return False
        await self.end_participant(meeting, participant, "left")
        return True

    def find_participant(self, meeting_id: str, participant_id: str) -> LiveParticipant | None:
        """A connected participant, if any."""
        meeting = self._live.get(meeting_id)
        return meeting.participants.get(participant_id) if meeting else None

    async def end_participant(
        self, meeting: LiveMeeting, participant: LiveParticipant, reason: LeaveReason
    ) -> None:
        """Stop a participant's analysis, close their peer and record that they left."""
        if participant.ending:
            return
        participant.ending = True
        ts = time.time()
        if participant.watcher is not None:
            participant.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await participant.watcher
        await participant.session.close()
        if participant.pc is not None:
            await participant.pc.close()
        meeting.participants.pop(participant.record.id, None)
        meeting.last_stored.pop(participant.record.id, None)
        if meeting.talk is not None:
            meeting.talk.left(participant.record.id, ts)
        await self._end_faces(meeting, participant.record.id, ts)
        await self.store.end_participant(participant.record.id, ts, reason)
        meeting.publish(
            ParticipantLeftEvent(participant_id=participant.record.id, ts=ts, reason=reason)
        )
        log.info(
            "participant left",
            extra={
                "meeting": meeting.record.id,
                "participant": participant.record.id,
                "reason": reason,
            },
        )

    # -- sidebar -----------------------------------------------------------------

    async def snapshot(self, meeting_id: str) -> SnapshotEvent:
        """Everything a sidebar needs: participants, their last state, their timelines."""
        meeting = await self.live(meeting_id)
        now = time.time()
        history_secs = self.settings.sidebar.history_secs
        records = await self.store.list_participants(meeting_id)
        history = await self.store.history(meeting_id, now - history_secs)
        infos = []
        for r in records:
            live = meeting.participants.get(r.id)
            face = meeting.faces.get(r.id)
            info = live.info() if live is not None else face.info() if face is not None else None
            if info is not None:
                infos.append(info)
            elif r.left_at is not None and r.left_at < now - history_secs and r.id not in history:
                continue  # long gone and nothing to draw
            else:
                # Gone: the sidebar shows the card dimmed with its timeline, no live state.
                infos.append(
                    ParticipantInfo(
                        participant_id=r.id,
                        display_name=r.display_name,
                        joined_at=r.joined_at,
                        left_at=r.left_at,
                        leave_reason=r.leave_reason,
                        parent_id=r.parent_id,
                        face_track=r.face_track,
                    )
                )
        return SnapshotEvent(
            meeting=MeetingRef(id=meeting.record.id, name=meeting.record.name),
            history_secs=history_secs,
            server_ts=now,
            participants=infos,
            history=history,
            talk=talk_event(meeting.talk.snapshot(now)) if meeting.talk is not None else None,
            notices=self.notices(),
        )

    @contextlib.asynccontextmanager
    async def subscribe(self, meeting_id: str) -> AsyncIterator[Subscription]:
        """Receive a meeting's events for the duration of the context."""
        meeting = await self.live(meeting_id)
        sub = Subscription(max_queued=self.settings.sidebar.max_queued_events)
        meeting.subscribers.add(sub)
        try:
            yield sub
        finally:
            meeting.subscribers.discard(sub)

    def stats(self) -> dict[str, Any]:
        """Pipeline figures per connected participant (no names)."""
        return {
            pid: p.session.stats()
            for meeting in self._live.values()
            for pid, p in meeting.participants.items()
        }
