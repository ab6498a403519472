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

A browser joins in two steps. Its offer is answered at once, within the ``[limits]``
(:mod:`bot.admission`), and it becomes a :class:`PendingParticipant`: a peer connection
and the id and leave token of the answer, nothing more. Only when the peer connects is it
a participant: its session (voice pipeline, face state) is built, the sidebars are told
and its row is written. A peer that never connects is closed and counted for the host
(:class:`~bot.types.JoinAttemptsEvent`), never shown or stored as a person.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any

from analyzers.face.track_state import preload as preload_face_tracking
from analyzers.voice.talk import TalkSnapshot, TalkTracker
from bot.admission import JoinAdmission, PendingSlot
from bot.bots import Bots
from bot.fusion import Fused, fuse
from bot.fusion.registry import definitions
from bot.fusion.room import RoomFusion
from bot.inference import AnalyzerPools, Inference
from bot.load import LoadGovernor
from bot.session import ParticipantSession
from bot.settings import Settings
from bot.sinks import Sink
from bot.sinks.live import LiveSink, Subscription
from bot.sinks.store import StoreSink
from bot.sinks.summaries import SummarySink
from bot.sources import MediaSource
from bot.sources.browser import (
    BrowserSource,
    restrict_host_addresses,
    set_udp_receive_buffer,
)
from bot.sources.jitter import use_marker_jitter_buffer
from bot.store import (
    ExpiredMeeting,
    MeetingRecord,
    ParticipantRecord,
    Store,
    new_id,
    tokens_equal,
)
from bot.summaries.redact import WITHDRAWN
from bot.types import (
    FaceObservation,
    JoinAttemptsEvent,
    LeaveReason,
    ListeningObservation,
    LoadEvent,
    MeetingEndedEvent,
    MeetingEvent,
    MeetingRef,
    ModelsEvent,
    MomentEvent,
    NoticeEvent,
    Observation,
    ParticipantInfo,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    ParticipantStateEvent,
    ParticipantWithdrawnEvent,
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


class MeetingEnded(RuntimeError):
    """The meeting has ended: no one can join it any more."""


class ParticipantNotFound(LookupError):
    """The meeting has no participant (connected or stored) with this id."""


class StoreUnavailable(RuntimeError):
    """The database does not take writes now, so no one can join (try again later)."""


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


@dataclass(eq=False)
class PendingParticipant:
    """A browser answered but not connected yet: no session, no card, no row.

    Attributes:
        participant_id: The id they will have once connected (in the join answer).
        token: Their leave token (in the join answer).
        display_name: Their name.
        source: Their peer.
        slot: Their place under the unconnected-peer limits.
        on_join: Called once they are a participant (the manager stores their token).
    """

    participant_id: str
    token: str
    display_name: str
    source: BrowserSource
    slot: PendingSlot
    on_join: Callable[[LiveParticipant], None] | None = None
    watcher: asyncio.Task[None] | None = None


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
        load: The server's face-rate governor (live feeds only; ``None``: no cap).
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
        load: LoadGovernor | None = None,
    ) -> None:
        self.record = record
        self.load = load
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
        #: Browsers answered but not connected yet, by their future participant id.
        self.pending: dict[str, PendingParticipant] = {}
        #: Joins past the limits check whose answer is still being made: they count
        #: towards the meeting's size, or simultaneous joins would all see the same count.
        self.joining = 0
        #: Join attempts that never connected (loaded from the store by the manager).
        self.unconnected_joins = 0
        #: Set when the meeting starts closing: no one joins any more.
        self.closing = False
        #: Set once closed: nothing is published any more (a late tick of an import, or
        #: a summary, must not write rows for a meeting that is being deleted).
        self.closed = False

    # -- publishing --------------------------------------------------------------

    def publish(self, event: MeetingEvent) -> None:
        """Send an event to every sink, once (nothing once the meeting is closed)."""
        if self.closed:
            return
        for sink in self.sinks:
            sink.handle(event)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- participants ------------------------------------------------------------

    def join(
        self,
        display_name: str,
        source: MediaSource,
        *,
        participant_id: str | None = None,
        token: str | None = None,
    ) -> LiveParticipant:
        """A participant joins with their media source; their analysis starts now.

        ``participant_id`` and ``token``: those a browser was given when it was answered
        (:meth:`admit`); new ones otherwise.

        Raises:
            MeetingEnded: the meeting has ended or is closing (the source is not started).
        """
        if self.closing or self.record.ended_at is not None:
            raise MeetingEnded(self.record.id)
        settings = self.settings
        record = ParticipantRecord.new(self.record.id, display_name, source.kind, self.clock())
        if participant_id is not None:
            record = replace(record, id=participant_id)
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
            load=self.load,
        )
        participant = LiveParticipant(record, token or secrets.token_urlsafe(18), session, source)
        self.participants[record.id] = participant
        self.publish(ParticipantJoinedEvent(participant=self.info(record)))
        log.info("participant joined", extra={"meeting": self.record.id, "participant": record.id})
        if self._ticker is None and self.ticking:
            self._ticker = self._spawn(self._tick_loop(), f"meeting.tick.{self.record.id}")
        source.start(record.id, session.add_track, self.observe)
        if self.load is not None:
            self.load.sender_joined(record.id)
            if isinstance(source, BrowserSource):
                source.request(self.load.request)
        participant.watcher = self._spawn(self._watch(participant), f"source.watch.{record.id}")
        return participant

    def admit(
        self,
        display_name: str,
        source: BrowserSource,
        slot: PendingSlot,
        on_join: Callable[[LiveParticipant], None] | None = None,
    ) -> PendingParticipant:
        """A browser was answered: it joins once its peer connects (see the module docstring).

        Raises:
            MeetingEnded: the meeting has ended or is closing.
        """
        if self.closing or self.record.ended_at is not None:
            raise MeetingEnded(self.record.id)
        pid = new_id()
        pending = PendingParticipant(
            pid, secrets.token_urlsafe(18), display_name, source, slot, on_join
        )
        self.pending[pid] = pending
        pending.watcher = self._spawn(self._connect(pending), f"source.connect.{pid}")
        return pending

    async def _connect(self, pending: PendingParticipant) -> None:
        """Make the pending browser a participant when its peer connects; else drop it."""
        connected = await pending.source.wait_connected()
        pending.watcher = None  # from here on, dropping it must not cancel this task
        pid = pending.participant_id
        if not connected or self.pending.get(pid) is not pending:
            await self.drop_pending(pending)
            return
        del self.pending[pid]
        pending.slot.release()
        try:
            participant = self.join(
                pending.display_name, pending.source, participant_id=pid, token=pending.token
            )
        except MeetingEnded:
            await pending.source.close()  # ended while the peer was connecting
            return
        if pending.on_join is not None:
            pending.on_join(participant)

    async def drop_pending(self, pending: PendingParticipant, *, counted: bool = True) -> None:
        """Close a browser's peer that has not connected (idempotent).

        ``counted``: the host's count of join attempts that never connected goes up.
        """
        if self.pending.pop(pending.participant_id, None) is None:
            return
        pending.slot.release()
        if pending.watcher is not None:
            pending.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending.watcher
        await pending.source.close()
        if counted:
            self.unconnected_joins += 1
            self.publish(JoinAttemptsEvent(unconnected=self.unconnected_joins))
        log.info("join attempt did not connect", extra={"meeting": self.record.id})

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

    async def end(
        self, participant: LiveParticipant, reason: LeaveReason, *, withdrawn: bool = False
    ) -> None:
        """Stop a participant's analysis, close their source and record that they left.

        ``withdrawn``: they also withdrew, so the summaries leave them out from now on
        (the meeting-end summary this may start included).
        """
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
        if self.load is not None:
            self.load.sender_left(pid)
        if self.talk is not None:
            self.talk.left(pid, ts)
        for sub_id in participant.faces.values():
            self._forget(sub_id)
            self.faces.pop(sub_id, None)
            self.publish(ParticipantLeftEvent(participant_id=sub_id, ts=ts, reason="left"))
        self._forget(pid)
        self.publish(ParticipantLeftEvent(participant_id=pid, ts=ts, reason=reason))
        if withdrawn:
            self.forget_withdrawn([pid, *participant.faces.values()])
        if not self.participants:
            self.summaries.meeting_ended(ts)
        log.info(
            "participant left",
            extra={"meeting": self.record.id, "participant": pid, "reason": reason},
        )

    def forget_withdrawn(self, ids: list[str]) -> None:
        """Participants who withdrew: forgotten by fusion and the summaries (they have left)."""
        for pid in ids:
            self._forget(pid)
            self.summaries.forget(pid, WITHDRAWN)

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

    async def close(
        self, reason: LeaveReason = "server_shutdown", final: MeetingEvent | None = None
    ) -> None:
        """End every participant, stop the meeting's tasks and let the sinks finish.

        ``final`` is published last, after the meeting-end summary (the host ended the
        meeting: the sidebars are told so).
        """
        self.closing = True
        for pending in list(self.pending.values()):
            await self.drop_pending(pending, counted=False)  # not their failure to connect
        for p in list(self.participants.values()):
            await self.end(p, reason)
        await self.summaries.wait()  # the meeting-end summary reaches the store
        if final is not None:
            self.publish(final)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._ticker = None
        self.closed = True
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
            settings.storage.database_path,
            settings.storage.flush_interval_secs,
            max_queued_writes=settings.storage.max_queued_writes,
            write_attempts=settings.storage.write_attempts,
        )
        enabled = settings.analyzers.enabled
        self.pool: Inference = pool or AnalyzerPools(
            {name: settings.analyzers.params(name).model_dump() for name in enabled},
            workers=settings.inference.workers,
            mode=settings.inference.mode,
            restart_after_timeouts=settings.inference.restart_after_timeouts,
        )
        self._live: dict[str, LiveMeeting] = {}
        #: Set once the models are loaded (or known unavailable); see :meth:`start`.
        self.models_ready = asyncio.Event()
        self._models_task: asyncio.Task[None] | None = None
        #: The join limits: attempts per address, unconnected peers (see ``[limits]``).
        self.admission = JoinAdmission(settings.limits)
        #: Bots the hosts sent into meetings elsewhere (Janus rooms, WHEP streams).
        self.bots = Bots(self)
        #: One face rate for every live feed, lowered evenly when the server is busy.
        self.load = LoadGovernor(
            settings.analyzers.face_emotion.fps,
            settings.pipeline.latency_budget_ms,
            settings.pipeline.min_face_fps,
            video_budget_kbps=settings.webrtc.video_budget_kbps,
        )
        #: The last load report (sent to sidebars once a second).
        self.last_load: LoadEvent | None = None
        #: Report the load once a second (off only for benchmarks of the sidebar alone).
        self.report_load = True
        self._load_reporter: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Open the store and start loading the models. Blocking work runs off the loop.

        The models load in the background (:attr:`models_ready` is set when they are), so
        that the server answers at once; participants who join meanwhile are analysed as
        soon as their analyzer is loaded (see :class:`~bot.session.ParticipantSession`).
        """
        if self.settings.webrtc.ice_addresses:
            restrict_host_addresses(self.settings.webrtc.ice_addresses)
        set_udp_receive_buffer(self.settings.webrtc.udp_receive_buffer_kb * 1024)
        use_marker_jitter_buffer()
        await self.store.open()
        closed = await self.store.close_dangling_participants()
        if closed:
            log.info("closed participants left open by an earlier run", extra={"count": closed})
        self._models_task = asyncio.create_task(self._load_models(), name="models.load")
        if self.report_load:
            self._load_reporter = asyncio.create_task(self._report_load(), name="load")

    async def _report_load(self) -> None:
        """Once a second: adjust the face rate and tell every live meeting's sidebars."""
        while True:
            await asyncio.sleep(1.0)
            runs = sum(
                p.session.stats().voice_emotion_runs
                for meeting in self._live.values()
                for p in meeting.participants.values()
            )
            resources = await asyncio.to_thread(self.load.resources)
            report = self.load.control(runs, resources)
            self.last_load = report
            for meeting in self._live.values():
                if meeting.ticking and not meeting.closed:
                    meeting.live.handle(report)
                # Browsers are asked for no more video than the analysis can take now.
                for p in meeting.participants.values():
                    if isinstance(p.source, BrowserSource):
                        p.source.request(self.load.request)

    async def close(self) -> None:
        """End every participant (sources closed, tasks cancelled), then stop and flush."""
        if self._load_reporter is not None:
            self._load_reporter.cancel()
            await asyncio.gather(self._load_reporter, return_exceptions=True)
        await self.bots.close()
        for meeting in list(self._live.values()):
            await meeting.close("server_shutdown")
        if self._models_task is not None:
            self._models_task.cancel()
            await asyncio.gather(self._models_task, return_exceptions=True)
        await self.pool.close()
        await self.store.close()

    async def _load_models(self) -> None:
        """Load the models while the server answers; then tell every live meeting's sidebars."""
        started = time.perf_counter()
        preloading: asyncio.Task[None] | None = None
        if "face_emotion" in self.pool.specs:
            # Face tracking's own imports, on a thread: the first frame need not wait for them.
            preloading = asyncio.create_task(asyncio.to_thread(preload_face_tracking))
        try:
            await self.pool.load()
            self.models_ready.set()
            log.info(
                "models ready",
                extra={
                    "secs": round(time.perf_counter() - started, 2),
                    "unavailable": sorted(self.pool.unavailable),
                },
            )
            # Notices first: once a sidebar hears "ready", it knows all there is to know.
            notices, ready = self.notices(), self.models()
            for meeting in list(self._live.values()):
                for notice in notices:  # sidebars that connect later get them in the snapshot
                    meeting.publish(notice)
                meeting.publish(ready)
        finally:
            if preloading is not None:
                await preloading  # an import cannot be stopped; it ends within a second

    async def models_loaded(self) -> None:
        """Wait until the models are loaded or known unavailable (after :meth:`start`)."""
        await self.models_ready.wait()

    def models(self) -> ModelsEvent:
        """Whether the models are loaded, with each enabled analyzer's status."""
        return ModelsEvent(
            state="ready" if self.models_ready.is_set() else "starting",
            analyzers={name: self.pool.status(name) for name in sorted(self.pool.specs)},
        )

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
            unconnected = await self.store.unconnected_joins(meeting_id)
            meeting = self._live.get(meeting_id)
            if meeting is None:
                meeting = LiveMeeting(record, self.settings, self.store, self.pool, load=self.load)
                meeting.unconnected_joins = unconnected
                self._live[meeting_id] = meeting
        return meeting

    async def close_meeting(self, meeting_id: str) -> None:
        """End a running meeting's participants, let its sinks finish, and forget it."""
        await self.bots.close_meeting(meeting_id)
        meeting = self._live.pop(meeting_id, None)
        if meeting is not None:
            await meeting.close("left")

    async def end_meeting(self, meeting_id: str, *, deleted: bool = False) -> MeetingRecord:
        """The host ends a meeting: no one can join it any more, everyone is disconnected.

        Its analysis and summaries stop (the meeting-end summary is written) and the
        sidebars are told (``deleted``: because it is being deleted). Ending an ended
        meeting changes nothing. Returns the meeting as stored, ``ended_at`` set.

        Raises:
            MeetingNotFound: unknown id.
        """
        # Stored first: from now on a join is refused, even one that finds no live meeting.
        record = await self.store.end_meeting(meeting_id, time.time())
        if record is None:
            raise MeetingNotFound(meeting_id)
        await self.bots.close_meeting(meeting_id)
        meeting = self._live.pop(meeting_id, None)
        if meeting is not None:
            final = MeetingEndedEvent(ts=meeting.clock(), deleted=deleted)
            await meeting.close("meeting_ended", final)
        return record

    async def delete_meeting(self, meeting_id: str) -> bool:
        """End the meeting, then delete it and every row stored with it.

        Returns False when there was no such meeting.
        """
        try:
            await self.end_meeting(meeting_id, deleted=True)
        except MeetingNotFound:
            return False
        deleted = await self.store.delete_meeting(meeting_id)
        # A sidebar may have reopened it while the rows were deleted; it has no one to show.
        stale = self._live.pop(meeting_id, None)
        if stale is not None:
            await stale.close("meeting_ended", MeetingEndedEvent(ts=stale.clock(), deleted=True))
        log.info("meeting deleted", extra={"meeting": meeting_id})
        return deleted

    async def purge_expired(self, cutoff: float) -> list[ExpiredMeeting]:
        """Delete every meeting whose last activity is before ``cutoff``; returns them.

        A meeting with someone connected is kept (its activity is now).
        """
        purged = []
        for expired in await self.store.expired_meetings(cutoff):
            live = self._live.get(expired.record.id)
            if live is not None and live.participants:
                continue
            if await self.delete_meeting(expired.record.id):
                purged.append(expired)
        return purged

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
        self,
        meeting_id: str,
        display_name: str,
        sdp: str,
        kind: str,
        address: str | None = None,
    ) -> tuple[PendingParticipant, str]:
        """Answer a browser's offer; returns them, pending until connected, and the answer SDP.

        ``address`` is the client's (for the per-address limits). On any error nothing
        is stored and no peer is left open.

        Raises:
            MeetingNotFound: unknown meeting.
            MeetingEnded: the meeting has ended.
            JoinRefused: a limit of ``[limits]`` (see :mod:`bot.admission`).
            StoreUnavailable: the database does not take writes now.
            OfferError: the offer is unusable.
        """
        meeting = await self.live(meeting_id)
        if meeting.closing or meeting.record.ended_at is not None:
            raise MeetingEnded(meeting_id)
        peers = len(meeting.participants) + len(meeting.pending) + meeting.joining
        slot = self.admission.reserve(address, peers)
        source: BrowserSource | None = None
        meeting.joining += 1
        try:
            # Someone whose analysis cannot be recorded is not connected: checked before
            # a peer exists, so that a failing database leaves nothing open.
            if not await self.store.is_writable():
                raise StoreUnavailable(meeting_id)
            source, answer = await BrowserSource.accept(
                sdp, kind, self.settings.webrtc, self.settings.limits
            )
            pending = meeting.admit(display_name, source, slot, self._store_token)
        except BaseException:
            slot.release()
            if source is not None:
                await source.close()
            raise
        finally:
            meeting.joining -= 1
        return pending, answer

    def _store_token(self, participant: LiveParticipant) -> None:
        self.store.add_participant_token(
            participant.record.meeting_id, participant.record.id, participant.token
        )

    async def leave(self, meeting_id: str, participant_id: str, token: str | None) -> bool:
        """A participant leaves by their own request. False if the token is wrong."""
        meeting = await self.live(meeting_id)
        participant = meeting.participants.get(participant_id)
        if participant is None:
            pending = meeting.pending.get(participant_id)
            if pending is not None:
                if not tokens_equal(token, pending.token):
                    return False
                await meeting.drop_pending(pending)
            # Already gone (e.g. the peer closed first): leaving again is harmless.
            return True
        if not tokens_equal(token, participant.token):
            return False
        await meeting.end(participant, "left")
        return True

    async def withdraw(self, meeting_id: str, participant_id: str, token: str | None) -> bool:
        """A participant withdraws: they leave, and everything stored about them is deleted.

        Works while they are connected and after they left (their token is stored hashed).
        The sidebars get a :class:`~bot.types.ParticipantWithdrawnEvent`. False if the
        token is wrong.

        Raises:
            ParticipantNotFound: no such participant in this meeting.
        """
        meeting = self._live.get(meeting_id)
        pending = meeting.pending.get(participant_id) if meeting is not None else None
        if meeting is not None and pending is not None:
            # Not connected yet: nothing was stored about them; their peer must not connect.
            if not tokens_equal(token, pending.token):
                return False
            await meeting.drop_pending(pending)
            return True
        live = meeting.participants.get(participant_id) if meeting is not None else None
        if live is not None:
            if not tokens_equal(token, live.token):
                return False
        else:
            matches = await self.store.participant_token_matches(meeting_id, participant_id, token)
            if matches is None:
                raise ParticipantNotFound(participant_id)
            if not matches:
                return False
        if meeting is not None:
            if live is not None:
                await meeting.end(live, "left", withdrawn=True)
            else:
                people = await self.store.list_participants(meeting_id)
                faces = [p.id for p in people if p.parent_id == participant_id]
                meeting.forget_withdrawn([participant_id, *faces])
            await meeting.summaries.wait()  # a summary being written is redacted below
        ids = await self.store.delete_participant(meeting_id, participant_id)
        if meeting is not None:
            summaries = await self.store.summaries(
                meeting_id, limit=self.settings.summaries.sidebar_count
            )
            meeting.publish(
                ParticipantWithdrawnEvent(
                    participant_ids=ids or [participant_id],
                    ts=meeting.clock(),
                    summaries=summaries,
                )
            )
        log.info(
            "participant withdrew", extra={"meeting": meeting_id, "participant": participant_id}
        )
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
            meeting=MeetingRef(
                id=meeting.record.id, name=meeting.record.name, ended_at=meeting.record.ended_at
            ),
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
            models=self.models(),
            summaries=await self.store.summaries(
                meeting_id, limit=self.settings.summaries.sidebar_count
            ),
            summarizer=meeting.summaries.info,
            bots=self.bots.list(meeting_id),
            unconnected_joins=meeting.unconnected_joins,
            load=self.last_load,
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
