"""Tests for VoicePipeline on espeak-ng speech delivered as aiortc-like audio frames."""

from __future__ import annotations

import tracemalloc

import av
import numpy as np
import pytest

from analyzers.voice.audio import SAMPLE_RATE, AudioChunk
from analyzers.voice.pipeline import (
    SpeakingChanged,
    VoicedSegment,
    VoiceEvent,
    VoicePipeline,
    emotion_pieces,
)
from analyzers.voice.prosody import WARMUP_SEGMENTS
from analyzers.voice.synth import espeak_speech, to_audio_frames

SR = SAMPLE_RATE
TS0 = 100.0  # media time of the first frame
PTS0 = int(TS0 * 48_000)
LONG_TEXT = (
    "Let us look at the quarterly numbers first and then talk about the new release "
    "plan for next month in detail"
)


def _silence(secs: float) -> np.ndarray:
    return np.zeros(int(secs * SR), dtype=np.float32)


def _span(y: np.ndarray, threshold: float = 0.02) -> tuple[float, float]:
    """Where the speech in ``y`` is: first and last sample above ``threshold``, seconds."""
    idx = np.flatnonzero(np.abs(y) > threshold)
    return idx[0] / SR, (idx[-1] + 1) / SR


def _run(
    pipeline: VoicePipeline, frames: list[av.AudioFrame]
) -> tuple[list[VoiceEvent], list[tuple[float, bool]]]:
    """Feed every frame, then close; returns the events and (frame ts, is_speaking)."""
    events: list[VoiceEvent] = []
    states: list[tuple[float, bool]] = []
    for frame in frames:
        events += pipeline.feed(frame)
        assert frame.pts is not None
        states.append((frame.pts / frame.sample_rate, pipeline.is_speaking))
    events += pipeline.close()
    return events, states


def _changes(events: list[VoiceEvent]) -> list[SpeakingChanged]:
    return [e for e in events if isinstance(e, SpeakingChanged)]


def _segments(events: list[VoiceEvent]) -> list[VoicedSegment]:
    return [e for e in events if isinstance(e, VoicedSegment)]


@pytest.fixture(scope="module")
def sentence() -> np.ndarray:
    return espeak_speech("Hello everyone thanks for joining the meeting today")


@pytest.fixture(scope="module")
def reply() -> np.ndarray:
    return espeak_speech("We should ship it next week", pitch=30)


@pytest.fixture(scope="module")
def long_utterance() -> np.ndarray:
    return espeak_speech(LONG_TEXT)


@pytest.fixture(scope="module")
def hi() -> np.ndarray:
    return espeak_speech("hi")


@pytest.mark.model
def test_speech_layout_48k_stereo_frames(sentence: np.ndarray, reply: np.ndarray) -> None:
    parts = [_silence(1.0), sentence, _silence(2.0), reply, _silence(1.5)]
    audio = np.concatenate(parts)
    starts = np.cumsum([0] + [len(p) for p in parts]) / SR
    spans = []
    for k, y in ((1, sentence), (3, reply)):
        a, b = _span(y)
        spans.append((TS0 + starts[k] + a, TS0 + starts[k] + b))
    frames = to_audio_frames(audio, start_pts=PTS0)
    assert frames[0].format.name == "s16" and frames[0].layout.name == "stereo"
    assert frames[0].samples == 960 and frames[0].sample_rate == 48_000
    pipeline = VoicePipeline("alice")
    events, states = _run(pipeline, frames)

    changes = _changes(events)
    assert [c.is_speaking for c in changes] == [True, False, True, False]
    for (on, off), (a, b) in zip(zip(changes[::2], changes[1::2], strict=True), spans, strict=True):
        assert abs(on.ts - a) < 0.3, (on, a)
        assert abs(off.ts - b) < 0.3, (off, b)
        # the VAD decides late, and says so: detected_ts is the audio processed by then
        assert 0.1 < on.detected_ts - on.ts < 0.45
        assert 0.2 < off.detected_ts - off.ts < 0.45
        assert on.participant_id == off.participant_id == "alice"
    # is_speaking during each utterance (after the VAD lag) and never in the silences
    for a, b in spans:
        inside = [s for t, s in states if a + 0.5 <= t <= b - 0.1]
        assert inside and all(inside)
    gaps = [(TS0, spans[0][0]), (spans[0][1] + 0.5, spans[1][0]), (spans[1][1] + 0.5, 1e9)]
    for a, b in gaps:
        outside = [s for t, s in states if a <= t <= b]
        assert outside and not any(outside)

    segments = _segments(events)
    assert len(segments) == 2
    for seg, (a, b) in zip(segments, spans, strict=True):
        assert abs(seg.start_ts - a) < 0.3 and abs(seg.end_ts - b) < 0.3
        assert seg.is_run_end
        assert seg.arousal is None  # baseline still warming up
        assert seg.prosody.f0_hz is not None and 65 < seg.prosody.f0_hz < 400
        assert seg.prosody.loudness_dbfs > -40
        assert len(seg.emotion_chunks) == 1  # 1.6-3 s utterances: one piece each
        chunk = seg.emotion_chunks[0]
        assert chunk.ts == pytest.approx(seg.start_ts, abs=1e-3)
        assert chunk.duration_secs == pytest.approx(seg.duration_secs, abs=2e-3)
        assert chunk.samples.dtype == np.float32 and chunk.participant_id == "alice"
    expected_talk = sum(b - a for a, b in spans)
    assert pipeline.talk_secs == pytest.approx(expected_talk, abs=0.4)
    assert pipeline.talk_secs == pytest.approx(sum(s.duration_secs for s in segments))

    stats = pipeline.stats()
    assert stats.frames == len(frames) and stats.dropped_frames == 0 and stats.resyncs == 0
    assert stats.speech_runs == 2 and stats.analysed_segments == 2 and stats.emotion_chunks == 2
    assert stats.audio_secs == pytest.approx(len(audio) / SR, abs=1e-3)
    assert stats.stream_ts == pytest.approx(TS0 + len(audio) / SR, abs=1e-3)
    assert not pipeline.is_speaking


@pytest.mark.model
@pytest.mark.parametrize("kind", ["silence", "zeros", "noise"])
def test_no_speech_in_silence_zeros_or_noise(kind: str) -> None:
    rng = np.random.default_rng(0)
    if kind == "silence":  # a quiet room, not digital silence
        audio = rng.normal(0.0, 1e-3, 4 * SR).astype(np.float32)
    elif kind == "zeros":  # a muted track
        audio = _silence(4.0)
    else:
        audio = (0.05 * rng.uniform(-1, 1, 4 * SR)).astype(np.float32)
    pipeline = VoicePipeline("bob")
    events, states = _run(pipeline, to_audio_frames(audio, start_pts=PTS0))
    assert events == []
    assert not any(s for _, s in states)
    stats = pipeline.stats()
    assert stats.talk_secs == 0.0 and stats.speech_runs == 0
    if kind == "zeros":
        # digital silence skips the model after a few chunks
        assert stats.vad_skipped_chunks > 100 and stats.vad_model_calls <= 5
    else:
        assert stats.vad_skipped_chunks == 0


@pytest.mark.model
def test_all_zero_frames_between_speech_like_a_muted_track(sentence: np.ndarray) -> None:
    frames = to_audio_frames(
        np.concatenate([sentence, _silence(3.0), sentence, _silence(1.0)]), start_pts=PTS0
    )
    zero = np.zeros((1, 2 * 960), dtype=np.int16)
    first_mute = int(len(sentence) / SR / 0.02) + 10
    for i in range(first_mute, first_mute + 100):  # aiortc-style silent frames, same pts
        silent = av.AudioFrame.from_ndarray(zero, format="s16", layout="stereo")
        silent.sample_rate = 48_000
        silent.pts, silent.time_base = frames[i].pts, frames[i].time_base
        frames[i] = silent
    events, _ = _run(VoicePipeline("carol"), frames)
    assert [c.is_speaking for c in _changes(events)] == [True, False, True, False]
    assert len(_segments(events)) == 2


@pytest.mark.model
def test_six_second_utterance_gives_emotion_pieces_of_1_to_4_secs(
    long_utterance: np.ndarray,
) -> None:
    a, b = _span(long_utterance)
    assert b - a > 5.5
    audio = np.concatenate([_silence(0.5), long_utterance, _silence(1.0)])
    events, _ = _run(VoicePipeline("dave"), to_audio_frames(audio, start_pts=PTS0))
    segments = _segments(events)
    assert len(segments) == 1
    seg = segments[0]
    assert seg.duration_secs > 5.5
    pieces = seg.emotion_chunks
    assert len(pieces) == 2
    for piece in pieces:
        assert SR <= len(piece.samples) <= 4 * SR
        assert 1.0 <= piece.duration_secs <= 4.0
    # contiguous, covering the segment
    assert pieces[0].ts == pytest.approx(seg.start_ts, abs=1e-3)
    assert pieces[1].ts == pytest.approx(pieces[0].end_ts, abs=1e-6)
    assert pieces[1].end_ts == pytest.approx(seg.end_ts, abs=2e-3)


@pytest.mark.model
def test_long_run_is_cut_while_it_lasts(long_utterance: np.ndarray) -> None:
    audio = np.concatenate([_silence(0.5), long_utterance, _silence(1.0)])
    pipeline = VoicePipeline("erin", max_segment_secs=4.0, ring_capacity_secs=8.0)
    events, _ = _run(pipeline, to_audio_frames(audio, start_pts=PTS0))
    changes = _changes(events)
    segments = _segments(events)
    assert [c.is_speaking for c in changes] == [True, False]  # one speech run
    assert [s.is_run_end for s in segments] == [False, True]
    first, last = segments
    assert first.duration_secs == pytest.approx(4.0)
    assert first.detected_ts < changes[1].detected_ts  # emitted while still speaking
    assert last.start_ts == pytest.approx(first.end_ts)
    assert last.end_ts == changes[1].ts
    assert last.duration_secs >= 1.0
    for seg in segments:
        assert all(1.0 <= c.duration_secs <= 4.0 for c in seg.emotion_chunks)
    assert pipeline.talk_secs == pytest.approx(changes[1].ts - changes[0].ts)
    with pytest.raises(ValueError):
        VoicePipeline("x", max_segment_secs=8.0, ring_capacity_secs=8.0)


@pytest.mark.model
def test_short_hi_gives_no_emotion_piece(hi: np.ndarray) -> None:
    audio = np.concatenate([_silence(0.5), hi, _silence(1.0)])
    events, _ = _run(VoicePipeline("fay"), to_audio_frames(audio, start_pts=PTS0))
    segments = _segments(events)
    assert len(segments) == 1
    assert segments[0].duration_secs < 1.0
    assert segments[0].emotion_chunks == ()
    assert [c.is_speaking for c in _changes(events)] == [True, False]


@pytest.mark.model
@pytest.mark.parametrize(
    ("rate", "layout", "fmt"),
    [(44_100, "stereo", "fltp"), (16_000, "mono", "s16"), (48_000, "stereo", "s16p")],
)
def test_other_rates_layouts_and_planar_formats(
    sentence: np.ndarray, rate: int, layout: str, fmt: str
) -> None:
    audio = np.concatenate([_silence(1.0), sentence, _silence(1.0)])
    a, b = _span(sentence)
    frames = to_audio_frames(audio, rate, layout, fmt, start_pts=int(TS0 * rate))
    assert frames[0].format.name == fmt and frames[0].sample_rate == rate
    events, _ = _run(VoicePipeline("gus"), frames)
    changes = _changes(events)
    assert [c.is_speaking for c in changes] == [True, False]
    assert abs(changes[0].ts - (TS0 + 1.0 + a)) < 0.3
    assert abs(changes[1].ts - (TS0 + 1.0 + b)) < 0.3


@pytest.mark.model
def test_format_change_mid_stream_and_explicit_ts(sentence: np.ndarray) -> None:
    audio = np.concatenate([_silence(1.0), sentence, _silence(1.0)])
    half = len(audio) // 2 // 320 * 320
    first = to_audio_frames(audio[:half], start_pts=PTS0)
    second = to_audio_frames(audio[half:], 44_100, "mono", "flt")
    pipeline = VoicePipeline("hal")
    events: list[VoiceEvent] = []
    for frame in first:
        events += pipeline.feed(frame)
    ts = TS0 + half / SR
    for frame in second:  # pts restart at 0: the caller's ts wins
        events += pipeline.feed(frame, ts=ts)
        ts += frame.samples / frame.sample_rate
    events += pipeline.close()
    stats = pipeline.stats()
    assert stats.resamplers == 2 and stats.resyncs == 0 and stats.filled_gaps == 0
    assert [c.is_speaking for c in _changes(events)] == [True, False]
    assert stats.audio_secs == pytest.approx(len(audio) / SR, abs=2e-3)


@pytest.mark.model
def test_packet_loss_duplicates_and_clock_jumps(sentence: np.ndarray) -> None:
    audio = np.concatenate([_silence(1.0), sentence, _silence(1.0)])
    frames = to_audio_frames(audio, start_pts=PTS0)
    # lose every 25th frame (2 % loss) and repeat one frame
    lossy = [f for i, f in enumerate(frames) if i % 25 != 7]
    lossy.insert(40, lossy[39])
    pipeline = VoicePipeline("ivy")
    events, _ = _run(pipeline, lossy)
    stats = pipeline.stats()
    assert stats.dropped_frames == 1
    assert stats.filled_gaps == len(frames) // 25 + (len(frames) % 25 > 7)
    assert stats.filled_secs == pytest.approx(0.02 * stats.filled_gaps, abs=1e-3)
    assert stats.stream_ts == pytest.approx(TS0 + len(audio) / SR, abs=2e-3)
    assert stats.resyncs == 0
    a, b = _span(sentence)
    changes = _changes(events)
    assert changes[0].is_speaking and abs(changes[0].ts - (TS0 + 1.0 + a)) < 0.3
    assert not changes[-1].is_speaking and abs(changes[-1].ts - (TS0 + 1.0 + b)) < 0.3

    # the clock jumps 60 s ahead mid-speech: the run ends, the timeline follows
    pipeline = VoicePipeline("jo")
    cut = int((1.0 + a + 1.0) / 0.02)
    events = []
    for frame in frames[:cut]:
        events += pipeline.feed(frame)
    assert pipeline.is_speaking
    jump_ts = TS0 + 60.0
    events += pipeline.feed(frames[cut], ts=jump_ts)
    changes = _changes(events)
    assert [c.is_speaking for c in changes] == [True, False]
    assert changes[1].ts < TS0 + cut * 0.02 + 0.05
    assert pipeline.stats().resyncs == 1
    assert pipeline.stream_ts == pytest.approx(jump_ts + 0.02, abs=2e-3)
    assert pipeline.ring.end_ts == pytest.approx(jump_ts + 0.02, abs=2e-3)
    # ... and 80 s back: a fresh ring on the new timeline
    events = pipeline.feed(frames[cut + 1], ts=TS0 - 20.0)
    assert pipeline.stats().resyncs == 2
    assert pipeline.ring.start_ts == pytest.approx(TS0 - 20.0)
    assert len(pipeline.ring) <= 320


@pytest.mark.model
def test_memory_bounded_over_five_minutes_and_arousal_after_warmup(
    sentence: np.ndarray, reply: np.ndarray
) -> None:
    """5 min of audio fed as fast as possible; mostly muted, so the VAD model rarely runs."""
    block = np.concatenate([sentence, _silence(1.0), 0.5 * reply, _silence(30.0)])
    block = block[: 30 * SR]  # a speaker who talks ~5 s every 30 s
    frames = to_audio_frames(block)
    pipeline = VoicePipeline("kim", ring_capacity_secs=10.0)
    # (arousal, loudness, duration) only: keeping the events would keep their audio
    segments: list[tuple[float | None, float, float]] = []
    traced = []
    try:
        for k in range(10):
            if k == 7:  # trace the last blocks only: tracing slows numpy down
                tracemalloc.start()
            base = TS0 + 30.0 * k
            for frame in frames:
                assert frame.pts is not None
                for event in pipeline.feed(frame, ts=base + frame.pts / 48_000):
                    if isinstance(event, VoicedSegment):
                        loudness = event.prosody.loudness_dbfs
                        segments.append((event.arousal, loudness, event.duration_secs))
            if k >= 7:
                traced.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    stats = pipeline.stats()
    assert stats.audio_secs == pytest.approx(300.0, abs=0.01)
    assert stats.ring_capacity_secs == 10.0
    assert stats.ring_stored_secs == pytest.approx(10.0)
    assert stats.ring_nbytes == 10 * SR * 4
    assert len(pipeline.ring) == pipeline.ring.capacity
    # no growth after the first block (the ring, the VAD and the resampler are all bounded)
    assert max(traced) - traced[0] < 64 * 1024, traced
    assert len(segments) == 20 and stats.speech_runs == 20
    assert [a is None for a, _, _ in segments[:WARMUP_SEGMENTS]] == [True] * WARMUP_SEGMENTS
    warm = [a for a, _, _ in segments[WARMUP_SEGMENTS:]]
    assert all(a is not None for a in warm)
    # segments alternate sentence, reply; the reply is quieter and lower, so once
    # the baseline is warm it reads as less aroused
    sentence_arousal = [a for a, _, _ in segments[WARMUP_SEGMENTS + 1 :: 2]]
    reply_arousal = [a for a, _, _ in segments[WARMUP_SEGMENTS::2]]
    assert all(a is not None and a > 0 for a in sentence_arousal), sentence_arousal
    assert all(a is not None and a < 0 for a in reply_arousal), reply_arousal
    assert stats.talk_secs == pytest.approx(sum(d for _, _, d in segments))


@pytest.mark.model
def test_feed_samples_matches_frames(sentence: np.ndarray) -> None:
    audio = np.concatenate([_silence(1.0), sentence, _silence(1.0)])
    by_frames, _ = _run(VoicePipeline("lou"), to_audio_frames(audio, start_pts=PTS0))
    pipeline = VoicePipeline("lou")
    by_samples = pipeline.feed_samples(audio, TS0) + pipeline.close()
    assert [type(e) for e in by_samples] == [type(e) for e in by_frames]
    for x, y in zip(_changes(by_samples), _changes(by_frames), strict=True):
        assert x.ts == pytest.approx(y.ts, abs=0.04)
    assert pipeline.feed_samples(np.zeros(0, np.float32)) == []


@pytest.mark.unit
def test_emotion_pieces_equal_and_in_bounds() -> None:
    def lengths(secs: float) -> list[int]:
        chunk = AudioChunk("p", 5.0, np.zeros(int(round(secs * SR)), np.float32))
        pieces = emotion_pieces(chunk)
        ts = 5.0
        for piece in pieces:
            assert piece.ts == pytest.approx(ts) and piece.participant_id == "p"
            ts = piece.end_ts
        return [len(p.samples) for p in pieces]

    assert lengths(0.999) == []
    assert lengths(1.0) == [SR]
    assert lengths(4.0) == [4 * SR]
    assert lengths(6.0) == [3 * SR, 3 * SR]
    assert lengths(8.5) == [45_334, 45_333, 45_333]
    for secs in np.arange(1.0, 20.0, 0.37):
        got = lengths(float(secs))
        assert sum(got) == int(round(secs * SR))
        assert all(SR <= n <= 4 * SR for n in got)
        assert max(got) - min(got) <= 1
    with pytest.raises(ValueError):
        emotion_pieces(AudioChunk("p", 0.0, np.zeros(SR, np.float32)), 1.0, 1.5)


@pytest.mark.model
def test_advance_ends_speech_when_frames_stop(sentence: np.ndarray) -> None:
    frames = to_audio_frames(np.concatenate([_silence(0.5), sentence]), start_pts=PTS0)
    half = len(frames) // 2
    pipeline = VoicePipeline("max")
    events: list[VoiceEvent] = []
    for frame in frames[:half]:
        events += pipeline.feed(frame)
    assert pipeline.is_speaking
    last_ts = TS0 + half * 0.02
    assert pipeline.advance(last_ts - 1.0) == []  # nothing missing yet
    events = pipeline.advance(last_ts + 2.0)  # the reader waited 2 s for a frame
    assert not pipeline.is_speaking
    changes = _changes(events)
    assert [c.is_speaking for c in changes] == [False]
    assert last_ts - 0.1 < changes[0].ts <= last_ts + 0.05
    assert len(_segments(events)) == 1
    assert pipeline.stream_ts == pytest.approx(last_ts + 2.0, abs=2e-3)
    assert pipeline.advance(last_ts + 60.0) == []  # a long wait: resync, nothing to end
    assert pipeline.stats().resyncs == 1
    assert VoicePipeline("new").advance(5.0) == []
