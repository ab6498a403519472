"""The server's load: one face-analysis rate for every feed, lowered evenly when busy.

Every analysed video feed asks the face analyzer for up to ``fps`` frames a second
(``idle_fps`` while no face is in view). Past the machine's capacity something has to
give; what gives is the rate, evenly, never the latency: newest frame wins, so a lower
rate means older frames are skipped, not queued.

:class:`LoadGovernor` holds one **granted rate** that caps every feed's rate. Once a
second (:meth:`LoadGovernor.control`) it looks at the **lag** of the face readings: the
time the server made each frame wait, i.e. how late the frame arrived from the network
and decoder (compared with the fastest frame of its track, see
:class:`~bot.tracks.MediaClock`) plus the time from taking it for analysis to its reading.
The time a frame sat as the newest one until the feed's next analysis was due is not
lag: it comes from the rates, not from a backlog, and counting it would make a low
rate look like overload. Control is additive-increase / multiplicative-decrease, as in
TCP congestion control:

* lag p95 above ``latency_budget_ms``: granted = max(``min_fps``, 0.8 x the rate the
  feeds achieved), since under overload the achieved rate, not the cap, is what the
  machine sustained;
* lag p95 below 70 % of the budget: granted grows by 20 % + 0.2 frames/s, up to ``fps``
  (from the floor back to 15 a second in about 15 s).

Lag is taken over the last ``LAG_WINDOW_SECS``, short enough that one decrease is seen
before the next decision; rates over ``window_secs``.

The server is **busy** while the granted rate is below 90 % of ``fps``: sidebars then say
"analysis rate reduced: server busy". The detector, which costs several followed frames,
keeps its share of the work: while the rate is reduced by a factor, the interval between
detector runs on a followed face grows by the same factor (at most ``MAX_DETECT_SECS``);
a face that is lost still makes the detector run at once.

Senders are asked for no more than the analysis uses (:func:`send_request`): a browser
gets the request over its control channel and caps its camera's encoder. Frames that
are never analysed then cost neither the network nor the decoder, which, with the
packets' encryption, is most of the server's own work per participant.

Each report (a :class:`~bot.types.LoadEvent`) also carries the achieved rates (minimum and
mean over feeds), the lag, speech-emotion runs, and the CPU and memory of this process
and its children (the inference workers). Event loop only.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from bot.types import LoadEvent

#: Lag samples kept (a few seconds of 49 feeds at 15 frames a second).
MAX_SAMPLES = 4096
#: How far back the lag is measured for a decision.
LAG_WINDOW_SECS = 2.0
#: The longest interval between detector runs on a followed face, however busy.
MAX_DETECT_SECS = 10.0
#: Busy below this share of the configured rate.
BUSY_SHARE = 0.9
#: What the sidebar says while busy.
BUSY_TEXT = "analysis rate reduced: server busy"


#: Frames a second a sender is asked for per face analysis a second: the newest frame
#: is then at most a third of an analysis interval old when it is taken.
SEND_FPS_PER_ANALYSIS = 1.5
#: The fewest frames a second a sender is asked for (a face that moves stays followable).
MIN_SEND_FPS = 3
#: Below this frame rate (what a feed would be asked for at 480 lines) webcams are asked
#: for 240 lines instead.
LOW_RES_BELOW_FPS = 6.0
#: ... and back to 480 lines only from this rate (hysteresis, so requests do not flap).
HIGH_RES_FROM_FPS = 10.0
#: VP8 kbit/s per frame a second at 480 and at 240 lines (a browser spends about 900
#: kbit/s on 640x480 at 15 frames a second).
KBPS_PER_FPS = {480: 60.0, 240: 20.0}


@dataclass(frozen=True, slots=True)
class SendRequest:
    """What a participant's camera is asked to send at most.

    ``max_height`` applies to webcams (a room camera keeps its full size: its faces are
    small); ``max_kbps`` is the encoder's bitrate cap for that size and rate.
    """

    max_fps: int
    max_height: int
    max_kbps: int


def send_request(
    granted_fps: float,
    configured_fps: float,
    previous: SendRequest | None,
    feeds: int = 1,
    budget_kbps: float = math.inf,
) -> SendRequest:
    """What to ask each sender for.

    Every one of ``feeds`` feeds may be analysed ``granted_fps`` times a second, and all
    video together may take ``budget_kbps``. The frame rate follows the analysis rate
    (:data:`SEND_FPS_PER_ANALYSIS`; at least :data:`MIN_SEND_FPS`, at most the
    configured face rate rounded up) and each feed's share of the budget. The budget
    keeps a meeting that fills up fast, before the analysis rate has been measured,
    from flooding the server with packets, whose reception costs it more than their
    decoding.

    Webcams are asked for 240 lines when that rate falls below
    :data:`LOW_RES_BELOW_FPS`, and for 480 again from :data:`HIGH_RES_FROM_FPS`. A
    webcam face is then about 100 px high: enough for the landmark (192 px input) and
    emotion (48 px) models; iris and gaze lose precision (measured in the README's
    capacity section). The bitrate cap is about what browsers spend on VP8 at that size
    and rate.
    """
    share = budget_kbps / max(1, feeds)
    want = min(math.ceil(configured_fps), math.ceil(SEND_FPS_PER_ANALYSIS * granted_fps))
    fps_480 = min(want, share / KBPS_PER_FPS[480])
    height = 480 if previous is None else previous.max_height
    if fps_480 < LOW_RES_BELOW_FPS:
        height = 240
    elif fps_480 >= HIGH_RES_FROM_FPS:
        height = 480
    fps = max(MIN_SEND_FPS, math.floor(min(want, share / KBPS_PER_FPS[height])))
    return SendRequest(max_fps=fps, max_height=height, max_kbps=round(fps * KBPS_PER_FPS[height]))


class LoadGovernor:
    """Shares the face-analysis capacity evenly between feeds (see the module docstring).

    Args:
        fps: The configured face rate (``analyzers.face_emotion.fps``).
        latency_budget_ms: Lag p95 above which the rate is lowered.
        min_fps: The granted rate never goes below this.
        window_secs: How far back rates and lag are measured.
        video_budget_kbps: All feeds' video together is asked to stay under this.
        clock: Monotonic seconds (injectable for tests).
        wall: Wall-clock seconds (the meeting clock).
    """

    def __init__(
        self,
        fps: float,
        latency_budget_ms: float = 400.0,
        min_fps: float = 1.0,
        window_secs: float = 5.0,
        video_budget_kbps: float = math.inf,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.fps = fps
        self.latency_budget_ms = latency_budget_ms
        self.min_fps = min(min_fps, fps)
        self.window_secs = window_secs
        self.granted = fps
        self.video_budget_kbps = video_budget_kbps
        #: What senders are asked for now (see :meth:`update_request`).
        self.request = send_request(fps, fps, None, 1, video_budget_kbps)
        self._clock = clock
        self._wall = wall
        self._lags: deque[tuple[float, float]] = deque(maxlen=MAX_SAMPLES)  # (at, lag ms)
        self._analysed: dict[object, deque[float]] = {}  # feed -> when its frames were read
        self._feeds_started: dict[object, float] = {}
        self._senders: set[str] = set()  # participants connected (their video may follow)
        self._voice_runs: deque[tuple[float, int]] = deque(maxlen=64)  # (at, runs so far)
        self._process = psutil.Process(os.getpid())
        self._cpu_at: tuple[float, float] | None = None  # (clock, cpu seconds)
        self._cpu: dict[int, float] = {}

    # -- what feeds ask and tell ------------------------------------------------------

    def face_fps(self, wanted: float) -> float:
        """The rate a feed that wants ``wanted`` frames a second may have now."""
        return min(wanted, self.granted)

    @property
    def reduction(self) -> float:
        """How many times lower than configured the granted rate is (1: not reduced)."""
        return self.fps / self.granted if self.granted > 0 else math.inf

    def detect_interval(self, base_secs: float) -> float:
        """The longest time between detector runs on a followed face, at today's rate."""
        return min(max(base_secs, MAX_DETECT_SECS), base_secs * self.reduction)

    def feed_started(self, feed: object) -> None:
        """A video feed began to be analysed (its share of the video budget is set at once)."""
        self._feeds_started[feed] = self._clock()
        self._analysed[feed] = deque(maxlen=1024)
        self.update_request()

    def sender_joined(self, participant_id: str) -> None:
        """A participant connected: the video budget is shared with them from now on.

        Counted before their video is analysed, so that a meeting filling up fast shares
        the budget with everyone arriving, not only with the feeds already running.
        """
        self._senders.add(participant_id)
        self.update_request()

    def sender_left(self, participant_id: str) -> None:
        """A participant left."""
        self._senders.discard(participant_id)

    def update_request(self) -> SendRequest:
        """What senders are asked for now: from the granted rate and how many send."""
        feeds = max(len(self._senders), len(self._analysed))
        self.request = send_request(
            self.granted, self.fps, self.request, feeds, self.video_budget_kbps
        )
        return self.request

    def feed_ended(self, feed: object) -> None:
        """A video feed ended."""
        self._feeds_started.pop(feed, None)
        self._analysed.pop(feed, None)

    def face_read(self, feed: object, frame_ts: float, arrived: float, picked: float) -> None:
        """A frame of ``feed`` was read.

        ``frame_ts`` is its meeting time; ``arrived`` and ``picked`` (for analysis) are
        wall-clock seconds.
        """
        now = self._clock()
        times = self._analysed.get(feed)
        if times is not None:
            times.append(now)
        waited = max(0.0, arrived - frame_ts) + max(0.0, self._wall() - picked)
        self._lags.append((now, waited * 1000))

    # -- once a second ----------------------------------------------------------------

    def control(
        self,
        voice_emotion_runs: int = 0,
        resources: tuple[float | None, float | None] = (None, None),
    ) -> LoadEvent:
        """Adjust the granted rate from the last window's lag; report the load.

        ``voice_emotion_runs``: speech pieces classified so far by the live sessions.
        ``resources``: CPU % and RSS MB from :meth:`resources`, when measured.
        """
        now = self._clock()
        since = now - self.window_secs
        lags = [ms for at, ms in self._lags if at >= now - LAG_WINDOW_SECS]
        rates = self._rates(now)
        values = list(rates.values())
        lag_p95 = _p95(lags)
        if lag_p95 is not None:
            if lag_p95 > self.latency_budget_ms:
                # What the feeds achieved over a whole window is what the machine
                # sustained; younger feeds (a busy start) only say the cap was too high.
                mature = [
                    r for feed, r in rates.items() if self._age(feed, now) >= self.window_secs
                ]
                achieved = statistics.fmean(mature) if mature else self.granted
                self.granted = max(self.min_fps, 0.8 * min(self.granted, achieved))
            elif lag_p95 < 0.7 * self.latency_budget_ms and self.granted < self.fps:
                self.granted = min(self.fps, self.granted * 1.2 + 0.2)
        self._voice_runs.append((now, voice_emotion_runs))
        first = next((r for r in self._voice_runs if r[0] >= since), self._voice_runs[-1])
        self.update_request()
        voice_rate = 0.0
        if now > first[0]:
            voice_rate = max(0, voice_emotion_runs - first[1]) / (now - first[0])
        cpu, rss = resources
        busy = self.granted < BUSY_SHARE * self.fps
        return LoadEvent(
            ts=self._wall(),
            feeds=len(self._analysed),
            face_fps_target=self.fps,
            face_fps_granted=round(self.granted, 2),
            face_fps_min=round(min(values), 2) if values else None,
            face_fps_mean=round(statistics.fmean(values), 2) if values else None,
            lag_ms_p95=None if lag_p95 is None else round(lag_p95, 1),
            voice_emotion_runs_per_sec=round(voice_rate, 2),
            cpu_percent=cpu,
            rss_mb=rss,
            cpus=os.cpu_count() or 1,
            busy=busy,
            text=BUSY_TEXT if busy else "",
        )

    def _age(self, feed: object, now: float) -> float:
        return now - self._feeds_started.get(feed, now)

    def _rates(self, now: float) -> dict[object, float]:
        """Each feed's analyses per second over the window (or since it started)."""
        rates = {}
        for feed, times in self._analysed.items():
            span = min(self.window_secs, self._age(feed, now))
            if span < 1.0:
                continue  # too young to have a rate
            rates[feed] = sum(1 for t in times if t >= now - span) / span
        return rates

    def resources(self) -> tuple[float | None, float | None]:
        """CPU (% of one core, since the last call) and RSS (MB) of this process and children.

        Reads /proc file by file, the whole process table among them; each read gives up the
        GIL and waits to get it back behind busy threads, so on the event loop this took
        hundreds of milliseconds under load: run it in a thread.
        """
        now = self._clock()
        cpu_secs, rss = 0.0, 0
        try:
            procs = [self._process, *self._process.children(recursive=True)]
        except psutil.Error:
            return None, None
        for p in procs:
            try:
                times = p.cpu_times()
                rss += p.memory_info().rss
            except psutil.Error:
                continue
            self._cpu[p.pid] = times.user + times.system
        cpu_secs = sum(self._cpu.values())
        last, self._cpu_at = self._cpu_at, (now, cpu_secs)
        cpu = None
        if last is not None and now > last[0]:
            cpu = round(100 * (cpu_secs - last[1]) / (now - last[0]), 1)
        return cpu, round(rss / 2**20, 1)


def _p95(values: list[float]) -> float | None:
    if len(values) < 3:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
