"""What fusion remembers about a participant, and the inputs its formulas read.

:func:`remember` folds observations into a :class:`FusionMemory` (pure: a new memory
each time); :func:`inputs_at` turns a memory into the :class:`FusionInputs` that
the formulas of :mod:`bot.fusion.states` read at time ``now``.

Availability and quality, the basis of every confidence:

- **Video** is live when a face analysis (with or without a face) arrived within
  ``face_timeout_secs``; otherwise the camera is off or stalled and every
  face-based input is missing ("no video"). Before the first face analysis of a
  participant whose analysis waits for the face model (the server is starting), those
  inputs are missing because of that ("analysis starting"), not for want of video.
- **Presence** ``P`` is the share of recent time a face was visible: an exponential
  average of 1 (face) / 0 (no face) over analysed frames with time constant
  ``window_secs``, ``P <- P + (1 - exp(-dt / window)) * (x - P)``. It is the quality
  of every face-based input: a face that keeps leaving the frame gives less
  confident readings.
- **Expressions** (the face emotion model's probabilities) are used only from the
  latest frame, and only when it has a face. **Face behaviour** (action units, head
  movement) is read from the last frame that had a face, for at most
  ``absent_null_secs``; after that the face is gone and those inputs are missing.
- **Voice prosody** (arousal, z-scores) describes the last analysed stretch of the
  person's own speech; its quality falls linearly from 1 when the stretch ends to 0
  ``voice_fresh_secs`` later, then it is missing ("no recent speech").
  **Voice emotion** scores age the same way from the end of their piece.
- **Talk figures** come from the meeting's tracker about once a second.
- **Head movement**: the speed of the smoothed head angles between face frames,
  ``|d(pitch, yaw, roll)| / dt`` in deg/s, averaged like presence;
  ``stillness = exp(-speed / head_motion_ref_dps)``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bot.fusion.params import FusionParams
from bot.types import (
    AnalysisFailed,
    AnalysisStarting,
    Emotion,
    EmotionScores,
    FaceMetrics,
    FaceObservation,
    Observation,
    TalkFigures,
    TalkObservation,
    VoiceMetrics,
    VoiceObservation,
)

#: Why face inputs are missing while the face model loads (the server has just started).
FACE_STARTING_REASON = "analysis starting (models loading)"


def ema_alpha(dt: float, tau: float) -> float:
    """Weight of a new sample after ``dt`` seconds for time constant ``tau`` (0: no memory)."""
    if tau <= 0:
        return 1.0
    return 1.0 - math.exp(-max(0.0, dt) / tau)


@dataclass(frozen=True, slots=True)
class FusionMemory:
    """Everything fusion keeps between calls for one participant (immutable).

    Attributes:
        face_ts: Time of the last face analysis (with or without a face).
        face_seen_ts: Time the face was last visible.
        face: The last face observation.
        seen: The last face observation that had a face.
        presence: Exponential share of recent time with a face visible, 0-1.
        head: Head angles (pitch, yaw, roll) of the last face frame that had them, and its time.
        head_speed: Exponential average head speed, deg/s.
        voice: The last voice readings.
        spoke_ts: The last time the participant was speaking.
        talk: The last talk figures from the meeting.
        stale: The last analysis failed.
        face_starting: Face analysis waits for its model, and none has arrived yet.
        smoothed: Smoothed value and its time per reading name.
    """

    face_ts: float | None = None
    face_seen_ts: float | None = None
    face: FaceObservation | None = None
    seen: FaceObservation | None = None
    presence: float | None = None
    head: tuple[float, float, float, float] | None = None
    head_speed: float | None = None
    voice: VoiceMetrics | None = None
    spoke_ts: float | None = None
    talk: TalkFigures | None = None
    stale: bool = False
    face_starting: bool = False
    smoothed: Mapping[str, tuple[float, float]] = field(default_factory=dict)


def _head(metrics: FaceMetrics | None) -> tuple[float, float, float] | None:
    if metrics is None:
        return None
    angles = (metrics.head_pitch, metrics.head_yaw, metrics.head_roll)
    if any(a is None for a in angles):
        return None
    pitch, yaw, roll = angles
    assert pitch is not None and yaw is not None and roll is not None
    return pitch, yaw, roll


def _remember_face(m: FusionMemory, obs: FaceObservation, params: FusionParams) -> FusionMemory:
    x = 1.0 if obs.face_visible else 0.0
    if m.presence is None or m.face_ts is None:
        presence = x
    else:
        presence = m.presence + ema_alpha(obs.ts - m.face_ts, params.window_secs) * (x - m.presence)
    head, head_speed = m.head, m.head_speed
    angles = _head(obs.metrics) if obs.face_visible else None
    if angles is not None:
        if head is not None and obs.ts > head[3]:
            dt = obs.ts - head[3]
            speed = math.dist(angles, head[:3]) / dt
            a = ema_alpha(dt, params.window_secs)
            head_speed = speed if head_speed is None else head_speed + a * (speed - head_speed)
        head = (*angles, obs.ts)
    return dataclasses.replace(
        m,
        face_ts=obs.ts,
        face_seen_ts=obs.ts if obs.face_visible else m.face_seen_ts,
        face=obs,
        seen=obs if obs.face_visible else m.seen,
        presence=presence,
        head=head,
        head_speed=head_speed,
        stale=False,
        face_starting=False,
    )


def remember(
    memory: FusionMemory, observations: Iterable[Observation], params: FusionParams
) -> FusionMemory:
    """Fold observations into the memory, in the order given."""
    m = memory
    for obs in observations:
        if isinstance(obs, FaceObservation):
            m = _remember_face(m, obs, params)
        elif isinstance(obs, VoiceObservation):
            spoke = obs.ts if obs.voice.is_speaking else m.spoke_ts
            if m.voice is not None and m.voice.is_speaking and not obs.voice.is_speaking:
                spoke = obs.ts  # they spoke until now
            m = dataclasses.replace(m, voice=obs.voice, spoke_ts=spoke, stale=False)
        elif isinstance(obs, TalkObservation):
            m = dataclasses.replace(m, talk=obs.talk)
        elif isinstance(obs, AnalysisFailed):
            # A failed face analysis means the analysis has started (its model may be
            # unavailable): no longer "starting".
            starting = m.face_starting and obs.modality != "face"
            m = dataclasses.replace(m, stale=True, face_starting=starting)
        elif isinstance(obs, AnalysisStarting) and m.face_ts is None:
            m = dataclasses.replace(m, face_starting=True)
    return m


@dataclass(frozen=True, slots=True)
class FusionInputs:
    """The inputs of every formula at one time, with their availability and quality.

    ``None`` marks an input that is not available now; ``*_reason`` says why.

    Attributes:
        now: Meeting-clock seconds.
        video: Face analyses are arriving (the camera is on).
        face_now: The latest analysed frame had a face.
        presence: Share of recent time with a face (the quality of face inputs), 0-1.
        face_reason: Why face behaviour is missing (no video, face gone for long).
        expression: The face emotion model's scores of the latest frame (face visible).
        expression_reason: Why a visible face has no expression scores (``None``
            otherwise), e.g. an OpenFace import without an expression classifier.
        metrics: Landmark readings of the last frame with a face, while it counts.
        has_landmarks: The detector gives landmarks (MediaPipe, not Haar).
        aus: Calibrated AU intensities 0-5 of the last face frame, or ``None``
            (no landmarks, or the neutral face not calibrated yet).
        looking_away: Looking away in the latest frame (``None``: not known).
        stillness: ``exp(-head_speed / ref)``, 0-1; ``None`` without head angles.
        voice: The participant's own voice readings, or ``None`` (no audio analysed,
            or the audio is not theirs alone).
        voice_reason: Why there is no voice input.
        is_speaking: Speaking now (``False`` without audio).
        prosody_quality: Freshness of the last stretch of speech, 0-1 (0: none recent).
        arousal: Voice arousal of that stretch (-1..1) while fresh, else ``None``.
        prosody_z: Its z-scores while fresh (empty otherwise).
        voice_emotion: The speech-emotion scores while fresh, else ``None``.
        voice_emotion_quality: Their freshness, 0-1.
        voice_classes: The classes the speech-emotion model can express (empty before
            it has given any scores).
        talk: The meeting's talk figures for the participant.
        since_spoke_secs: Seconds since they last spoke (0 while speaking; ``None``: never).
    """

    now: float
    video: bool
    face_now: bool
    presence: float
    face_reason: str | None
    expression: EmotionScores | None
    expression_reason: str | None
    metrics: FaceMetrics | None
    has_landmarks: bool
    aus: Mapping[str, float] | None
    looking_away: bool | None
    stillness: float | None
    voice: VoiceMetrics | None
    voice_reason: str | None
    is_speaking: bool
    prosody_quality: float
    arousal: float | None
    prosody_z: Mapping[str, float]
    voice_emotion: EmotionScores | None
    voice_emotion_quality: float
    voice_classes: frozenset[Emotion]
    talk: TalkFigures | None
    since_spoke_secs: float | None


def _freshness(ts: float | None, now: float, fresh_secs: float) -> float:
    if ts is None:
        return 0.0
    return max(0.0, min(1.0, 1.0 - (now - ts) / fresh_secs))


def inputs_at(
    m: FusionMemory, now: float, params: FusionParams, *, voice_attributable: bool = True
) -> FusionInputs:
    """The formulas' inputs at ``now`` from what is remembered."""
    video = m.face_ts is not None and now - m.face_ts <= params.face_timeout_secs
    face_now = video and m.face is not None and m.face.face_visible
    seen = m.seen
    face_reason: str | None = None
    if not video:
        face_reason = (
            FACE_STARTING_REASON if m.face_starting else "no video (camera off or not sending)"
        )
        seen = None
    elif m.face_seen_ts is None or now - m.face_seen_ts > params.absent_null_secs:
        face_reason = "no face in view"
        seen = None
    elif not voice_attributable and not face_now:
        # A further face of a shared camera is observed through its face alone: out of
        # view, nothing shows how this person is doing (they may have left the picture).
        face_reason = "face out of view (one face of a shared camera)"
        seen = None
    metrics = seen.metrics if seen is not None else None
    aus = metrics.aus if metrics is not None and metrics.calibrated else None
    stillness = None
    if metrics is not None and m.head_speed is not None:
        stillness = math.exp(-m.head_speed / params.head_motion_ref_dps)

    voice = m.voice if voice_attributable else None
    voice_reason: str | None = None
    if not voice_attributable:
        voice_reason = "the voice in this feed is not this face's alone"
    elif voice is None:
        voice_reason = "no microphone audio analysed"
    prosody_quality = 0.0
    arousal = None
    z: Mapping[str, float] = {}
    voice_emotion = None
    emotion_quality = 0.0
    classes: frozenset[Emotion] = frozenset()
    since_spoke = None
    is_speaking = False
    if voice is not None:
        is_speaking = voice.is_speaking
        prosody_quality = _freshness(voice.segment_end_ts, now, params.voice_fresh_secs)
        if prosody_quality > 0 and voice.arousal is not None:
            arousal = voice.arousal
            z = voice.prosody_z
        if voice.emotion is not None:
            classes = frozenset(voice.emotion.probs)
            end = voice.emotion.ts
            emotion_quality = _freshness(end, now, params.voice_fresh_secs)
            if emotion_quality > 0 and voice.emotion_status == "ok":
                voice_emotion = voice.emotion
            else:
                emotion_quality = 0.0
        if is_speaking:
            since_spoke = 0.0
        elif m.spoke_ts is not None:
            since_spoke = max(0.0, now - m.spoke_ts)
    return FusionInputs(
        now=now,
        video=video,
        face_now=face_now,
        presence=m.presence if video and m.presence is not None else 0.0,
        face_reason=face_reason,
        expression=m.face.emotion if face_now and m.face is not None else None,
        expression_reason=m.face.expression_missing if face_now and m.face is not None else None,
        metrics=metrics,
        has_landmarks=metrics is not None,
        aus=aus,
        looking_away=m.face.metrics.looking_away
        if face_now and m.face is not None and m.face.metrics is not None
        else None,
        stillness=stillness,
        voice=voice,
        voice_reason=voice_reason,
        is_speaking=is_speaking,
        prosody_quality=prosody_quality,
        arousal=arousal,
        prosody_z=z,
        voice_emotion=voice_emotion,
        voice_emotion_quality=emotion_quality,
        voice_classes=classes,
        talk=m.talk if voice_attributable else None,
        since_spoke_secs=since_spoke,
    )
