"""Fusion formulas against hand-computed values, and the honesty rules of fuse()."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pytest

from bot.fusion import Fused, FusionParams, fuse
from bot.fusion.registry import BY_NAME, GROUPS, REGISTRY, band
from bot.types import (
    AnalysisFailed,
    Emotion,
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

RAW = FusionParams(smoothing_secs=0.0)  # no smoothing: readings are the formulas' raw values


def face_metrics(**changes: Any) -> FaceMetrics:
    fields: dict[str, Any] = {
        "track_id": 1,
        "calibrated": True,
        "blinks": 0,
        "blink_rate_per_min": None,
        "ear": 0.3,
        "smile": 0.0,
        "is_smiling": False,
        "head_pitch": 0.0,
        "head_yaw": 0.0,
        "head_roll": 0.0,
        "gaze_yaw": 0.0,
        "gaze_pitch": 0.0,
        "looking_away": False,
        "aus": {au: 0.0 for au in ("AU01", "AU02", "AU04", "AU06", "AU12", "AU15", "AU25", "AU26")},
        "au_labels": (),
        "window": None,
        "emotion_relative": None,
    }
    fields.update(changes)
    return FaceMetrics(**fields)


def face(ts: float, probs: dict[str, float] | None = None, **metrics: Any) -> FaceObservation:
    """A face frame (``probs=None`` and no metrics -> a neutral face)."""
    scores = EmotionScores.of("p", ts, "face", probs or {"neutral": 1.0})
    return FaceObservation("p", 1, ts, scores, face_metrics(**metrics))


def no_face(ts: float) -> FaceObservation:
    return FaceObservation("p", 1, ts, None)


def voice(ts: float, **changes: Any) -> VoiceObservation:
    fields: dict[str, Any] = {
        "is_speaking": False,
        "talk_secs": 10.0,
        "arousal": None,
        "pitch_hz": None,
        "loudness_dbfs": None,
        "emotion": None,
        "emotion_status": "unavailable",
        "segment_end_ts": None,
        "prosody_z": {},
        "pause_ratio": None,
    }
    fields.update(changes)
    return VoiceObservation("p", ts, VoiceMetrics(**fields))


def run(
    observations: Iterable[Observation], params: FusionParams = RAW, **kw: Any
) -> ParticipantState:
    fused: Fused | None = None
    for obs in observations:
        fused = fuse(fused, "p", [obs], obs.ts, params, **kw)
    assert fused is not None
    return fused.state


def frames(start: float, end: float, fps: float, **kw: Any) -> list[FaceObservation]:
    n = round((end - start) * fps)
    return [face(start + k / fps, **kw) for k in range(n + 1)]


# -- the registry ----------------------------------------------------------------------


def test_registry_has_the_seeds_28_states_and_engagement() -> None:
    groups = {g: [d.name for d in REGISTRY if d.group == g] for g in GROUPS}
    assert len(groups["basic"]) == 7
    assert groups["vocal"] == [
        "calm", "excited", "frustrated", "engaged", "confused", "anxious", "confident",
        "interested", "bored", "curious", "stressed",
    ]  # fmt: skip
    assert groups["composite"] == [
        "receptiveness", "awareness", "trust", "anticipation", "relaxed", "skeptical",
        "distracted", "enthusiastic", "contemplative", "alert",
    ]  # fmt: skip
    assert groups["engagement"] == ["attention", "expressiveness", "participation", "engagement"]
    assert groups["affect"] == ["valence", "arousal"]
    for d in REGISTRY:
        assert d.definition and d.formula and d.label and d.low < d.high
        if d.alias_of is not None:  # aliases read an entry computed before them
            assert [x.name for x in REGISTRY].index(d.alias_of) < REGISTRY.index(d)


def test_states_without_evidence_are_null_with_a_reason() -> None:
    state = run(frames(0, 5, 10))
    for name in ("bored", "curious", "receptiveness", "awareness", "trust", "anticipation",
                 "skeptical", "alert"):  # fmt: skip
        r = state.readings[name]
        assert r.value is None and r.confidence == 0 and r.reason, name
        assert BY_NAME[name].support == "none"


def test_a_neutral_silent_face_is_never_calm_bored_or_skeptical() -> None:
    state = run(frames(0, 5, 10))
    assert state.value("neutral") == pytest.approx(1.0)
    for name in ("calm", "relaxed", "bored", "skeptical", "confident"):
        assert state.value(name) is None, name
    assert "microphone" in (state.readings["calm"].reason or "")


# -- engagement --------------------------------------------------------------------------


def test_attention_is_a_time_share_whatever_the_frame_rate() -> None:
    # Looking at the screen for 4 s, then away for 8 s (= window_secs): the exponential
    # share of attention is exp(-1), at 5 or at 30 frames a second (a frame stands for the
    # time since the previous one).
    params = FusionParams()
    for fps in (5, 30):
        obs = frames(0, 4, fps) + frames(4 + 1 / fps, 12, fps, looking_away=True)
        state = run(obs, params)
        assert state.value("attention") == pytest.approx(math.exp(-1), abs=1e-9)


def test_attention_no_face_decays_then_reads_no_face() -> None:
    obs: list[Observation] = [*frames(0, 4, 10), *(no_face(4 + k / 10) for k in range(1, 80))]
    soon = run(obs[:45])  # 0.4 s without a face
    assert soon.face_visible is False and soon.emotion is None and soon.face is None
    # Attention is a share of time (window_secs = 8): exp(-0.4 / 8) of it remains, and the
    # presence share, the confidence, falls the same way.
    assert soon.value("attention") == pytest.approx(math.exp(-0.4 / 8))
    assert soon.readings["attention"].confidence == pytest.approx(math.exp(-0.4 / 8))
    later = run(obs)  # 7.9 s without a face
    assert later.value("attention") == pytest.approx(math.exp(-7.9 / 8))
    gone = run([*obs, *(no_face(12 + k / 10) for k in range(30))])  # > 10 s
    assert (
        gone.value("attention") is None and gone.readings["attention"].reason == "no face in view"
    )
    assert gone.value("happy") is None  # no face: no expression, not neutral


def test_camera_off_means_no_video() -> None:
    state = run([*frames(0, 2, 10), voice(6.0)])
    assert state.readings["attention"].reason == "no video (camera off or not sending)"
    assert state.value("expressiveness") is None and state.face_visible is False


def test_attention_waits_for_the_usual_gaze() -> None:
    state = run(frames(0, 1, 10, calibrated=False, aus=None, looking_away=None))
    assert state.value("attention") is None
    assert state.readings["attention"].reason == "calibrating the person's usual gaze"
    assert "neutral face" in (state.readings["expressiveness"].reason or "")


def test_expressiveness_hand_computed() -> None:
    aus = {"AU01": 0.0, "AU06": 1.5, "AU12": 3.0, "AU25": 2.0}
    rel = {"happy": 0.3, "neutral": -0.3}
    # Silent: AU activity = min(1, (1.5 + 3 + 2) / 5) = 1; change = (0.3 + 0.3) / 2 = 0.3.
    silent = run(frames(0, 1, 10, aus=aus, emotion_relative=rel))
    assert silent.value("expressiveness") == pytest.approx((1.0 + 0.3) / 2)
    # Speaking: the mouth AU25 is left out: activity = 4.5 / 5.
    speaking = run([voice(0.0, is_speaking=True), *frames(0, 1, 10, aus=aus, emotion_relative=rel)])
    assert speaking.value("expressiveness") == pytest.approx((0.9 + 0.3) / 2)


def talk(ts: float, share: float = 0.25, turns: int = 1, speech: float = 30.0) -> TalkObservation:
    return TalkObservation("p", ts, TalkFigures(7.5, share, turns, 0, 0.0, 2, speech, 4))


def test_participation_hand_computed() -> None:
    # Spoke until t=0, 60 s ago; a quarter of the talk with 2 present (fair share 1/2), one
    # of 4 turns: ((0.25 x 2) + (1 x 2 / 4) + exp(-60 / 120)) / 3; 30 s of meeting speech.
    obs = [voice(-1.0, is_speaking=True), voice(0.0), talk(60.0)]
    r = run(obs).readings["participation"]
    assert r.value == pytest.approx((0.5 + 0.5 + math.exp(-0.5)) / 3)
    assert r.confidence == pytest.approx(30 / 60)


def test_engagement_weights_components_and_says_what_is_missing() -> None:
    aus = {"AU06": 1.5, "AU12": 3.0}
    rel = {"happy": 0.3, "neutral": -0.3}
    looking = frames(0, 2, 10, aus=aus, emotion_relative=rel)
    with_talk = run([voice(-1.0, is_speaking=True), voice(0.0), *looking, talk(2.0)])
    part = with_talk.readings["participation"]
    assert part.value is not None
    expr = (0.9 + 0.3) / 2
    expected = 0.6 * 1.0 + 0.2 * expr + 0.2 * part.value
    r = with_talk.readings["engagement"]
    assert r.value == pytest.approx(expected)
    assert r.confidence == pytest.approx(0.6 + 0.2 + 0.2 * part.confidence)
    # Without a microphone: the weights of what is there, and a lower confidence.
    alone = run(looking).readings["engagement"]
    assert alone.value == pytest.approx((0.6 + 0.2 * expr) / 0.8)
    assert alone.confidence == pytest.approx(0.8)
    assert alone.reason == "without participation"
    assert band(alone.value, FusionParams()) == "high" and band(0.2, FusionParams()) == "low"


# -- expressions, valence, arousal ----------------------------------------------------------


def ser(ts: float, probs: dict[str, float]) -> EmotionScores:
    scores = EmotionScores.of("p", ts, "voice", probs)
    assert scores is not None
    return scores


def test_face_and_voice_emotions_fuse_by_weight_confidence_and_freshness() -> None:
    speech = voice(
        1.0,
        arousal=0.5,
        segment_end_ts=1.0,
        emotion=ser(1.0, {"happy": 0.5, "neutral": 0.5, "angry": 0.0, "sad": 0.0}),
        emotion_status="ok",
        prosody_z={"loudness": 1.0, "rate": 0.5, "range": 0.2, "pitch": 0.5},
    )
    probs = {"happy": 0.6, "neutral": 0.4}
    state = run([face(0.9, probs), speech, face(1.0, probs)])
    # W_face = 0.6 x 0.6 x 1, W_voice = 0.4 x 0.5 x 1; the voice re-divides the face's mass
    # on its classes (1.0): happy = (0.36 x 0.6 + 0.2 x 0.5) / 0.56.
    assert state.value("happy") == pytest.approx((0.36 * 0.6 + 0.2 * 0.5) / 0.56)
    assert sum(state.value(e.value) or 0.0 for e in Emotion) == pytest.approx(1.0)
    assert state.readings["happy"].confidence == pytest.approx(1.0)
    # Fear: the voice model cannot express it, so the face alone speaks to it.
    assert state.readings["fear"].confidence == pytest.approx(0.6)
    # Valence: face 0.4 x 0.6 + AUs 0 + voice 0.2 x 0.5.
    assert state.value("valence") == pytest.approx(0.4 * 0.6 + 0.2 * 0.5)
    # Arousal: voice 0.8 x 0.5 + face 0.2 x 0.
    assert state.value("arousal") == pytest.approx(0.4)
    assert state.readings["arousal"].sources == ("voice_prosody", "face_fer")
    # Sounds confident: logistic(mean(1, 0.5, 0.2, -0.5)).
    assert state.value("confident") == pytest.approx(1 / (1 + math.exp(-0.3)))
    # Excited = max(0, arousal) x positive display (0.6 x 0.6 + 0.4 x 0.5) / 1.
    assert state.value("excited") == pytest.approx(0.5 * 0.56)
    assert state.value("enthusiastic") == state.value("excited")
    assert state.value("calm") == 0.0 and state.value("stressed") == 0.0
    # 7.5 s later the speech is half as fresh: its weight halves, and so does confidence.
    later = run([face(0.9, probs), speech, face(1.0, probs), face(8.5, probs)])
    assert later.value("arousal") == pytest.approx((0.8 * 0.5 * 0.5) / (0.8 * 0.5 + 0.2))
    assert later.readings["arousal"].confidence == pytest.approx(0.6)
    # After voice_fresh_secs: face only, and it says so.
    stale = run([face(0.9, probs), speech, face(1.0, probs), face(17.0, probs)])
    assert stale.value("confident") is None
    assert stale.readings["happy"].reason == "face only: no recent speech"


def test_valence_from_action_units_hand_computed() -> None:
    aus = {"AU04": 0.0, "AU06": 1.5, "AU12": 3.0, "AU15": 0.0}
    state = run(frames(0, 1, 10, probs={"neutral": 1.0}, aus=aus))
    # face 0.4 x 0 + AUs 0.4 x ((0.5 + 1) - 0) / 2, over weight 0.8 (no voice).
    assert state.value("valence") == pytest.approx(0.4 * 0.75 / 0.8)
    assert state.readings["valence"].confidence == pytest.approx(0.8)


def test_surprise_is_not_read_while_speaking() -> None:
    state = run([voice(0.0, is_speaking=True), face(0.1, {"surprise": 0.9, "neutral": 0.1})])
    assert state.value("surprise") is None and "speaking" in (
        state.readings["surprise"].reason or ""
    )


def test_a_room_cameras_second_face_has_no_voice_of_its_own() -> None:
    state = run([voice(0.0, is_speaking=True), talk(0.5), face(1.0)], voice_attributable=False)
    assert state.voice is None and state.is_speaking is None
    assert "not this face's" in (state.readings["participation"].reason or "")


def test_a_room_cameras_second_face_out_of_view_is_not_disengaged() -> None:
    # The person's own card decays to "not attentive" when the face goes (see above); a
    # further face of a shared camera has nothing else observing it, so out of view it
    # reads null at once instead of engagement 0 (it may have left the picture).
    obs: list[Observation] = [*frames(0, 4, 10), no_face(4.1)]
    state = run(obs, voice_attributable=False)
    assert state.value("attention") is None
    assert "shared camera" in (state.readings["attention"].reason or "")
    assert state.engagement is None
    assert run(obs).value("attention") == pytest.approx(math.exp(-0.1 / 8))


def test_failed_analysis_repeats_the_last_readings_flagged_stale() -> None:
    before = run(frames(0, 2, 10))
    fused = None
    for obs in [*frames(0, 2, 10), AnalysisFailed("p", 2.2, "face")]:
        fused = fuse(fused, "p", [obs], obs.ts, RAW)
    assert fused is not None
    assert fused.state.stale and fused.state.readings == before.readings
    fused = fuse(fused, "p", [face(2.3)], 2.3, RAW)
    assert not fused.state.stale


def test_time_never_goes_back() -> None:
    fused = fuse(None, "p", [face(5.0)], 5.0, RAW)
    fused = fuse(fused, "p", [voice(4.8)], 4.8, RAW)  # the voice clock is a little behind
    assert fused.state.ts == 5.0
