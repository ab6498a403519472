"""Mood summaries, pure parts: the window's figures, the local rules, validation, pseudonyms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.fusion import FusionParams
from bot.summaries import InvalidSummary, Pseudonyms, SummaryWindow, to_event, validate_output
from bot.summaries.local import suggestion, summarize_local
from bot.summaries.models import (
    FaceFeatures,
    ParticipantInput,
    ParticipantSummary,
    RoomInput,
    Series,
    SummaryInput,
    SummaryOutput,
    TalkInput,
)
from bot.types import (
    Emotion,
    EmotionScores,
    FaceMetrics,
    MeetingEvent,
    Moment,
    MomentEvent,
    NoticeEvent,
    ParticipantInfo,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    ParticipantState,
    ParticipantStateEvent,
    Reading,
    RoomEvent,
    RoomState,
    TalkEvent,
    TalkFigures,
    VoiceMetrics,
)

pytestmark = pytest.mark.unit

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()

T0 = 1000.0
PARAMS = FusionParams()


def face_metrics(t: float, *, smiling: bool, away: bool) -> FaceMetrics:
    return FaceMetrics(
        track_id=1,
        calibrated=True,
        blinks=int(t // 4),  # one blink every 4 s
        blink_rate_per_min=15.0,
        ear=0.3,
        smile=2.0 if smiling else 0.0,
        is_smiling=smiling,
        head_pitch=10.0,
        head_yaw=0.0,
        head_roll=0.0,
        gaze_yaw=0.0,
        gaze_pitch=0.0,
        looking_away=away,
        aus={},
        au_labels=("joy",) if smiling else (),
        window=None,
    )


def readings(**values: float | None) -> dict[str, Reading]:
    return {
        name: Reading(
            v, 0.8 if v is not None else 0.0, None if v is not None else "no face in view"
        )
        for name, v in values.items()
    }


def ada(t: float) -> ParticipantState:
    """Face in view but for 20-30 s; smiling the first 15 s; looking away from 40 s."""
    ts = T0 + t
    visible = not 20 <= t < 30
    emotion = EmotionScores("a", ts, "face", {Emotion.HAPPY: 0.8, Emotion.NEUTRAL: 0.2}, 0.8)
    return ParticipantState(
        "a",
        ts,
        face_visible=visible,
        emotion=emotion if visible else None,
        face=face_metrics(t, smiling=t < 15, away=t >= 40) if visible else None,
        voice=VoiceMetrics(False, 0.0, None, None, None, None, "unavailable"),
        talk=TalkFigures(0.0, None, 0),
        readings=readings(
            engagement=0.7,
            attention=0.8,
            expressiveness=0.4,
            participation=0.5,
            valence=0.4,
            arousal=0.2,
            happy=0.8,
        ),
    )


def bo(t: float) -> ParticipantState:
    """No face; speaks 30 s of the window; engagement falls as attention falls."""
    ts = T0 + t
    f = t / 60
    return ParticipantState(
        "b",
        ts,
        face_visible=False,
        emotion=None,
        is_speaking=True,
        voice=VoiceMetrics(True, t / 2, 0.1, None, None, None, "unavailable"),
        talk=TalkFigures(t / 2, None, int(t // 20)),
        readings=readings(
            engagement=0.4 - 0.2 * f,
            attention=0.5 - 0.4 * f,
            expressiveness=None,
            participation=0.3,
            valence=-0.1 - 0.3 * f,
            arousal=0.1,
        ),
    )


def room(t: float, engagement: float) -> RoomState:
    return RoomState(
        T0 + t, 2, engagement, 2, 0.2, 0.15, "positive, energetic", "happy", (), "steady", 0.0
    )


def joined(pid: str, name: str) -> ParticipantJoinedEvent:
    return ParticipantJoinedEvent(
        participant=ParticipantInfo(participant_id=pid, display_name=name, joined_at=T0)
    )


def talk(t: float, silent_for: float, speech: float) -> TalkEvent:
    return TalkEvent(
        ts=T0 + t,
        speaking=[],
        participants=[],
        duration_secs=t,
        speech_secs=speech,
        silence_secs=t - speech,
        long_silences=0,
        overlap_secs=0.0,
        current_silence_secs=silent_for,
    )


def window_events() -> list[MeetingEvent]:
    events: list[MeetingEvent] = [joined("a", "Ada"), joined("b", "Bo")]
    for k in range(120):
        t = k * 0.5
        events.append(ParticipantStateEvent(state=ada(t)))
        events.append(ParticipantStateEvent(state=bo(t)))
        if k % 2 == 0:
            events.append(RoomEvent(room=room(t, 0.6 - 0.3 * t / 60)))
            events.append(talk(t, silent_for=0.0, speech=t / 2))
    events.append(MomentEvent(moment=Moment(T0 + 45, "engagement_drop", (), ("b",), -0.25, 60.0)))
    events.append(NoticeEvent(code="voice_emotion_unavailable", text="voice emotion unavailable"))
    return events


def built() -> tuple[SummaryInput, Pseudonyms]:
    window = SummaryWindow(PARAMS)
    for e in window_events():
        window.add(e)
    return window.build(T0 + 60, "interval")


def test_window_features_follow_from_the_states() -> None:
    inp, names = built()
    assert (inp.start_secs, inp.end_secs) == (0.0, 60.0)
    p1, p2 = inp.participants
    assert (p1.alias, p2.alias) == ("P1", "P2")
    assert names.by_alias == {"P1": ("a", "Ada"), "P2": ("b", "Bo")}
    face = p1.face
    # Time-weighted over 60 s at 2 states a second: 50 s of face, 15 s smiling, 20 s away.
    assert face.face_visible_pct == pytest.approx(100 * 50 / 60, abs=0.1)
    assert face.smile_freq == pytest.approx(0.3)
    assert face.avg_head_tilt == pytest.approx(10.0)
    assert face.percent_away == pytest.approx(40.0)
    # Blink events, not frames: the counter went from 0 to 14 over 50 s of face time.
    assert face.blink_freq == pytest.approx(14 / 50, abs=1e-3)
    assert face.emotion_counts == {"joy": 30} and face.face_frames == 100
    # No face at all: seed B's features are null, with the reason, never zero.
    assert p2.face.face_visible_pct == 0.0
    assert p2.face.smile_freq is None and p2.face.nulls["smile_freq"] == "no face in view"
    assert p2.face.blink_freq is None and p2.face.emotion_counts == {}
    # Readings: time-weighted mean, first and last.
    assert p1.engagement.mean == pytest.approx(0.7) and p1.band == "high"
    assert p2.attention.start == pytest.approx(0.5)
    assert p2.attention.end == pytest.approx(0.5 - 0.4 * 59.5 / 60, abs=1e-3)
    assert p2.expressiveness.mean is None and p2.expressiveness.reason == "no face in view"
    # Talk in the window: differences of the cumulative figures.
    assert p1.talk is not None and p1.talk.talk_secs == 0.0 and p1.talk.turns == 0
    assert p2.talk is not None and p2.talk.talk_secs == pytest.approx(29.8, abs=0.1)
    assert p2.talk.share == 1.0 and p2.talk.turns == 2
    assert (p2.mood_start, p2.mood_end) == ("neutral", "negative")  # valence -0.1 -> -0.4
    assert inp.room.engagement.start == pytest.approx(0.6)
    assert inp.room.speech_secs == pytest.approx(29.5)
    (moment,) = inp.room.moments
    assert (moment.at_secs, moment.speaking) == (45.0, ["P2"])
    assert "voice emotion model unavailable: the tone of voice is not read" in inp.data_quality
    # What goes to a summarizer carries pseudonyms only.
    text = inp.model_dump_json()
    assert "Ada" not in text and '"a"' not in text and "1000" not in text


def test_local_summary_names_the_least_engaged_and_the_moments_speaker() -> None:
    inp, names = built()
    out = validate_output(summarize_local(inp), inp)
    first = out.changes[0]
    assert first == (
        "Most engaged: P1 (0.70); least engaged: P2 (0.30), attention moved most (0.50 → 0.10)."
    )
    assert "At 0:45 room engagement fell by 0.25 within 60 s, while P2 spoke." in out.changes
    assert out.participants[1].sentence.startswith(
        "P2: low engagement (0.30, falling from 0.40 to 0.20), attention moved most"
    )
    assert "Room engagement fell from 0.60 to 0.30." in out.changes
    # P2 took all of the window's talk: the suggestion invites the quiet one.
    assert out.suggestion.startswith("P2 spoke 100 % of the talk in this window")
    assert "ask P1 (who spoke least)" in out.suggestion
    event = to_event(
        out,
        inp,
        names,
        summary_id="s1",
        ts=T0 + 60,
        window=(T0, T0 + 60),
        reason="interval",
        source="local",
        label="local summary",
    )
    assert event.participants[1].display_name == "Bo"
    assert event.participants[1].text.startswith("Bo: low engagement")
    assert "least engaged: Bo (0.30)" in event.changes[0]
    assert "while Bo spoke" in event.text and event.text.startswith("Local summary")
    assert "P2" not in event.text
    assert event.text in README  # the example quoted there is this one


def test_the_next_window_carries_state_and_forgets_who_left() -> None:
    window = SummaryWindow(PARAMS)
    for e in window_events():
        window.add(e)
    window.build(T0 + 60, "interval")
    window.roll(T0 + 60)
    window.add(ParticipantLeftEvent(participant_id="b", ts=T0 + 70, reason="left"))
    inp, _ = window.build(T0 + 80, "end")
    p1, p2 = inp.participants
    assert (inp.start_secs, inp.end_secs) == (60.0, 80.0)
    # Ada's last state holds for 5 s at most; Bo's until he left (5 s at most too).
    assert p1.observed_secs == 5.0 and p2.left and p2.observed_secs == 5.0
    assert p1.engagement.start == pytest.approx(0.7)  # carried from the last window
    window.roll(T0 + 80)
    inp, _ = window.build(T0 + 90, "interval")
    assert [p.alias for p in inp.participants] == ["P1"]


def test_an_empty_window_says_so() -> None:
    inp, _ = SummaryWindow(PARAMS).build(T0, "request")
    out = validate_output(summarize_local(inp), inp)
    assert out.participants == [] and "no one was observed" in inp.data_quality[0]
    assert out.suggestion.startswith("No one was observed in this window")
    assert out.room_mood.startswith("Room mood unknown")


# -- rules on hand-made inputs ---------------------------------------------------------------


def person(alias: str, **changes: Any) -> ParticipantInput:
    fields: dict[str, Any] = {
        "alias": alias,
        "observed_secs": 60.0,
        "joined": False,
        "left": False,
        "engagement": Series(mean=0.5, start=0.5, end=0.5, secs=60),
        "band": "medium",
        "attention": Series(mean=0.6, start=0.6, end=0.6, secs=60),
        "expressiveness": Series(mean=0.3, start=0.3, end=0.3, secs=60),
        "participation": Series(mean=0.4, start=0.4, end=0.4, secs=60),
        "valence": Series(mean=0.0, start=0.0, end=0.0, secs=60),
        "arousal": Series(mean=0.0, start=0.0, end=0.0, secs=60),
        "mood_start": "neutral",
        "mood_end": "neutral",
        "trend": "steady",
        "changed_states": [],
        "face": FaceFeatures(
            face_visible_pct=100.0,
            blink_freq=0.3,
            smile_freq=0.1,
            avg_head_tilt=2.0,
            percent_away=5.0,
            emotion_counts={},
            face_frames=600,
        ),
        "talk": TalkInput(talk_secs=10.0, share=0.5, turns=2, meeting_share=0.5),
        "voice_emotion": "ok",
        "stale_pct": 0.0,
    }
    fields.update(changes)
    return ParticipantInput(**fields)


def summary_input(people: list[ParticipantInput], **room: Any) -> SummaryInput:
    fields: dict[str, Any] = {
        "present": len(people),
        "engagement": Series(mean=0.5, start=0.5, end=0.5, secs=60),
        "band": "medium",
        "valence": Series(mean=0.0, start=0.0, end=0.0, secs=60),
        "arousal": Series(mean=0.0, start=0.0, end=0.0, secs=60),
        "mood_start": "neutral",
        "mood_end": "neutral",
        "trend": "steady",
        "trend_change": 0.0,
        "speech_secs": 20.0,
        "silence_secs": 40.0,
        "longest_silence_secs": 5.0,
        "moments": [],
    }
    fields.update(room)
    return SummaryInput(
        start_secs=0.0,
        end_secs=60.0,
        reason="interval",
        participants=people,
        room=RoomInput(**fields),
        data_quality=[],
    )


def test_suggestions_follow_explicit_rules_in_order() -> None:
    two = [person("P1"), person("P2")]
    steady = summary_input(two)
    assert suggestion(steady) == (
        "Nothing calls for a change: room engagement is medium (0.50) and not falling."
    )
    falling = summary_input(two, engagement=Series(mean=0.5, start=0.6, end=0.45, secs=60))
    brief = summary_input(two, engagement=Series(mean=0.5, start=0.6, end=0.45, secs=10))
    assert suggestion(brief).startswith("Nothing calls for a change")  # 10 s is no trend
    assert suggestion(falling) == (
        "Room engagement is falling (0.60 → 0.45 in this window): consider a short break or a "
        "quick poll."
    )
    silent = summary_input(two, longest_silence_secs=42.0)
    assert suggestion(silent) == "Nobody spoke for 42 s: ask the group an open question."
    low = [person("P1"), person("P2", engagement=Series(mean=0.2, start=0.2, end=0.2), band="low")]
    assert suggestion(summary_input(low)).startswith("P2's engagement is low (0.20, lowest")
    hidden = [
        person("P1"),
        person(
            "P2",
            face=person("P2").face.model_copy(update={"face_visible_pct": 20.0}),
            engagement=Series(mean=0.2),
            band="low",
        ),
    ]
    assert suggestion(summary_input(hidden)).startswith("P2's face was in view only 20 %")
    dominant = [
        person("P1", talk=TalkInput(talk_secs=40.0, share=0.8, turns=4, meeting_share=0.7)),
        person("P2", talk=TalkInput(talk_secs=10.0, share=0.2, turns=1, meeting_share=0.3)),
    ]
    # Dominance wins over a falling room and a long silence.
    both = summary_input(
        dominant,
        engagement=Series(mean=0.5, start=0.6, end=0.45, secs=60),
        longest_silence_secs=42.0,
    )
    assert suggestion(both).startswith("P1 spoke 80 % of the talk in this window")


def test_changes_report_mood_shifts_silences_and_caveats() -> None:
    shifted = person(
        "P1",
        valence=Series(mean=0.1, start=0.4, end=-0.2),
        mood_start="positive",
        mood_end="negative",
    )
    inp = summary_input(
        [shifted],
        mood_start="positive, calm",
        mood_end="subdued",
        longest_silence_secs=25.0,
        silence_secs=30.0,
    ).model_copy(update={"data_quality": ["P1: no voice analysed"]})
    out = validate_output(summarize_local(inp), inp)
    assert "Only P1 had an engagement reading (0.50)." in out.changes
    assert "Room mood shifted from positive, calm to subdued." in out.changes
    assert "Longest silence: 25 s with nobody speaking (30 s of silence in 60 s)." in out.changes
    assert "P1's expressed valence fell from +0.40 to -0.20." in out.changes
    assert "Caveat: P1: no voice analysed." in out.changes
    assert "expressed mood shifted from positive to negative" in out.participants[0].sentence


# -- validation ---------------------------------------------------------------------------------


def test_output_that_does_not_fit_its_input_is_refused() -> None:
    inp = summary_input([person("P1"), person("P2", band="low")])
    good = summarize_local(inp)
    validate_output(good, inp)

    def broken(**changes: Any) -> SummaryOutput:
        return good.model_copy(update=changes)

    entry = good.participants[0]
    cases = {
        "unknown participant 'P7'": broken(
            participants=[*good.participants, entry.model_copy(update={"participant": "P7"})]
        ),
        "appears twice": broken(participants=[entry, entry]),
        "participants missing: P2": broken(participants=[entry]),
        "the input says 'low'": broken(
            participants=[
                entry,
                good.participants[1].model_copy(update={"engagement_band": "high"}),
            ]
        ),
        "names 'P3'": broken(suggestion="Ask P3 to speak."),
        "empty": broken(room_mood="  "),
    }
    for says, output in cases.items():
        with pytest.raises(InvalidSummary, match=says):
            validate_output(output, inp)


def test_response_schema_is_json_schema_of_the_output() -> None:
    schema = SummaryOutput.response_schema()
    json.dumps(schema)
    assert set(schema["required"]) == {"participants", "room_mood", "changes", "suggestion"}
    assert "source" not in schema["properties"]  # the caller says who wrote it
    item = schema["$defs"]["ParticipantSummary"]
    assert item["properties"]["engagement_band"]["enum"] == ["low", "medium", "high", "unknown"]
    again = SummaryOutput.model_validate_json(summarize_local(summary_input([])).model_dump_json())
    assert again.participants == []
    assert ParticipantSummary.model_fields["sentence"].description


def test_pseudonyms_are_revealed_only_locally() -> None:
    names = Pseudonyms({"P1": ("a", "Ada"), "P2": ("b", "P1 fan"), "P10": ("c", "Cy")})
    assert names.reveal("P1 and P10 spoke; P2 did not; P3 is unknown") == (
        "Ada and Cy spoke; P1 fan did not; P3 is unknown"
    )
