"""The load governor: one face rate for every feed, lowered evenly when readings come late.

Also the send requests that follow it (what browsers are asked to send) and the answer's
Opus DTX request.
"""

from __future__ import annotations

import pytest

from bot.load import BUSY_TEXT, MAX_DETECT_SECS, LoadGovernor, SendRequest, send_request
from bot.sources.browser import prefer_dtx

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def governor(clock: Clock, fps: float = 15.0) -> LoadGovernor:
    return LoadGovernor(fps, latency_budget_ms=400, min_fps=0.25, clock=clock, wall=clock)


def feed_frames(gov: LoadGovernor, clock: Clock, feeds: list[object], fps: float, lag: float,
                secs: float) -> None:  # fmt: skip
    """``feeds`` each read ``fps`` frames a second for ``secs``, each ``lag`` s after arrival."""
    step = 1 / fps
    end = clock.now + secs
    while clock.now < end:
        clock.now += step
        for feed in feeds:
            gov.face_read(feed, clock.now - lag, clock.now - lag, clock.now - lag)


def test_late_readings_lower_every_feed_evenly_and_say_busy() -> None:
    clock = Clock()
    gov = governor(clock)
    feeds = [object() for _ in range(3)]
    for feed in feeds:
        gov.feed_started(feed)
    # The machine sustains 4 analyses a second per feed, each 1.5 s late.
    feed_frames(gov, clock, feeds, fps=4, lag=1.5, secs=6)
    report = gov.control()
    assert gov.granted == pytest.approx(0.8 * 4, rel=0.1)  # 80 % of what was achieved
    assert report.busy and report.text == BUSY_TEXT
    assert report.feeds == 3
    assert report.face_fps_min == report.face_fps_mean == pytest.approx(4, rel=0.1)
    assert report.lag_ms_p95 == pytest.approx(1500)
    # Every feed gets the same cap; a feed with no face asks for less and keeps it.
    assert gov.face_fps(15) == gov.granted and gov.face_fps(2) == 2
    # The detector keeps its share: its interval grows with the reduction, capped.
    assert gov.detect_interval(1.0) == pytest.approx(15 / gov.granted)
    assert gov.detect_interval(1.0) <= MAX_DETECT_SECS


def test_prompt_readings_bring_the_rate_back_and_the_notice_goes() -> None:
    clock = Clock()
    gov = governor(clock)
    feed = object()
    gov.feed_started(feed)
    gov.granted = 1.0
    reports = []
    for _ in range(30):
        feed_frames(gov, clock, [feed], fps=gov.granted, lag=0.05, secs=1)
        reports.append(gov.control())
    assert gov.granted == 15.0
    assert not reports[-1].busy and reports[-1].text == ""
    assert reports[0].busy
    assert gov.detect_interval(1.0) == 1.0


def test_the_rate_never_falls_below_the_floor_and_a_young_feed_does_not_set_it() -> None:
    clock = Clock()
    gov = governor(clock)
    feed = object()
    gov.feed_started(feed)
    # Two seconds in, very late: the cap falls from itself, not from the young feed's rate.
    feed_frames(gov, clock, [feed], fps=2, lag=5.0, secs=2)
    gov.control()
    assert gov.granted == pytest.approx(0.8 * 15)
    for _ in range(40):
        feed_frames(gov, clock, [feed], fps=2, lag=5.0, secs=1)
        gov.control()
    assert gov.granted == 0.25


def test_no_readings_no_change_and_ended_feeds_leave_the_figures() -> None:
    clock = Clock()
    gov = governor(clock)
    feed = object()
    gov.feed_started(feed)
    clock.now += 10
    report = gov.control()
    assert gov.granted == 15.0 and report.lag_ms_p95 is None and not report.busy
    gov.feed_ended(feed)
    assert gov.control().feeds == 0


def test_send_requests_follow_the_granted_rate_with_hysteresis() -> None:
    full = send_request(15, 15, None)
    assert full == SendRequest(max_fps=15, max_height=480, max_kbps=900)
    low = send_request(2.5, 15, full)
    assert (low.max_fps, low.max_height) == (4, 240)
    assert send_request(0.25, 15, low).max_fps == 3  # never below 3 frames a second
    # Between the thresholds the size stays what it was.
    assert send_request(5, 15, low).max_height == 240  # 8 a second: between the thresholds
    assert send_request(5, 15, full).max_height == 480
    assert send_request(7, 15, low).max_height == 480  # 11 a second
    # A meeting's video shares a budget: 49 cameras in 8 Mbit/s get 240 lines at 8 a second.
    crowd = send_request(15, 15, None, feeds=49, budget_kbps=8000)
    assert crowd == SendRequest(max_fps=8, max_height=240, max_kbps=160)
    assert send_request(15, 15, None, feeds=4, budget_kbps=8000).max_height == 480


def test_the_answer_asks_for_opus_dtx() -> None:
    answer = "\r\n".join(
        [
            "v=0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 96 9",
            "a=rtpmap:96 opus/48000/2",
            "a=rtpmap:9 G722/8000",
            "m=video 9 UDP/TLS/RTP/SAVPF 97",
            "a=rtpmap:97 VP8/90000",
            "",
        ]
    )
    munged = prefer_dtx(answer)
    assert "a=rtpmap:96 opus/48000/2\r\na=fmtp:96 usedtx=1\r\n" in munged
    assert munged.count("usedtx") == 1
    with_fmtp = answer.replace(
        "a=rtpmap:96 opus/48000/2\r\n", "a=rtpmap:96 opus/48000/2\r\na=fmtp:96 minptime=10\r\n"
    )
    assert "a=fmtp:96 minptime=10;usedtx=1\r\n" in prefer_dtx(with_fmtp)
    assert prefer_dtx(prefer_dtx(with_fmtp)) == prefer_dtx(with_fmtp)


def test_a_video_frame_leaves_the_jitter_buffer_with_its_marker_packet() -> None:
    from aiortc.rtp import RtpPacket

    from bot.sources.jitter import MarkerJitterBuffer

    def packet(seq: int, ts: int, payload: bytes, marker: bool) -> RtpPacket:
        p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts, marker=int(marker))
        p._data = payload  # type: ignore[attr-defined]  # what aiortc's depacketiser sets
        return p

    buffer = MarkerJitterBuffer(capacity=128, is_video=True)
    assert buffer.add(packet(1, 3000, b"a", False)) == (False, None)
    _, frame = buffer.add(packet(2, 3000, b"b", True))  # its last packet: out at once
    assert frame is not None and (frame.data, frame.timestamp) == (b"ab", 3000)
    # A gap holds the frame back until the missing packet comes.
    assert buffer.add(packet(4, 6000, b"d", True))[1] is None
    _, frame = buffer.add(packet(3, 6000, b"c", False))
    assert frame is not None and frame.data == b"cd"
    # A sender that marks nothing: complete when the next frame begins, as aiortc does.
    assert buffer.add(packet(5, 9000, b"e", False))[1] is None
    _, frame = buffer.add(packet(6, 12000, b"f", False))
    assert frame is not None and (frame.data, frame.timestamp) == (b"e", 9000)
