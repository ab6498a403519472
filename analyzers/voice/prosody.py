"""Prosody features of a voiced segment, a per-speaker baseline and an arousal score.

All numpy, no models; runs on the participant's feature thread (``features.<pid>``).

Features of one segment (16 kHz float32 mono, see :class:`ProsodyFeatures`):

- **F0** by YIN (de Cheveigné & Kawahara 2002), our own numpy implementation:
  frames of :data:`YIN_FRAME` samples every :data:`YIN_HOP`, difference function over
  a window of ``frame - tau_max`` samples, cumulative-mean-normalised, first dip below
  :data:`YIN_THRESHOLD` between ``16000 / fmax`` and ``16000 / fmin`` refined to its
  local minimum and by parabolic interpolation. Frames with no such dip, or quieter
  than :data:`SILENCE_DBFS`, are unvoiced.
- **Pitch level**: median F0 of voiced frames, in Hz and in semitones re 100 Hz
  (``12 * log2(f0 / 100)``). **Pitch range**: 90th minus 10th percentile of voiced F0,
  in semitones. Both None with fewer than :data:`MIN_VOICED_FRAMES` voiced frames.
- **Loudness**: RMS of the whole segment in dBFS (``20 * log10(rms)``, full scale = 1.0,
  so a full-scale sine reads -3 dB) and the 90th percentile of frame dBFS.
- **Speech rate proxy**: syllable nuclei per second, counted as peaks of the
  300-3000 Hz band energy (dB, 10 ms hop, smoothed over 50 ms) that stand at least
  :data:`NUCLEUS_DIP_DB` above the dip to the previous counted peak and lie within
  :data:`NUCLEUS_FLOOR_DB` of the loudest frame. It is a proxy, in the spirit of de
  Jong & Wempe's Praat script: it counts energy bumps, not syllables (no voicing
  check: on espeak speech YIN's voicing gate hid the difference between 100 and
  250 words per minute).
- **Pause ratio**: share of the segment spent in runs of at least
  :data:`MIN_PAUSE_SECS` whose frames are more than :data:`PAUSE_BELOW_P90_DB`
  below the segment's 90th percentile frame level.
- **Spectral balance** (vocal effort; eGeMAPS's definitions, Eyben et al. 2016), on
  the same 32 ms Hann spectra as the rate proxy, over the frames within
  :data:`PAUSE_BELOW_P90_DB` of the segment's 90th percentile frame energy:
  *alpha ratio* = summed energy 1-5 kHz over summed energy 50 Hz-1 kHz, in dB (rises
  with effort: a pressed, loud voice has more energy up high); *Hammarberg index* =
  strongest bin 0-2 kHz over strongest bin 2-5 kHz, in dB, mean over those frames
  (falls with effort). Both are ratios, so a microphone's gain does not change them.

Per-speaker baseline (:class:`SpeakerBaseline`) and arousal:

- For each of loudness (RMS dBFS), pitch level (st), pitch range (st), rate
  (nuclei/s), alpha ratio (dB) and Hammarberg index (dB) the baseline keeps an
  exponentially weighted mean and variance with ``alpha = max(1 / n, BASELINE_ALPHA)``:
  the exact running mean and population variance of the first ``1 / BASELINE_ALPHA``
  segments, then an exponential one.
- ``z_i = clip((x_i - mean_i) / max(std_i, MIN_STD_i), -3, 3)``, scored against the
  baseline *before* the segment is added to it.
- ``arousal = tanh(sum_i w_i * z_i / 2)`` over the weighted features present, i.e.
  ``2 * p - 1`` where ``p`` is a logistic regression's probability of high arousal
  (no intercept, so this speaker's usual voice scores 0). The weights
  (:data:`~analyzers.voice.arousal_model.AROUSAL_WEIGHTS`: pitch level, alpha ratio,
  Hammarberg index, rate) were fitted on per-speaker z-scores computed exactly like
  these, online, on five EmoDB speakers (``scripts/train_arousal.py``; figures in
  :mod:`analyzers.voice.arousal_model`). Loudness is scored (``z["loudness"]``) but has
  no weight: the training clips are peak-normalised, so their level says nothing about
  effort, and a browser's automatic gain control does much the same to a meeting.
  The range is [-1, 1]: 0 is this speaker's usual, positive is more aroused.
- Until :data:`WARMUP_SEGMENTS` segments have been seen, arousal is None: we do not
  yet know what is usual for this speaker, and 0 would claim we do.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from analyzers.voice.arousal_model import AROUSAL_WEIGHTS
from analyzers.voice.audio import SAMPLE_RATE

logger = logging.getLogger(__name__)

#: YIN search range in Hz (covers low male to high female/child speaking voices).
F0_MIN_HZ = 65.0
F0_MAX_HZ = 400.0
#: YIN frame length and hop in samples (64 ms and 16 ms at 16 kHz).
YIN_FRAME = 1024
YIN_HOP = 256
#: Cumulative-mean-normalised difference below which a dip counts as a period.
YIN_THRESHOLD = 0.25
#: Frames quieter than this (frame RMS, dBFS) are never voiced.
SILENCE_DBFS = -50.0
#: Fewest voiced frames for a pitch level / range (about 0.1 s).
MIN_VOICED_FRAMES = 6
#: Reference of the semitone scale.
SEMITONE_REF_HZ = 100.0
#: Band and hop of the energy envelope used for the speech rate proxy.
RATE_BAND_HZ = (300.0, 3000.0)
RATE_HOP = 160
RATE_FRAME = 512
RATE_SMOOTH_SECS = 0.05
#: A nucleus must rise this much above the dip since the previous nucleus.
NUCLEUS_DIP_DB = 3.0
#: Nuclei further than this below the loudest envelope frame are ignored.
NUCLEUS_FLOOR_DB = 25.0
#: Frames this far below the segment's 90th percentile frame level are pause frames.
PAUSE_BELOW_P90_DB = 25.0
#: Shortest run of pause frames counted as a pause.
MIN_PAUSE_SECS = 0.15

#: Segments a speaker needs before arousal is reported.
WARMUP_SEGMENTS = 5
#: Smallest weight of a new segment in the baseline (1 / segments of memory).
BASELINE_ALPHA = 0.05
#: Standard deviation floors, so a very steady speaker's z-scores do not explode.
MIN_STD: dict[str, float] = {
    "loudness": 1.0,
    "pitch": 0.5,
    "range": 0.5,
    "rate": 0.3,
    "alpha_ratio": 1.0,
    "hammarberg": 1.0,
}
#: Bands of the alpha ratio (high over low) and the Hammarberg index (low over high), Hz.
ALPHA_LOW_HZ = (50.0, 1000.0)
ALPHA_HIGH_HZ = (1000.0, 5000.0)
HAMMARBERG_LOW_HZ = (0.0, 2000.0)
HAMMARBERG_HIGH_HZ = (2000.0, 5000.0)
_Z_CLIP = 3.0
_EPS = 1e-10


@dataclass(frozen=True, slots=True)
class ProsodyFeatures:
    """Prosody of one voiced segment.

    Attributes:
        duration_secs: Length of the analysed audio.
        f0_hz: Median F0 of voiced frames; None if too few were voiced.
        pitch_st: ``f0_hz`` in semitones re 100 Hz; None with ``f0_hz``.
        pitch_range_st: 10-90 percentile span of voiced F0, semitones; None with ``f0_hz``.
        loudness_dbfs: RMS level of the whole segment, dBFS.
        loudness_p90_dbfs: 90th percentile of frame RMS levels, dBFS.
        rate_nuclei_per_sec: Syllable nuclei per second (a proxy for speech rate).
        pause_ratio: Share of the segment in pauses, 0..1.
        voiced_ratio: Share of YIN frames that were voiced, 0..1.
        alpha_ratio_db: Energy 1-5 kHz over 50 Hz-1 kHz, dB; None only when built by hand.
        hammarberg_db: Strongest bin 0-2 kHz over strongest 2-5 kHz, dB; None likewise.
    """

    duration_secs: float
    f0_hz: float | None
    pitch_st: float | None
    pitch_range_st: float | None
    loudness_dbfs: float
    loudness_p90_dbfs: float
    rate_nuclei_per_sec: float
    pause_ratio: float
    voiced_ratio: float
    alpha_ratio_db: float | None = None
    hammarberg_db: float | None = None


def _frames(y: np.ndarray, frame: int, hop: int) -> np.ndarray:
    if len(y) < frame:
        y = np.pad(y, (0, frame - len(y)))
    n = 1 + (len(y) - frame) // hop
    return np.lib.stride_tricks.sliding_window_view(y, frame)[::hop][:n]


def _db(power: np.ndarray) -> np.ndarray:
    db: np.ndarray = 10.0 * np.log10(np.maximum(power, _EPS))
    return db


def yin(
    y: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    fmin: float = F0_MIN_HZ,
    fmax: float = F0_MAX_HZ,
    frame_length: int = YIN_FRAME,
    hop_length: int = YIN_HOP,
    threshold: float = YIN_THRESHOLD,
) -> np.ndarray:
    """Estimate F0 per frame with YIN.

    Args:
        y: Mono float samples.
        sample_rate: Samples per second.
        fmin: Lowest F0 searched, Hz.
        fmax: Highest F0 searched, Hz.
        frame_length: Samples per frame; the difference window is
            ``frame_length - sample_rate / fmin`` samples.
        hop_length: Samples between frame starts.
        threshold: Dip threshold on the normalised difference function.

    Returns:
        F0 in Hz per frame, NaN where the frame is unvoiced or silent.

    Raises:
        ValueError: If the frame is too short for ``fmin``.
    """
    tau_min = max(2, int(math.floor(sample_rate / fmax)))
    tau_max = int(math.ceil(sample_rate / fmin))
    win = frame_length - tau_max
    if win < tau_max // 2:
        raise ValueError("frame_length too short for fmin")
    frames = _frames(np.asarray(y, dtype=np.float64), frame_length, hop_length)
    n_fft = 1 << int(math.ceil(math.log2(frame_length + win)))
    # r[t, tau] = sum_{j<win} x[j] x[j + tau], via one FFT cross-correlation per frame.
    spec_x = np.fft.rfft(frames, n_fft, axis=1)
    spec_w = np.fft.rfft(frames[:, :win], n_fft, axis=1)
    r = np.fft.irfft(spec_x * np.conj(spec_w), n_fft, axis=1)[:, : tau_max + 1]
    sq = np.cumsum(np.pad(frames**2, ((0, 0), (1, 0))), axis=1)
    taus = np.arange(tau_max + 1)
    # energy of x[tau : tau + win] for every tau
    e_tau = sq[:, taus + win] - sq[:, taus]
    # d(tau) = E(0) + E(tau) - 2 r(tau)
    d = np.maximum(e_tau[:, :1] + e_tau - 2.0 * r, 0.0)
    # d'(tau) = d(tau) * tau / sum_{k=1..tau} d(k), d'(0) = 1
    cum = np.cumsum(d[:, 1:], axis=1)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] * taus[1:] / np.maximum(cum, _EPS)

    frame_db = _db(np.mean(frames**2, axis=1))
    f0 = np.full(len(frames), np.nan)
    search = cmnd[:, tau_min : tau_max + 1]
    below = search < threshold
    has_dip = below.any(axis=1) & (frame_db > SILENCE_DBFS)
    for i in np.flatnonzero(has_dip):
        tau = tau_min + int(np.argmax(below[i]))
        # walk down to the bottom of this dip
        while tau + 1 <= tau_max and cmnd[i, tau + 1] < cmnd[i, tau]:
            tau += 1
        shift = 0.0
        if tau_min < tau < tau_max:
            a, b, c = cmnd[i, tau - 1], cmnd[i, tau], cmnd[i, tau + 1]
            denom = a - 2.0 * b + c
            if denom > 0:
                shift = 0.5 * (a - c) / denom
        f0[i] = sample_rate / (tau + shift)
    return f0


def hz_to_semitones(f0_hz: float | np.ndarray) -> float | np.ndarray:
    """Semitones re :data:`SEMITONE_REF_HZ`."""
    return 12.0 * np.log2(np.asarray(f0_hz) / SEMITONE_REF_HZ)


def _power_spectra(y: np.ndarray) -> np.ndarray:
    """Power spectra of 32 ms Hann frames every 10 ms (frames x RATE_FRAME // 2 + 1)."""
    frames = _frames(y, RATE_FRAME, RATE_HOP) * np.hanning(RATE_FRAME)
    power: np.ndarray = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return power


_FREQS = np.fft.rfftfreq(RATE_FRAME, 1.0 / SAMPLE_RATE)


def _band(lo_hi: tuple[float, float]) -> np.ndarray:
    band: np.ndarray = (_FREQS >= lo_hi[0]) & (_FREQS < lo_hi[1])
    return band


def _spectral_balance(power: np.ndarray) -> tuple[float, float]:
    """Alpha ratio and Hammarberg index (dB) over the frames near the segment's loudest."""
    frame_db = _db(power.sum(axis=1))
    active = power[frame_db >= np.percentile(frame_db, 90) - PAUSE_BELOW_P90_DB]
    alpha = _db(np.array(active[:, _band(ALPHA_HIGH_HZ)].sum())) - _db(
        np.array(active[:, _band(ALPHA_LOW_HZ)].sum())
    )
    hammarberg = _db(active[:, _band(HAMMARBERG_LOW_HZ)].max(axis=1)) - _db(
        active[:, _band(HAMMARBERG_HIGH_HZ)].max(axis=1)
    )
    return float(alpha), float(np.mean(hammarberg))


def _nuclei_per_sec(power: np.ndarray, duration: float) -> float:
    band = (_FREQS >= RATE_BAND_HZ[0]) & (_FREQS <= RATE_BAND_HZ[1])
    env = _db(power[:, band].sum(axis=1))
    k = max(1, int(round(RATE_SMOOTH_SECS * SAMPLE_RATE / RATE_HOP)))
    env = np.convolve(env, np.ones(k) / k, mode="same")
    if len(env) < 3:
        return 0.0
    floor = float(env.max()) - NUCLEUS_FLOOR_DB
    peaks = np.flatnonzero((env[1:-1] > env[:-2]) & (env[1:-1] >= env[2:])) + 1
    count = 0
    last_peak = 0
    for p in peaks:
        if env[p] < floor:
            continue
        dip = float(env[last_peak : p + 1].min()) if count else float(env[: p + 1].min())
        if env[p] - dip >= NUCLEUS_DIP_DB:
            count += 1
            last_peak = int(p)
    return count / duration if duration > 0 else 0.0


def _pause_ratio(frame_db: np.ndarray, hop_secs: float) -> float:
    if len(frame_db) == 0:
        return 0.0
    quiet = frame_db < np.percentile(frame_db, 90) - PAUSE_BELOW_P90_DB
    min_run = max(1, int(round(MIN_PAUSE_SECS / hop_secs)))
    paused = 0
    run = 0
    for q in np.append(quiet, False):
        if q:
            run += 1
        else:
            if run >= min_run:
                paused += run
            run = 0
    return paused / len(frame_db)


def extract_prosody(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> ProsodyFeatures:
    """Compute :class:`ProsodyFeatures` for one voiced segment.

    Raises:
        ValueError: If the sample rate is not 16 kHz or the segment is empty.
    """
    if sample_rate != SAMPLE_RATE:
        raise ValueError("prosody features expect 16 kHz audio")
    y = np.asarray(samples, dtype=np.float64).reshape(-1)
    if len(y) == 0:
        raise ValueError("empty segment")
    duration = len(y) / sample_rate
    f0 = yin(y, sample_rate)
    voiced = ~np.isnan(f0)
    f0_v = f0[voiced]
    f0_hz = pitch_st = range_st = None
    if len(f0_v) >= MIN_VOICED_FRAMES:
        f0_hz = float(np.median(f0_v))
        pitch_st = float(hz_to_semitones(f0_hz))
        p10, p90 = np.percentile(hz_to_semitones(f0_v), [10, 90])
        range_st = float(p90 - p10)
    frame_db = _db(np.mean(_frames(y, YIN_FRAME // 2, YIN_HOP) ** 2, axis=1))
    power = _power_spectra(y)
    alpha_db, hammarberg_db = _spectral_balance(power)
    return ProsodyFeatures(
        duration_secs=duration,
        f0_hz=f0_hz,
        pitch_st=pitch_st,
        pitch_range_st=range_st,
        loudness_dbfs=float(_db(np.array(np.mean(y**2)))),
        loudness_p90_dbfs=float(np.percentile(frame_db, 90)),
        rate_nuclei_per_sec=_nuclei_per_sec(power, duration),
        pause_ratio=_pause_ratio(frame_db, YIN_HOP / sample_rate),
        voiced_ratio=float(voiced.mean()) if len(voiced) else 0.0,
        alpha_ratio_db=alpha_db,
        hammarberg_db=hammarberg_db,
    )


@dataclass(frozen=True, slots=True)
class ArousalEstimate:
    """One segment's prosody judged against its speaker's baseline.

    Attributes:
        features: The segment's features.
        z: z-score per feature present (``loudness``, ``pitch``, ``range``, ``rate``,
            ``alpha_ratio``, ``hammarberg``).
        arousal: ``tanh(sum(w * z) / 2)`` in [-1, 1]; None during warm-up.
        segments_seen: Segments in the baseline before this one.
    """

    features: ProsodyFeatures
    z: dict[str, float]
    arousal: float | None
    segments_seen: int


def _feature_values(f: ProsodyFeatures) -> dict[str, float]:
    values = {"loudness": f.loudness_dbfs, "rate": f.rate_nuclei_per_sec}
    if f.pitch_st is not None:
        values["pitch"] = f.pitch_st
    if f.pitch_range_st is not None:
        values["range"] = f.pitch_range_st
    if f.alpha_ratio_db is not None:
        values["alpha_ratio"] = f.alpha_ratio_db
    if f.hammarberg_db is not None:
        values["hammarberg"] = f.hammarberg_db
    return values


def arousal_from_z(z: Mapping[str, float]) -> float | None:
    """``tanh(sum(w_i * z_i) / 2)`` over the weighted features in ``z``; None if none is.

    ``tanh(x / 2) = 2 * sigmoid(x) - 1``: the logistic model's probability of high
    arousal mapped onto [-1, 1]. A feature missing (no pitch in a whispered segment)
    counts as this speaker's usual.
    """
    terms = [AROUSAL_WEIGHTS[k] * v for k, v in z.items() if k in AROUSAL_WEIGHTS]
    if not terms:
        return None
    return math.tanh(0.5 * sum(terms))


class SpeakerBaseline:
    """What is usual for one speaker: running mean and variance of segment features.

    One per participant, updated on that participant's feature thread; not
    thread-safe. See the module docstring for the formulas.
    """

    def __init__(
        self, warmup_segments: int = WARMUP_SEGMENTS, alpha: float = BASELINE_ALPHA
    ) -> None:
        """Start empty; arousal appears after ``warmup_segments`` segments."""
        self.warmup_segments = warmup_segments
        self.alpha = alpha
        self.segments_seen = 0
        self._n: dict[str, int] = {}
        self._mean: dict[str, float] = {}
        self._var: dict[str, float] = {}

    def reset(self) -> None:
        """Forget the speaker."""
        self.segments_seen = 0
        self._n.clear()
        self._mean.clear()
        self._var.clear()

    def z_scores(self, features: ProsodyFeatures) -> dict[str, float]:
        """z-score of every feature present that the baseline has seen at least once."""
        z: dict[str, float] = {}
        for key, x in _feature_values(features).items():
            if self._n.get(key, 0) == 0:
                continue
            std = max(math.sqrt(self._var[key]), MIN_STD[key])
            z[key] = float(np.clip((x - self._mean[key]) / std, -_Z_CLIP, _Z_CLIP))
        return z

    def add(self, features: ProsodyFeatures) -> None:
        """Fold one segment into the baseline."""
        self.segments_seen += 1
        for key, x in _feature_values(features).items():
            n = self._n.get(key, 0) + 1
            self._n[key] = n
            a = max(1.0 / n, self.alpha)
            mean = self._mean.get(key, 0.0)
            diff = x - mean
            incr = a * diff
            self._mean[key] = mean + incr
            self._var[key] = (1.0 - a) * (self._var.get(key, 0.0) + diff * incr)

    def update(self, features: ProsodyFeatures) -> ArousalEstimate:
        """Score ``features`` against the baseline so far, then add them to it."""
        seen = self.segments_seen
        z = self.z_scores(features)
        arousal = None
        if seen >= self.warmup_segments:
            arousal = arousal_from_z(z)
        self.add(features)
        return ArousalEstimate(features=features, z=z, arousal=arousal, segments_seen=seen)
