"""Per-person neutral baseline for AU proxies and emotion probabilities.

The geometric AU proxies of :mod:`analyzers.face.geometry.features` measure shapes
whose resting values differ from face to face (brow height, mouth corner height, nose to
chin length), and an emotion model has a per-person bias (a resting face that reads a
little "sad"). As OpenFace does with its person-specific normalisation (Baltrusaitis et
al. 2015, "Cross-dataset learning and person-specific normalisation for automatic
action unit detection", which subtracts the median of a person's descriptors), each
tracked face gets its own neutral reference, here from its **first seconds**:

- **Calibration**: the first ``calibration_secs`` (default 3 s) of *observed* time with
  a valid measurement, and at least ``min_frames`` (default 5) such frames. Observed
  time is the sum of intervals between consecutive valid frames, each capped at
  ``max_frame_gap_secs`` (1 s); a frame without a face breaks the chain, so the time the
  face was missing does not count. AU proxies and emotion probabilities calibrate
  independently, each from its own first valid sample: the emotion model may run less
  often than the landmarks (a face frame without emotions neither adds an emotion
  sample nor breaks the emotion chain), or not at all.
- **Neutral values**: the per-AU **median** of the calibration frames (robust to a
  blink or a brief expression inside the calibration window), and the per-class
  **mean** of the emotion probabilities (a mean of distributions is a distribution).
  They are frozen once calibration completes.
- **Before calibration** :attr:`NeutralBaseline.is_calibrated` is False and every
  relative value is None: nothing is reported against a baseline that does not exist.

**Limitation**: the first seconds are assumed to be the person's resting face. A person
who laughs through them gets a smiling baseline and reads "less than neutral" later;
:meth:`NeutralBaseline.reset` starts calibration over.

Outputs (AU names are canonical ``"AU12"`` keys, see
:func:`~analyzers.face.geometry.au_rules.normalize_au_name`):

- :meth:`NeutralBaseline.relative`: ``raw - neutral`` per AU, in proxy units (fractions
  of the inter-ocular distance; AU45 in units of eye closure), signed.
- :meth:`NeutralBaseline.intensities`: an OpenFace-like 0-5 intensity relative to the
  person's neutral, ``clip((raw - neutral) / k_AU, 0, 5)``, so the EMFACS thresholds of
  :mod:`~analyzers.face.geometry.au_rules` have a comparable scale. Only increases
  from neutral count; AU15's proxy is AU12's negated, so mouth corners pulled *down*
  from their resting height read as AU15.
- :meth:`NeutralBaseline.relative_emotions`: ``p - p_neutral`` per class, in [-1, 1]
  and summing to 0 over the classes: which emotions this frame shows *more* than the
  person's resting face.

**Intensity scale** ``k_AU`` (:data:`AU_INTENSITY_SCALE`, proxy units per intensity
unit): intensity 5 (FACS level E, maximum) is taken as the largest displacement the
proxy's landmarks make from rest, an order-of-magnitude anthropometric estimate in mm
(:data:`AU_FULL_SCALE_MM`), divided by a typical adult outer-canthal inter-ocular
distance of 90 mm (:data:`IOD_MM`, the same value as the head model in
:mod:`~analyzers.face.geometry.pose`) because every proxy is divided by the IOD; then
``k = full_scale_mm / 90 / 5``. These are estimates from the geometry, not fitted to
FACS-coded data:

===== ===================================================== ============ ========
AU    proxy measures (see features.py)                      full scale   k
===== ===================================================== ============ ========
AU01  inner brow height over inner eye corner               10 mm        0.0222
AU02  outer brow height over outer eye corner               10 mm        0.0222
AU04  -(inner brow height + inner brow gap): lowered 5 mm   10 mm        0.0222
      and drawn together 5 mm
AU06  -(lower lid to malar point): the cheek rises          5 mm         0.0111
AU12  mouth corner height over the inner-lip centre         10 mm        0.0222
AU15  the same corner height, downwards                     5 mm         0.0111
AU25  inner-lip gap                                         15 mm        0.0333
AU26  nose tip to chin: the jaw drops                       20 mm        0.0444
AU45  ``1 - EAR / 0.30``: 0 open, 1 closed                  1 (closed)   0.2
===== ===================================================== ============ ========

So intensity 1 (FACS "trace") on AU12 is a corner lift of about 2 mm from rest, about
2 % of the IOD; MediaPipe landmark jitter is around 0.5-1 % of the IOD on a webcam face,
so single-frame intensities below about 1 are mostly noise.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from analyzers.face.geometry.au_rules import normalize_aus

#: Default calibration length, seconds of observed valid frames.
BASELINE_CALIBRATION_SECS = 3.0
#: Default minimum number of valid frames for a calibration.
BASELINE_MIN_FRAMES = 5
#: Longest interval one frame can add to the calibration time, seconds.
BASELINE_MAX_FRAME_GAP_SECS = 1.0
#: Top of the OpenFace-like intensity scale.
MAX_INTENSITY = 5.0
#: Typical adult outer-canthal inter-ocular distance, mm (the proxies' unit).
IOD_MM = 90.0
#: Largest displacement from rest of each proxy's landmarks, mm (intensity 5).
AU_FULL_SCALE_MM: Mapping[str, float] = {
    "AU01": 10.0,
    "AU02": 10.0,
    "AU04": 10.0,
    "AU06": 5.0,
    "AU12": 10.0,
    "AU15": 5.0,
    "AU25": 15.0,
    "AU26": 20.0,
}
#: Proxy units per intensity unit, ``full_scale_mm / IOD_MM / MAX_INTENSITY``; AU45's
#: proxy is already a 0-1 closure fraction, so one unit is a fifth of a full closure.
AU_INTENSITY_SCALE: Mapping[str, float] = {
    **{au: mm / IOD_MM / MAX_INTENSITY for au, mm in AU_FULL_SCALE_MM.items()},
    "AU45": 1.0 / MAX_INTENSITY,
}


class BaselineParams(BaseModel):
    """Settings for :class:`NeutralBaseline`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    calibration_secs: float = Field(
        BASELINE_CALIBRATION_SECS,
        ge=0,
        description="Seconds of observed valid frames that calibrate the neutral face.",
    )
    min_frames: int = Field(
        BASELINE_MIN_FRAMES, ge=1, description="Valid frames needed for a calibration."
    )
    max_frame_gap_secs: float = Field(
        BASELINE_MAX_FRAME_GAP_SECS,
        gt=0,
        description="Longest interval one frame adds to the calibration time.",
    )


def au_intensities(
    relative: Mapping[str, float], scales: Mapping[str, float] = AU_INTENSITY_SCALE
) -> dict[str, float]:
    """OpenFace-like 0-5 intensities from baseline-relative proxies.

    ``intensity = clip(relative / k, 0, 5)`` per AU; AUs without a scale are left out.

    Args:
        relative: ``raw - neutral`` by canonical AU name.
        scales: ``k`` per AU, proxy units per intensity unit.

    Returns:
        Canonical AU name -> intensity in [0, 5].
    """
    return {
        au: float(min(max(0.0, value / scales[au]), MAX_INTENSITY))
        for au, value in relative.items()
        if au in scales
    }


class _Calibration:
    """Collects one channel's samples until the calibration time is reached."""

    __slots__ = ("_prev_ts", "_samples", "observed_secs", "params", "reference", "robust")

    def __init__(self, params: BaselineParams, *, robust: bool) -> None:
        self.params = params
        self.robust = robust
        self._samples: list[dict[str, float]] = []
        self._prev_ts: float | None = None
        self.observed_secs = 0.0
        self.reference: dict[str, float] | None = None

    @property
    def frames(self) -> int:
        return len(self._samples)

    def add(self, ts: float, values: Mapping[str, float] | None, *, face_present: bool) -> None:
        if self.reference is not None:
            return
        if not face_present:
            self._prev_ts = None
            return
        if values is None:
            return
        if self._prev_ts is not None and ts > self._prev_ts:
            self.observed_secs += min(ts - self._prev_ts, self.params.max_frame_gap_secs)
        self._prev_ts = ts
        self._samples.append(dict(values))
        if (
            self.observed_secs >= self.params.calibration_secs
            and len(self._samples) >= self.params.min_frames
        ):
            self._finish()

    def _finish(self) -> None:
        keys = set(self._samples[0]).intersection(*self._samples[1:])
        reduce = np.median if self.robust else np.mean
        self.reference = {
            key: float(reduce([s[key] for s in self._samples])) for key in sorted(keys)
        }
        self._samples = []


class NeutralBaseline:
    """One tracked face's neutral reference; see the module docstring.

    Runs inline with the face's other per-frame state on the main process's event loop
    thread; not thread-safe.

    Args:
        params: Calibration settings.
        scales: Intensity scale ``k`` per canonical AU name
            (default :data:`AU_INTENSITY_SCALE`).
    """

    def __init__(
        self,
        params: BaselineParams | None = None,
        scales: Mapping[str, float] = AU_INTENSITY_SCALE,
    ) -> None:
        """Start uncalibrated."""
        self.params = params or BaselineParams()
        self.scales = dict(scales)
        self._aus = _Calibration(self.params, robust=True)
        self._emotions = _Calibration(self.params, robust=False)

    @property
    def is_calibrated(self) -> bool:
        """True once the AU proxies' neutral values are known."""
        return self._aus.reference is not None

    @property
    def emotions_calibrated(self) -> bool:
        """True once the emotion probabilities' neutral values are known."""
        return self._emotions.reference is not None

    @property
    def calibration_progress(self) -> float:
        """Share of the AU calibration done, 0-1 (time and frame count both needed)."""
        if self._aus.reference is not None:
            return 1.0
        p = self.params
        by_time = 1.0 if p.calibration_secs <= 0 else self._aus.observed_secs / p.calibration_secs
        return min(by_time, self._aus.frames / p.min_frames, 1.0)

    @property
    def neutral_aus(self) -> dict[str, float] | None:
        """Neutral proxy values by canonical AU name, or None before calibration."""
        ref = self._aus.reference
        return None if ref is None else dict(ref)

    @property
    def neutral_emotions(self) -> dict[str, float] | None:
        """Neutral emotion probabilities by class, or None before calibration."""
        ref = self._emotions.reference
        return None if ref is None else dict(ref)

    def reset(self) -> None:
        """Forget both references and calibrate again from the next valid frame."""
        self._aus = _Calibration(self.params, robust=True)
        self._emotions = _Calibration(self.params, robust=False)

    def update(
        self,
        ts: float,
        aus: Mapping[str, float] | None,
        emotions: Mapping[str, float] | None = None,
    ) -> None:
        """Feed one frame; does nothing to a channel that is already calibrated.

        Args:
            ts: Frame time, seconds, increasing.
            aus: AU proxies by any name :func:`~analyzers.face.geometry.au_rules.
                normalize_aus` accepts, or None when there is no face this frame.
            emotions: Emotion probabilities by class, or None when the emotion model
                gave none this frame; ignored when ``aus`` is None.
        """
        face_present = aus is not None
        self._aus.add(ts, None if aus is None else normalize_aus(aus), face_present=face_present)
        self._emotions.add(ts, emotions, face_present=face_present)

    def relative(self, aus: Mapping[str, float]) -> dict[str, float] | None:
        """``raw - neutral`` per AU present in both, or None before calibration.

        Args:
            aus: AU proxies by any supported name.

        Returns:
            Canonical AU name -> signed difference in proxy units, or None.
        """
        ref = self._aus.reference
        if ref is None:
            return None
        raw = normalize_aus(aus)
        return {au: raw[au] - ref[au] for au in raw if au in ref}

    def intensities(self, aus: Mapping[str, float]) -> dict[str, float] | None:
        """0-5 intensities relative to the neutral face, or None before calibration.

        Args:
            aus: AU proxies by any supported name.

        Returns:
            Canonical AU name -> ``clip((raw - neutral) / k, 0, 5)`` for the AUs with a
            scale, or None.
        """
        relative = self.relative(aus)
        return None if relative is None else au_intensities(relative, self.scales)

    def relative_emotions(self, probs: Mapping[str, float]) -> dict[str, float] | None:
        """``p - p_neutral`` per class present in both, or None before calibration.

        Args:
            probs: One frame's emotion probabilities by class.

        Returns:
            Class -> signed difference, or None.
        """
        ref = self._emotions.reference
        if ref is None:
            return None
        return {key: float(value) - ref[key] for key, value in probs.items() if key in ref}
