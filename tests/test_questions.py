"""Asking about the meeting: the reading rules, the local answerer on hand-built data, the API.

The hand-built meeting (20 minutes, states every 5 s, the room every second):

- Ada Lovelace (P1): engagement 0.70, valence +0.30; 200 s of talk.
- Bo (P2): engagement 0.50 for the first 10 minutes, then 0.20 (low band); valence +0.10
  then -0.20; 90 s of talk, 60 s of it in the last 10 minutes; face out of view 12:00-13:00.
- Cy (P3): camera off (no face: engagement not measured), voice never analysed.
- The room: valence +0.30 until 8:00, falling to -0.20 by 8:40 while Bo speaks; a notable
  moment at 8:30 (engagement fell by 0.25 while Bo spoke); nobody speaks 15:00-16:00.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bot.store import Store
from bot.summaries.answers import answer_local
from bot.summaries.ask import QuestionResult, reveal
from bot.summaries.models import MomentInput, Pseudonyms
from bot.summaries.questions import (
    QuestionContext,
    RoomTrack,
    SummaryNote,
    Track,
    match_names,
    parse_question,
    parse_range,
)
from bot.types import (
    EmotionScores,
    FaceObservation,
    ListeningObservation,
    ParticipantState,
    Reading,
    SpeakingObservation,
    VoiceMetrics,
    VoiceObservation,
)
from tests.conftest import make_settings
from tests.media import TrackSource
from web.app import create_app
from web.keys import MANAGER

pytestmark = pytest.mark.unit

NAMES = Pseudonyms({"P1": ("a", "Ada Lovelace"), "P2": ("b", "Bo"), "P3": ("c", "Cy")})
END = 1200.0


def ada(t: float) -> dict[str, Any]:
    return {"engagement": 0.7, "valence": 0.3, "talk": min(t, 200.0), "speaking": t < 200}


def bo(t: float) -> dict[str, Any]:
    late = t >= 600
    talk = 30.0 if t < 600 else 30.0 + min(60.0, t - 600)
    return {
        "engagement": 0.2 if late else 0.5,
        "valence": -0.2 if late else 0.1,
        "talk": talk,
        "speaking": 600 <= t < 660,
        "face": not 720 <= t < 780,
    }


def track(alias: str, fn: Any, start: float, end: float, last: float = END) -> Track:
    t = [float(x) for x in range(0, int(last), 5) if start <= x <= end]
    rows = [fn(x) for x in t]
    return Track(
        alias=alias,
        joined_secs=0.0,
        t=t,
        hold=[min(5.0, end - x) for x in t],
        face_visible=[r.get("face", True) for r in rows],
        speaking=[r["speaking"] for r in rows],
        talk_secs=[r["talk"] for r in rows],
        readings={
            "engagement": [r["engagement"] for r in rows],
            "valence": [r["valence"] for r in rows],
        },
    )


def cy(start: float, end: float, last: float = END) -> Track:
    t = [float(x) for x in range(0, int(last), 5) if start <= x <= end]
    return Track(
        alias="P3",
        joined_secs=0.0,
        t=t,
        hold=[min(5.0, end - x) for x in t],
        face_visible=[False] * len(t),
        speaking=[None] * len(t),
        talk_secs=[None] * len(t),
        readings={"engagement": [None] * len(t), "valence": [None] * len(t)},
        reasons={"engagement": "no face in view", "valence": "no face in view"},
    )


def room_valence(t: float) -> float:
    if t < 480:
        return 0.3
    return max(-0.2, 0.3 - 0.5 * (t - 480) / 40)


def room_speaking(t: float) -> list[str]:
    if 470 <= t < 530:
        return ["P2"]
    if 900 <= t < 960:
        return []
    return ["P1"]


def context(question: str, last: float = END, now: float = END) -> QuestionContext:
    """The hand-built meeting, read for the range the question names (as gather_context does)."""
    rng = parse_range(question).resolve(now)
    a, b = rng.start_secs, rng.end_secs
    room_t = [float(x) for x in range(0, int(last)) if a <= x <= b]
    return QuestionContext(
        now_secs=now,
        range=rng,
        participants=[track("P1", ada, a, b, last), track("P2", bo, a, b, last), cy(a, b, last)],
        room=RoomTrack(
            t=room_t,
            hold=[min(1.0, b - x) for x in room_t],
            engagement=[0.6 if x < 510 else 0.35 for x in room_t],
            valence=[room_valence(x) for x in room_t],
            arousal=[0.0 for _ in room_t],
            speaking=[room_speaking(x) for x in room_t],
        ),
        moments=[
            MomentInput(
                at_secs=510.0,
                kind="engagement_drop",
                participants=[],
                speaking=["P2"],
                value=-0.25,
                window_secs=60.0,
            )
        ],
        summaries=[
            SummaryNote(
                start_secs=1140.0,
                end_secs=1200.0,
                label="local summary",
                room_mood="Room mood: neutral.",
                changes=["Most engaged: P1 (0.70); least engaged: P2 (0.20)."],
                suggestion="P2 is in the low band: invite P2 in.",
            )
        ],
        bands=(0.35, 0.6),
    )


def ask(question: str, **kw: Any) -> QuestionResult:
    match = match_names(question, [(a, n) for a, (_, n) in NAMES.by_alias.items()])
    answer = answer_local(match.text, context(match.text, **kw))
    return reveal(question, answer, NAMES, "local", "local answer")


# -- the reading rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "kind", "subject", "phrase", "start", "end"),
    [
        ("who seemed disengaged in the last ten minutes?", "who", "engagement",
         "the last 10 minutes", 600, 1200),
        ("when did the mood drop?", "when", "valence", "the whole meeting", 0, 1200),
        ("who was most confused since 10:05", "who", "confused", "since 10:05", 605, 1200),
        ("how long was the room silent in the first 5 minutes?", "how_long", "silence",
         "the first 5 minutes", 0, 300),
        ("who smiled most between 2:00 and 5:00", "who", "happy", "from 2:00 to 5:00", 120, 300),
        ("when did engagement peak in the last half hour?", "when", "engagement",
         "the last 30 minutes", 0, 1200),
        ("compare P1 and P2 on energy in the past 90 seconds", "compare", "arousal",
         "the last 90 seconds", 1110, 1200),
        ("how engaged was P1 since minute 5?", "value", "engagement", "since 5:00", 300, 1200),
        ("summarize the last 2 minutes", "summary", None, "the last 2 minutes", 1080, 1200),
        ("who talked most before 4:00?", "who", "talk", "before 4:00", 0, 240),
    ],
)  # fmt: skip
def test_reading_rules(
    question: str, kind: str, subject: str | None, phrase: str, start: float, end: float
) -> None:
    q = parse_question(question)
    assert q.kind == kind
    assert (q.subject.key if q.subject else None) == subject
    rng = q.range.resolve(END)
    assert (rng.phrase, rng.start_secs, rng.end_secs) == (phrase, start, end)


def test_names_full_first_and_ambiguous() -> None:
    people = [("P1", "Ada Lovelace"), ("P2", "Bo"), ("P3", "Ada Byron")]
    m = match_names("Did ADA LOVELACE talk more than bo?", people)
    assert m.text == "Did P1 talk more than P2?" and m.aliases == ("P1", "P2")
    assert not m.ambiguous
    m = match_names("how long did Ada speak?", people)
    assert m.ambiguous == {"ada": ("P1", "P3")} and m.aliases == ()
    m = match_names("how long did Ada speak?", people[:2])
    assert m.text == "how long did P1 speak?"
    # A surname (another word of the name, from three letters) names its person too.
    m = match_names("compare lovelace and BYRON", people)
    assert m.text == "compare P1 and P3" and not m.ambiguous
    m = match_names("did Byron talk?", [*people, ("P4", "Cy Byron")])
    assert m.ambiguous == {"byron": ("P3", "P4")}


# -- the local answerer on hand-built data ---------------------------------------------------


def test_who_seemed_disengaged_names_the_low_band_with_the_range() -> None:
    res = ask("Who seemed disengaged in the last ten minutes?")
    a = res.answer
    assert a.text == (
        "In the last 10 minutes (10:00–20:00): Bo (mean engagement 0.20 over 10 min of "
        "readings) was in the low engagement band (under 0.35). "
        "Others: Ada Lovelace 0.70 (high band); Cy not measured (no face in view)."
    )
    assert a.kind == "who" and a.subject == "engagement" and a.answered
    assert (a.range.start_secs, a.range.end_secs) == (600, 1200)
    assert [p.display_name for p in a.participants] == ["Bo"]
    assert a.sources == ["states"]
    (cy_figure,) = [f for f in a.figures if f.participant == "Cy"]
    assert cy_figure.value is None and cy_figure.note == "not measured: no face in view"


def test_when_did_the_mood_drop_names_the_time_and_the_speaker() -> None:
    a = ask("when did the mood drop?").answer
    assert a.text.startswith(
        "In the whole meeting (0:00–20:00): room expressed mood (valence) fell most between "
        "8:00 and 8:40: +0.30 → -0.20 (-0.50 in 40 s), while Bo spoke."
    ), a.text
    assert "Over the range it went from +0.30 at 0:00 to -0.20 at 19:59." in a.text
    assert "At 8:30 room engagement fell by 0.25 within 60 s, while Bo spoke." in a.text
    assert a.kind == "when" and a.sources == ["room", "moments"]
    (change,) = a.figures
    assert change.value == -0.5 and change.note == "8:00 to 8:40"


def test_how_long_did_ada_speak() -> None:
    a = ask("How long did Ada speak?").answer
    assert a.text == (
        "In the whole meeting (0:00–20:00): Ada Lovelace spoke 3 min 20 s "
        "(69 % of everyone's talk)."
    )
    assert [(f.participant, f.value, f.unit) for f in a.figures] == [("Ada Lovelace", 200.0, "s")]
    # In the last ten minutes the talk figures are differences over the range.
    a = ask("how long did Bo talk in the last 10 minutes?").answer
    assert "Bo spoke 1 min (100 % of everyone's talk)" in a.text, a.text


def test_compare_ada_and_bo() -> None:
    a = ask("compare Ada and Bo").answer
    assert a.kind == "compare"
    assert a.text == (
        "In the whole meeting (0:00–20:00): "
        "Mean engagement Ada Lovelace 0.70 (high band); Bo 0.35 (medium band): "
        "Ada Lovelace higher by 0.35. "
        "Mean expressed mood (valence) Ada Lovelace +0.30; Bo -0.05: Ada Lovelace higher by 0.35. "
        "Talk Ada Lovelace 3 min 20 s, 69 % of the talk; Bo 1 min 30 s, 31 % of the talk: "
        "Ada Lovelace spoke 1 min 50 s more than Bo."
    ), a.text
    diffs = [f for f in a.figures if f.measure.startswith("difference")]
    assert [round(f.value or 0, 2) for f in diffs] == [0.35, 0.35]


def test_a_question_it_cannot_answer_says_so() -> None:
    a = ask("What is the weather like?").answer
    assert not a.answered and a.kind == "value"
    assert a.text.startswith("I could not tell what to measure. I can answer, for example: ")
    assert "“how long did Ada Lovelace speak?”" in a.text and a.figures == []
    a = ask("Who seemed bored?").answer
    assert not a.answered
    assert a.text.startswith("“Bored” cannot be read from what meetmood measures: not estimable")
    a = ask("Tell me a joke").answer
    assert not a.answered and a.text.startswith("I could not tell what you are asking.")


def test_a_range_without_data_says_so() -> None:
    # Everyone's states stop at 18:20; the meeting ran to 20:00.
    a = ask("who was most engaged in the last minute?", last=1100).answer
    assert not a.answered
    assert a.text == (
        "No readings of anyone in the last 1 minute (19:00–20:00): "
        "no states were stored in that time."
    )
    a = ask("who seemed disengaged since 25:00?").answer
    assert not a.answered
    assert a.text == "No readings in that range (since 25:00): the meeting has run 20 min so far."


def test_a_null_reading_is_not_measured_not_zero() -> None:
    a = ask("how engaged was Cy?").answer
    assert not a.answered
    assert a.text == (
        "In the whole meeting (0:00–20:00): mean engagement: Cy not measured (no face in view)."
    )
    (f,) = a.figures
    assert f.value is None and f.note == "not measured: no face in view"
    a = ask("how long did Cy speak?").answer
    assert "Cy not measured (voice not analysed)" in a.text and not a.answered


def test_silence_face_time_and_summaries() -> None:
    a = ask("how long was the room silent?").answer
    assert a.text == (
        "In the whole meeting (0:00–20:00): nobody spoke for 1 min of 20 min; "
        "the longest silence was 1 min, from 15:00 to 16:00."
    )
    a = ask("how long was Bo's face not visible?").answer
    assert a.text == (
        "In the whole meeting (0:00–20:00): Bo's face was out of view for 1 min of 20 min observed."
    )
    a = ask("summarize the last minute").answer
    assert a.sources == ["summaries"]
    assert "Suggestion: Bo is in the low band: invite Bo in." in a.text


# -- the API, on a real store ------------------------------------------------------------------


def face(pid: str, ts: float, visible: bool = True) -> FaceObservation:
    scores = EmotionScores.of(pid, ts, "face", {"happy": 0.7, "neutral": 0.3}) if visible else None
    return FaceObservation(pid, 1, ts, scores)


async def test_questions_api(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **{"summaries.interval_secs": 600, "analyzers.enabled": []})
    client = await aiohttp_client(create_app(settings))
    manager = client.app[MANAGER]
    record, host_token = await manager.create_meeting("Retro")
    meeting = await manager.live(record.id)
    t0 = time.time() - 200
    now = [t0]
    meeting.clock = lambda: now[0]
    ada = meeting.join("Ada Lovelace", TrackSource())
    bo = meeting.join("Bo", TrackSource())
    a, b = ada.record.id, bo.record.id
    for pid in (a, b):
        meeting.observe(ListeningObservation(pid, t0))
    # Ada speaks from 5 s to 50 s; Bo's face leaves at 30 s.
    meeting.observe(SpeakingObservation(a, t0 + 5, True, t0 + 5.3))
    meeting.observe(
        VoiceObservation(a, t0 + 5.3, VoiceMetrics(True, 0.3, None, None, None, None, "waiting"))
    )
    for k in range(1, 2 * 90 + 1):
        t = t0 + k * 0.5
        now[0] = t
        meeting.observe(face(a, t))
        meeting.observe(face(b, t, visible=t < t0 + 30))
        if k == 100:
            meeting.observe(SpeakingObservation(a, t0 + 50, False, t0 + 50.3))
        if k % 2 == 0:
            meeting.tick(t)
    url = f"/api/meetings/{record.id}/questions"
    auth = {"Authorization": f"Bearer {host_token}"}

    async def post(question: Any, **kw: Any) -> Any:
        return await client.post(url, json={"question": question}, headers=auth, **kw)

    resp = await post("How long did Ada speak?")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["question"] == "How long did Ada speak?" and body["source"] == "local"
    answer = body["answer"]
    assert answer["text"].startswith("In the whole meeting (0:00–1:30): Ada Lovelace spoke 45 s")
    assert answer["range"] == {
        "start_secs": 0.0,
        "end_secs": 90.0,
        "phrase": "the whole meeting",
        "text": "the whole meeting (0:00–1:30)",
    }
    assert answer["participants"] == [{"participant_id": a, "display_name": "Ada Lovelace"}]
    assert answer["figures"][0]["participant_id"] == a and answer["sources"] == ["states"]

    body = await (await post("who had their face out of view longest?")).json()
    assert "Bo had their face out of view longest: 1 min" in body["answer"]["text"]
    body = await (await post("who was the least engaged in the last 30 seconds?")).json()
    assert body["answer"]["text"] == (
        "In the last 30 seconds (1:00–1:30): only Ada Lovelace had an engagement reading: "
        "mean 1.00 over 30 s of readings. Others: Bo not measured (needs attention or "
        "participation: no face in view; no microphone audio analysed)."
    )
    body = await (await post("when did the engagement drop?")).json()
    assert body["answer"]["kind"] == "when" and "room engagement" in body["answer"]["text"]

    # Bad input, bad tokens, unknown meetings.
    for bad, says in (
        ("", "question: String should have at least 1 character"),
        ("x" * 501, "question: String should have at most 500 characters"),
        (5, "question: Input should be a valid string"),
    ):
        resp = await post(bad)
        assert resp.status == 400
        assert (await resp.json())["error"]["message"] == says
    resp = await client.post(url, data="not json", headers=auth)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"
    resp = await client.post(url, json={"question": "who?", "more": 1}, headers=auth)
    assert (await resp.json())["error"]["message"] == "more: unknown field"
    assert (await client.post(url, json={"question": "who?"})).status == 401
    resp = await client.post(url, json={"question": "who?"}, headers={"Authorization": "Bearer x"})
    assert resp.status == 403
    resp = await client.post(
        "/api/meetings/nope/questions", json={"question": "who?"}, headers=auth
    )
    assert resp.status == 404


async def test_store_timeline_reads_only_the_range_and_thins_long_ones(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.sqlite3")
    await store.open()
    meeting, _ = await store.create_meeting("Thin")
    a = (await store.add_participant(meeting.id, "Ada", "browser")).id
    b = (await store.add_participant(meeting.id, "Bo", "browser")).id
    for k in range(30):
        for pid in (a, b):
            value = 0.5 if pid == a else None
            readings = {"engagement": Reading(value, 0.8, None if value else "no face in view")}
            state = ParticipantState(pid, 100.0 + k, pid == a, None, readings=readings)
            store.add_state(meeting.id, state)
    rows, stride = await store.timeline(meeting.id, 105.0, 124.0, ("engagement",), max_rows=100)
    assert stride == 1 and len(rows) == 40
    assert {r.ts for r in rows} == {105.0 + k for k in range(20)}
    bo_rows = [r for r in rows if r.participant_id == b]
    assert bo_rows[0].values == (None,) and bo_rows[0].reasons == ("no face in view",)
    rows, stride = await store.timeline(meeting.id, 0.0, 1000.0, ("engagement",), max_rows=20)
    ada_ts = [r.ts for r in rows if r.participant_id == a]
    assert stride == 3 and ada_ts == [100.0 + 3 * k for k in range(10)]
    with pytest.raises(ValueError, match="not a stored reading"):
        await store.timeline(meeting.id, 0.0, 1.0, ("engaged",))
    await store.close()
