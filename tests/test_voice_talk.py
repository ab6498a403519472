"""Tests for TalkTracker: scripted speaking intervals with hand-computed statistics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from analyzers.voice.talk import ParticipantTalk, TalkSnapshot, TalkTracker


def _p(snap: TalkSnapshot, pid: str) -> ParticipantTalk:
    p = snap.participant(pid)
    assert p is not None, pid
    return p


# A: 1-5, 13-14, 15-16, 19-20; B: 4-9 (talks over A, who stops 1 s later);
# C: 15.5-15.8 (a backchannel over A, who goes on).
SCRIPT = [
    ("A", 1.0, 5.0),
    ("B", 4.0, 9.0),
    ("A", 13.0, 14.0),
    ("A", 15.0, 16.0),
    ("C", 15.5, 15.8),
    ("A", 19.0, 20.0),
]


def _tracker(script: list[tuple[str, float, float]], **kw: float) -> TalkTracker:
    tracker = TalkTracker(0.0, **kw)
    for pid, start, end in script:
        tracker.add_interval(pid, start, end)
    return tracker


@pytest.mark.unit
def test_scripted_meeting_statistics() -> None:
    snap = _tracker(SCRIPT).snapshot(25.0)
    a, b, c = _p(snap, "A"), _p(snap, "B"), _p(snap, "C")
    # talk time and share: overlap counts for each speaker, shares sum to 1
    assert (a.talk_secs, b.talk_secs, c.talk_secs) == pytest.approx((7.0, 5.0, 0.3))
    assert snap.talk_secs == pytest.approx(12.3)
    assert a.talk_share == pytest.approx(7.0 / 12.3)
    assert b.talk_share == pytest.approx(5.0 / 12.3)
    assert sum(p.talk_share for p in snap.participants) == pytest.approx(1.0)
    # meeting time: speech [1,9] [13,14] [15,16] [19,20] = 11 s of 25
    assert snap.duration_secs == 25.0 and snap.start_ts == 0.0 and snap.ts == 25.0
    assert snap.speech_secs == pytest.approx(11.0)
    assert snap.silence_secs == pytest.approx(14.0)
    # overlap: [4,5] and [15.5,15.8]
    assert snap.overlap_secs == pytest.approx(1.3)
    assert (a.overlap_secs, b.overlap_secs, c.overlap_secs) == pytest.approx((1.3, 1.0, 0.3))
    assert (a.overlaps, b.overlaps, c.overlaps) == (0, 1, 1)
    assert snap.overlaps == 2
    # B talked over A and A stopped 1 s later; C's backchannel did not stop A
    assert (a.interruptions, b.interruptions, c.interruptions) == (0, 1, 0)
    assert (a.interrupted, b.interrupted, c.interrupted) == (1, 0, 0)
    assert snap.interruptions == 1
    # silences 0-1, 9-13 (long), 14-15, 16-19 (long, exactly 3 s), 20-25 (long, ongoing)
    assert snap.long_silences == 3
    assert snap.longest_silence_secs == pytest.approx(5.0)
    assert snap.current_silence_secs == pytest.approx(5.0)
    # turns: A at 1; B when A stops at 5 (dated 4); A at 13 (B held the floor);
    # A resuming at 15 after 1 s is the same turn; A at 19 after 3 s is a new one
    assert (a.turns, b.turns, c.turns) == (3, 1, 0)
    assert snap.turns == 4
    assert a.longest_turn_secs == pytest.approx(4.0)  # 1-5 (13-16 is 3 s)
    assert b.longest_turn_secs == pytest.approx(5.0)  # 4-9
    assert c.longest_turn_secs == 0.0
    assert (a.speech_runs, b.speech_runs, c.speech_runs) == (4, 1, 1)
    assert snap.floor_holder == "A" and a.has_floor and not b.has_floor
    assert snap.current_speakers == ()
    assert all(p.is_present and not p.is_speaking for p in snap.participants)
    assert [p.participant_id for p in snap.participants] == ["A", "B", "C"]
    assert snap.participant("Z") is None


@pytest.mark.unit
def test_partial_intervals_counted_up_to_now() -> None:
    tracker = _tracker(SCRIPT)
    snap = tracker.snapshot(6.0)
    a, b = _p(snap, "A"), _p(snap, "B")
    assert (a.talk_secs, b.talk_secs) == pytest.approx((4.0, 2.0))
    assert snap.current_speakers == ("B",)
    assert b.is_speaking and b.has_floor and not a.is_speaking
    assert b.longest_turn_secs == pytest.approx(2.0)  # open turn 4-6
    assert b.interruptions == 1 and a.interrupted == 1
    assert snap.speech_secs == pytest.approx(5.0)
    assert snap.silence_secs == pytest.approx(1.0)
    assert snap.overlap_secs == pytest.approx(1.0)
    assert snap.current_silence_secs == 0.0
    assert snap.long_silences == 0
    assert snap.participant("C") is None  # C's interval is still in the future
    # the final snapshot is unaffected by the earlier one
    assert tracker.snapshot(25.0).talk_secs == pytest.approx(12.3)


@pytest.mark.unit
def test_overlap_seen_before_it_is_confirmed() -> None:
    tracker = TalkTracker(0.0)
    tracker.speaking_started("A", 1.0)
    tracker.speaking_started("B", 2.0)
    early = tracker.snapshot(2.1)  # overlapping for 0.1 s only
    assert _p(early, "B").overlaps == 0
    assert early.overlap_secs == pytest.approx(0.1)
    assert early.current_speakers == ("A", "B") and early.floor_holder == "A"
    assert _p(tracker.snapshot(2.3), "B").overlaps == 1


@pytest.mark.unit
def test_three_way_overlap_floor_passes_to_earliest_starter() -> None:
    # A 0-4.5; B 3-5 over A; C 4-8 over A and B
    snap = _tracker([("A", 0.0, 4.5), ("B", 3.0, 5.0), ("C", 4.0, 8.0)]).snapshot(8.0)
    a, b, c = _p(snap, "A"), _p(snap, "B"), _p(snap, "C")
    assert (a.talk_secs, b.talk_secs, c.talk_secs) == pytest.approx((4.5, 2.0, 4.0))
    assert (a.overlap_secs, b.overlap_secs, c.overlap_secs) == pytest.approx((1.5, 2.0, 1.0))
    assert snap.overlap_secs == pytest.approx(2.0)
    assert snap.speech_secs == pytest.approx(8.0) and snap.silence_secs == pytest.approx(0.0)
    assert (b.overlaps, c.overlaps) == (1, 1)
    # C's start is one interruption though both A and B stopped under it
    assert (a.interruptions, b.interruptions, c.interruptions) == (0, 1, 1)
    assert (a.interrupted, b.interrupted, c.interrupted) == (2, 1, 0)
    assert (a.turns, b.turns, c.turns) == (1, 1, 1)
    # B's turn runs from its start (3) to its stop (5); C's from 4 to 8
    assert (a.longest_turn_secs, b.longest_turn_secs, c.longest_turn_secs) == pytest.approx(
        (4.5, 2.0, 4.0)
    )
    assert snap.floor_holder == "C"


@pytest.mark.unit
def test_quick_handover_and_short_backchannel_are_not_interruptions() -> None:
    # B answers 60 ms before A's padded end; D's 0.1 s "mm" does not count as an overlap
    script = [("A", 0.0, 2.03), ("B", 1.97, 4.0), ("A", 4.0, 6.0), ("D", 5.0, 5.1)]
    snap = _tracker(script).snapshot(6.0)
    a, b, d = _p(snap, "A"), _p(snap, "B"), _p(snap, "D")
    assert snap.overlap_secs == pytest.approx(0.16)  # raw overlap time still counts
    assert snap.overlaps == 0 and snap.interruptions == 0
    assert (a.interrupted, b.interrupted) == (0, 0)
    # B takes the floor when A stops; A at 4.0 exactly as B stops: no overlap, a new turn
    assert (a.turns, b.turns, d.turns) == (2, 1, 0)
    assert b.longest_turn_secs == pytest.approx(4.0 - 1.97)
    assert snap.floor_holder == "A"


@pytest.mark.unit
def test_join_leave_and_holder_leaving() -> None:
    tracker = TalkTracker(0.0)
    tracker.joined("D", 0.0)
    tracker.joined("E", 0.0)
    tracker.speaking_started("E", 2.0)
    tracker.left("E", 5.0)  # leaves mid-sentence: the interval closes at 5
    tracker.speaking_stopped("E", 5.3)  # the pipeline's late stop is ignored
    snap = tracker.snapshot(10.0)
    d, e = _p(snap, "D"), _p(snap, "E")
    assert d.is_present and d.talk_secs == 0.0 and d.talk_share == 0.0 and d.turns == 0
    assert not e.is_present and not e.is_speaking
    assert e.talk_secs == pytest.approx(3.0) and e.talk_share == 1.0
    assert e.turns == 1 and e.longest_turn_secs == pytest.approx(3.0)
    assert snap.floor_holder is None and not e.has_floor
    assert snap.speech_secs == pytest.approx(3.0) and snap.silence_secs == pytest.approx(7.0)
    assert snap.long_silences == 1  # 0-2 is short; 5-10 is long and ongoing
    # D then speaks: D takes the floor from nobody
    tracker.speaking_started("D", 11.0)
    snap = tracker.snapshot(12.0)
    assert snap.floor_holder == "D" and _p(snap, "D").turns == 1
    assert snap.long_silences == 1 and snap.longest_silence_secs == pytest.approx(6.0)


@pytest.mark.unit
def test_empty_meeting_and_duplicate_events() -> None:
    tracker = TalkTracker(100.0)
    snap = tracker.snapshot(104.0)
    assert snap.participants == () and snap.talk_secs == 0.0
    assert snap.silence_secs == pytest.approx(4.0) and snap.long_silences == 1
    assert snap.current_silence_secs == pytest.approx(4.0)
    tracker.speaking_started("A", 105.0)
    tracker.speaking_started("A", 105.5)  # already speaking: ignored
    tracker.speaking_stopped("B", 105.7)  # never started: ignored
    snap = tracker.snapshot(106.0)
    assert _p(snap, "A").speech_runs == 1 and _p(snap, "A").talk_secs == pytest.approx(1.0)
    assert snap.participant("B") is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.turns = 3  # type: ignore[misc]
    with pytest.raises(ValueError):
        TalkTracker(0.0, min_overlap_secs=3.0, interrupt_secs=2.0)


@pytest.mark.unit
def test_out_of_order_events_give_the_same_result() -> None:
    events = [(pid, ts, kind) for pid, s, e in SCRIPT for ts, kind in ((s, "start"), (e, "stop"))]
    expected = _tracker(SCRIPT).snapshot(25.0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        # each participant's own events stay in order, as one pipeline sends them;
        # across participants they arrive shuffled by up to a few seconds
        order = sorted(range(len(events)), key=lambda i: events[i][1] + rng.uniform(0, 3))
        by_pid: dict[str, list[int]] = {}
        for i in order:
            by_pid.setdefault(events[i][0], []).append(i)
        queues = {pid: sorted(ix, key=lambda i: events[i][1]) for pid, ix in by_pid.items()}
        tracker = TalkTracker(0.0)
        for i in order:
            pid, ts, kind = events[queues[events[i][0]].pop(0)]
            if kind == "start":
                tracker.speaking_started(pid, ts)
            else:
                tracker.speaking_stopped(pid, ts)
        assert tracker.snapshot(25.0) == expected


@pytest.mark.unit
def test_memory_bounded_and_late_events_clamped() -> None:
    tracker = TalkTracker(0.0)
    for k in range(5000):  # A and B alternate 1 s each with 0.5 s gaps for 2 hours
        pid = "AB"[k % 2]
        tracker.add_interval(pid, 1.5 * k, 1.5 * k + 1.0)
        if k % 100 == 0:
            tracker.snapshot(1.5 * k + 1.0)
        assert len(tracker._events) < 30
    snap = tracker.snapshot(7500.0)
    assert snap.talk_secs == pytest.approx(5000.0)
    assert _p(snap, "A").talk_share == pytest.approx(0.5)
    assert snap.turns == 5000 and snap.long_silences == 0
    assert snap.silence_secs == pytest.approx(2500.0)
    # an event older than the settle window is clamped to the folded clock
    tracker.add_interval("C", 10.0, 7490.5 + 1.0)
    late = tracker.snapshot(7500.0)
    assert _p(late, "C").talk_secs <= 16.0
