"""Fitting and cross-validating the voice arousal model (``scripts/train_arousal.py``).

The model is a logistic regression without intercept on per-segment z-scores, as
:class:`~analyzers.voice.prosody.SpeakerBaseline` computes them online (each
speaker's clips fed in order through the product's voice path by
:func:`analyzers.voice.eval.analyse_clips`), so training and inference see the same
numbers. Only segments after the speaker's warm-up and from high- or low-arousal
clips are used; each takes its clip's label. L2 penalty :data:`L2`, fitted by Newton's
method (a handful of features, a few hundred segments: exact and instant).

Leave-one-speaker-out: for each speaker, fit on the others, score the held-out
speaker's clips (duration-weighted mean of segment arousals, as ``eval voice`` does)
and take the AUC within that speaker; the pooled AUC is over all held-out clips.
The same protocol scores any fixed formula (:data:`PREVIOUS_WEIGHTS`, the hand
formula this model replaced) for comparison.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from analyzers.voice.eval import ClipResult, arousal_class, auc

#: Features of the model (keys of the baseline's z-scores).
FEATURES: tuple[str, ...] = ("pitch", "alpha_ratio", "hammarberg", "rate")
#: L2 penalty on the weights (z units; the data term is a sum over segments).
L2 = 1.0
#: The hand formula before issue 9: ``tanh(sum(w * z) / sum(w))`` over features present.
PREVIOUS_WEIGHTS: dict[str, float] = {"loudness": 0.4, "pitch": 0.3, "range": 0.15, "rate": 0.15}

#: Scores one segment's z-scores (None: no score).
Scorer = Callable[[Mapping[str, float]], float | None]


def segment_table(
    clips: Sequence[ClipResult], features: Sequence[str] = FEATURES
) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: z-scores of the scored segments of high/low clips (missing z = 0), 1 = high."""
    rows: list[list[float]] = []
    ys: list[float] = []
    for clip in clips:
        cls = arousal_class(clip.label)
        if cls is None:
            continue
        for seg in clip.segments:
            if seg.arousal is None:  # warm-up: the product gives no score
                continue
            rows.append([seg.z.get(f, 0.0) for f in features])
            ys.append(1.0 if cls == "high" else 0.0)
    return np.array(rows, dtype=np.float64).reshape(-1, len(features)), np.array(ys)


def fit_weights(x: np.ndarray, y: np.ndarray, l2: float = L2, iterations: int = 50) -> np.ndarray:
    """L2-penalised logistic regression without intercept, by Newton's method."""
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1.0 - p))[:, None]).T @ x + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return w


def model_scorer(weights: Mapping[str, float]) -> Scorer:
    """The product's arousal (``tanh(sum(w * z) / 2)``) for given weights."""

    def score(z: Mapping[str, float]) -> float | None:
        terms = [w * z[k] for k, w in weights.items() if k in z]
        return math.tanh(0.5 * sum(terms)) if terms else None

    return score


def formula_scorer(weights: Mapping[str, float]) -> Scorer:
    """The previous hand formula, ``tanh(sum(w * z) / sum(w))`` over features present."""

    def score(z: Mapping[str, float]) -> float | None:
        present = [k for k in weights if k in z]
        if not present:
            return None
        return math.tanh(sum(weights[k] * z[k] for k in present) / sum(weights[k] for k in present))

    return score


def clip_score(clip: ClipResult, scorer: Scorer) -> float | None:
    """Duration-weighted mean of ``scorer`` over the clip's post-warm-up segments."""
    total = 0.0
    weight = 0.0
    for seg in clip.segments:
        if seg.arousal is None:
            continue
        value = scorer(seg.z)
        if value is None:
            continue
        total += seg.duration_secs * value
        weight += seg.duration_secs
    return total / weight if weight > 0 else None


def scored_auc(clips: Sequence[ClipResult], scorer: Scorer) -> float | None:
    """AUC of high against low clips under ``scorer`` (clips without a score left out)."""
    pairs = [
        (s, arousal_class(c.label) == "high")
        for c in clips
        if arousal_class(c.label) is not None and (s := clip_score(c, scorer)) is not None
    ]
    return auc([s for s, _ in pairs], [h for _, h in pairs])


@dataclass(frozen=True, slots=True)
class Loso:
    """Leave-one-speaker-out figures: AUC per held-out speaker, their mean, and pooled."""

    per_speaker: dict[str, float | None]
    pooled: float | None

    @property
    def mean(self) -> float:
        """Mean of the per-speaker AUCs that exist."""
        values = [v for v in self.per_speaker.values() if v is not None]
        return float(np.mean(values)) if values else float("nan")


def leave_one_speaker_out(
    clips: Sequence[ClipResult],
    fixed: Scorer | None = None,
    features: Sequence[str] = FEATURES,
    l2: float = L2,
) -> Loso:
    """Leave-one-speaker-out AUC of the model fitted on the other speakers, or of ``fixed``."""
    speakers = sorted({c.speaker for c in clips})
    per: dict[str, float | None] = {}
    held_scores: list[float] = []
    held_high: list[bool] = []
    for speaker in speakers:
        test = [c for c in clips if c.speaker == speaker]
        scorer = fixed
        if scorer is None:
            x, y = segment_table([c for c in clips if c.speaker != speaker], features)
            scorer = model_scorer(dict(zip(features, fit_weights(x, y, l2).tolist(), strict=True)))
        per[speaker] = scored_auc(test, scorer)
        for c in test:
            cls = arousal_class(c.label)
            s = clip_score(c, scorer)
            if cls is not None and s is not None:
                held_scores.append(s)
                held_high.append(cls == "high")
    return Loso(per, auc(held_scores, held_high))
