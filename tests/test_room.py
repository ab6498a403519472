"""Room fusion on scripted series with a virtual clock: mood, trends and notable moments."""

from __future__ import annotations

import pytest

from bot.fusion import FusionParams
from bot.fusion.room import RoomFusion, mood, trend_change
from bot.types import (
    EmotionScores,
    Moment,
    ParticipantState,
    Reading,
    VoiceMetrics,
)

pytestmark = pytest.mark.unit


def person(
    pid: str,
    ts: float,
    engagement: float | None = None,
    confidence: float = 1.0,
    *,
    valence: float | None = None,
    arousal: float | None = None,
    smiling: bool = False,
    face: bool = True,
    speaking: bool | None = None,
    talk_secs: float = 0.0,
) -> ParticipantState:
    readings = {
        "engagement": Reading(engagement, confidence if engagement is not None else 0.0),
        "valence": Reading(valence, 1.0 if valence is not None else 0.0),
        "arousal": Reading(arousal, 1.0 if arousal is not None else 0.0),
    }
    probs = {"happy": 0.9, "neutral": 0.1} if smiling else {"neutral": 1.0}
    voice = None
    if speaking is not None:
        voice = VoiceMetrics(speaking, talk_secs, None, None, None, None, "disabled")
    return ParticipantState(
        participant_id=pid,
        ts=ts,
        face_visible=face,
        emotion=EmotionScores.of(pid, ts, "face", probs) if face else None,
        is_speaking=speaking,
        voice=voice,
        readings=readings,
    )


def run(
    room: RoomFusion, until: float, states_at: object, start: float = 0.0, step: float = 1.0
) -> list[Moment]:
    """Tick once a second from ``start`` to ``until``; ``states_at(t)`` gives the states."""
    moments: list[Moment] = []
    t = start
    while t <= until + 1e-9:
        for s in states_at(t):  # type: ignore[operator]
            room.observe(s)
        moments.extend(room.tick(t)[1])
        t += step
    return moments


def test_room_engagement_is_confidence_weighted_and_mood_is_a_quadrant() -> None:
    room = RoomFusion(FusionParams())
    room.observe(person("a", 0, 0.9, 1.0, valence=0.5, arousal=0.4))
    room.observe(person("b", 0, 0.3, 0.5, valence=0.3, arousal=0.2))
    room.observe(person("c", 0, None, face=False))  # no engagement: left out, not 0
    state, _ = room.tick(0.0)
    assert state.engagement == pytest.approx((0.9 * 1.0 + 0.3 * 0.5) / 1.5)
    assert state.engagement_n == 2 and state.present == 3
    assert state.valence == pytest.approx(0.4) and state.mood == "positive, energetic"
    assert mood(-0.5, -0.5) == "subdued" and mood(0.0, 0.05) == "neutral"
    assert mood(-0.3, 0.6) == "tense" and mood(None, 0.2) is None


def test_engagement_drop_is_a_moment_once_with_who_was_speaking() -> None:
    params = FusionParams()
    room = RoomFusion(params)

    def states(t: float) -> list[ParticipantState]:
        level = 0.8 if t < 100 else 0.45
        return [person("a", t, level, speaking=t >= 100), person("b", t, level, speaking=False)]

    moments = run(room, 160, states)
    drops = [m for m in moments if m.kind == "engagement_drop"]
    # 0.8 -> 0.45 is at least engagement_delta (0.2) within a minute: said once, at 100 s,
    # then not again within the cooldown nor once the drop is older than the window.
    assert [m.ts for m in drops] == [100.0]
    assert drops[0].value == pytest.approx(-0.35) and drops[0].speaking == ("a",)
    assert not [m for m in moments if m.kind == "engagement_rise"]


def test_engagement_rise() -> None:
    room = RoomFusion(FusionParams())
    moments = run(room, 120, lambda t: [person("a", t, 0.3 if t < 50 else 0.6)])
    rises = [m for m in moments if m.kind == "engagement_rise"]
    assert [(m.ts, round(m.value, 6)) for m in rises] == [(50.0, 0.3)]


def test_trends_are_least_squares_changes_over_the_window() -> None:
    params = FusionParams()
    room = RoomFusion(params)
    # Engagement climbs linearly by 0.3 over 180 s: a rising trend, 0.3 per window, and no
    # moment (0.1 a minute is not a sudden change).
    moments = run(room, 180, lambda t: [person("a", t, 0.3 + 0.3 * t / 180)])
    state, _ = room.tick(180.0)
    assert state.trend == "rising"
    assert state.trend_change == pytest.approx(0.3, abs=0.01)
    assert state.trends == {"a": "rising"}
    assert not moments
    flat = RoomFusion(params)
    run(flat, 180, lambda t: [person("a", t, 0.5)])
    assert flat.tick(181.0)[0].trend == "steady"
    assert trend_change([(0.0, 0.1), (1.0, 0.2)], 180) is None  # too little data


def test_someone_silent_for_long_while_others_talk() -> None:
    params = FusionParams()
    room = RoomFusion(params)

    def states(t: float) -> list[ParticipantState]:
        a_speaks = t < 10  # a spoke for 10 s, then stopped
        return [
            person("a", t, 0.6, speaking=a_speaks, talk_secs=min(t, 10.0)),
            person("b", t, 0.6, speaking=not a_speaks, talk_secs=max(0.0, t - 10)),
            person("c", t, 0.6, speaking=False, talk_secs=0.0),  # never spoke: no moment
        ]

    moments = [m for m in run(room, 400, states) if m.kind == "long_silence"]
    assert [(m.participants, m.ts) for m in moments] == [(("a",), 310.0)]
    assert moments[0].value == pytest.approx(300.0) and moments[0].speaking == ("b",)


def test_joint_smiles_need_two_faces_and_half_the_room() -> None:
    params = FusionParams()
    room = RoomFusion(params)
    # Two of three faces smile 1 s apart (within joint_smile_secs): a laughter-like moment.
    room.observe(person("a", 10.0, smiling=True))
    room.observe(person("b", 11.0, smiling=True))
    room.observe(person("c", 11.0))
    state, moments = room.tick(11.5)
    assert [(m.kind, m.participants) for m in moments] == [("joint_smiles", ("a", "b"))]
    # Later, two smiles among five faces is not half the room.
    crowd = RoomFusion(params)
    for pid in "abcde":
        crowd.observe(person(pid, 20.0, smiling=pid in "ab"))
    assert crowd.tick(20.5)[1] == []
    # One smile alone is not joint; an old smile does not count.
    lone = RoomFusion(params)
    lone.observe(person("a", 0.0, smiling=True))
    lone.observe(person("b", 5.0, smiling=True))
    lone.observe(person("a", 5.0))
    assert lone.tick(5.0)[1] == []


def test_a_participant_who_leaves_is_forgotten() -> None:
    room = RoomFusion(FusionParams())
    room.observe(person("a", 0, 0.9))
    room.observe(person("b", 0, 0.1))
    room.leave("a")
    state, _ = room.tick(1.0)
    assert state.present == 1 and state.engagement == pytest.approx(0.1)
