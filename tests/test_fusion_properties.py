"""Properties of fusion over random observation sequences (hypothesis).

Every reading stays in its registry range with a confidence in [0, 1]; a null reading
always says why; the same inputs give the same states; and taking a modality away
(the microphone, the camera) never raises any reading's confidence.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.fusion import Fused, FusionParams, fuse
from bot.fusion.registry import BY_NAME
from bot.types import (
    AnalysisFailed,
    EmotionScores,
    FaceMetrics,
    FaceObservation,
    Observation,
    ParticipantState,
    TalkFigures,
    TalkObservation,
    VoiceMetrics,
    VoiceObservation,
)

pytestmark = pytest.mark.unit

AUS = ("AU01", "AU02", "AU04", "AU06", "AU12", "AU15", "AU25", "AU26")
FACE_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
VOICE_CLASSES = ("neutral", "happy", "angry", "sad")
unit = st.floats(0.0, 1.0)
angle = st.floats(-45.0, 45.0)


def probs(classes: tuple[str, ...]) -> st.SearchStrategy[dict[str, float]]:
    weights = st.lists(unit, min_size=len(classes), max_size=len(classes))
    return weights.filter(lambda w: sum(w) > 0.01).map(lambda w: dict(zip(classes, w, strict=True)))


@st.composite
def face_obs(draw: st.DrawFn, ts: float) -> FaceObservation:
    if not draw(st.booleans()):
        return FaceObservation("p", 1, ts, None)
    scores = EmotionScores.of("p", ts, "face", draw(probs(FACE_CLASSES)))
    calibrated = draw(st.booleans())
    aus = {au: draw(st.floats(0.0, 5.0)) for au in AUS} if calibrated else None
    relative = {k: draw(st.floats(-1.0, 1.0)) for k in FACE_CLASSES} if calibrated else None
    angles = draw(st.one_of(st.none(), st.tuples(angle, angle, angle)))
    pitch, yaw, roll = angles or (None, None, None)
    metrics = FaceMetrics(
        track_id=1,
        calibrated=calibrated,
        blinks=0,
        blink_rate_per_min=None,
        ear=0.3,
        smile=None if aus is None else aus["AU12"],
        is_smiling=None if aus is None else aus["AU12"] > 1,
        head_pitch=pitch,
        head_yaw=yaw,
        head_roll=roll,
        gaze_yaw=None,
        gaze_pitch=None,
        looking_away=draw(st.one_of(st.none(), st.booleans())) if calibrated else None,
        aus=aus,
        au_labels=(),
        window=None,
        emotion_relative=relative,
    )
    landmarks = draw(st.booleans())
    return FaceObservation("p", 1, ts, scores, metrics if landmarks else None)


@st.composite
def voice_obs(draw: st.DrawFn, ts: float) -> VoiceObservation:
    segment = draw(st.booleans())
    warm = segment and draw(st.booleans())
    emotion = None
    if segment and draw(st.booleans()):
        emotion = EmotionScores.of("p", ts, "voice", draw(probs(VOICE_CLASSES)))
    z = {k: draw(st.floats(-3.0, 3.0)) for k in ("loudness", "pitch", "range", "rate")}
    voice = VoiceMetrics(
        is_speaking=draw(st.booleans()),
        talk_secs=draw(st.floats(0.0, 100.0)),
        arousal=draw(st.floats(-1.0, 1.0)) if warm else None,
        pitch_hz=None,
        loudness_dbfs=None,
        emotion=emotion,
        emotion_status="ok"
        if emotion is not None
        else draw(st.sampled_from(["waiting", "unavailable"])),
        segment_end_ts=ts - draw(st.floats(0.0, 20.0)) if segment else None,
        prosody_z=z if warm else {},
        pause_ratio=None,
    )
    return VoiceObservation("p", ts, voice)


@st.composite
def talk_obs(draw: st.DrawFn, ts: float) -> TalkObservation:
    present = draw(st.integers(1, 49))
    meeting_turns = draw(st.integers(0, 50))
    figures = TalkFigures(
        talk_secs=draw(st.floats(0.0, 100.0)),
        talk_share=draw(st.one_of(st.none(), unit)),
        turns=draw(st.integers(0, meeting_turns)),
        interruptions=0,
        overlap_secs=0.0,
        present=present,
        meeting_speech_secs=draw(st.floats(0.0, 600.0)),
        meeting_turns=meeting_turns,
    )
    return TalkObservation("p", ts, figures)


@st.composite
def scenarios(draw: st.DrawFn, failures: bool = True) -> list[Observation]:
    ts = 1000.0
    out: list[Observation] = []
    kinds = ["face", "face", "voice", "talk", *(["fail"] if failures else [])]
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=40)):
        ts += draw(st.floats(0.01, 6.0))
        if kind == "face":
            out.append(draw(face_obs(ts)))
        elif kind == "voice":
            out.append(draw(voice_obs(ts)))
        elif kind == "talk":
            out.append(draw(talk_obs(ts)))
        else:
            out.append(AnalysisFailed("p", ts, "face"))
    return out


def run(observations: list[Observation], end: float, **kw: Any) -> ParticipantState:
    params = FusionParams()
    fused: Fused | None = None
    for obs in observations:
        fused = fuse(fused, "p", [obs], obs.ts, params, **kw)
    fused = fuse(fused, "p", [], end, params, **kw)
    return fused.state


def check_ranges(state: ParticipantState) -> None:
    for name, r in state.readings.items():
        d = BY_NAME[name]
        assert 0.0 <= r.confidence <= 1.0, name
        if r.value is None:
            assert r.reason, f"{name} is null without a reason"
            assert r.confidence == 0.0, name
        else:
            assert d.low - 1e-9 <= r.value <= d.high + 1e-9, (name, r.value)
            if d.alias_of is None:  # sources are inputs the registry names
                assert set(r.sources) <= set(d.inputs), (name, r.sources)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(scenarios())
def test_every_reading_stays_in_range_and_says_why_it_is_null(obs: list[Observation]) -> None:
    fused: Fused | None = None
    for o in obs:
        fused = fuse(fused, "p", [o], o.ts, FusionParams())
        check_ranges(fused.state)
        assert set(fused.state.readings) == set(BY_NAME)


@SETTINGS
@given(scenarios())
def test_same_inputs_same_states(obs: list[Observation]) -> None:
    end = obs[-1].ts + 1.0
    assert run(obs, end) == run(obs, end)


def _no_higher(without: ParticipantState, full: ParticipantState) -> None:
    for name, r in without.readings.items():
        other = full.readings[name]
        if r.value is not None and other.value is not None:
            assert r.confidence <= other.confidence + 1e-9, (name, r, other)


@SETTINGS
@given(scenarios(failures=False))
def test_losing_a_modality_never_raises_confidence(obs: list[Observation]) -> None:
    end = obs[-1].ts + 0.5
    full = run(obs, end)
    muted = [o for o in obs if not isinstance(o, (VoiceObservation, TalkObservation))]
    camera_off = [o for o in obs if not isinstance(o, FaceObservation)]
    _no_higher(run(muted, end), full)
    _no_higher(run(camera_off, end), full)
