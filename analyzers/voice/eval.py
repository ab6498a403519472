"""Accuracy of the voice path on labelled clips: ``meetmood eval voice``.

Input: a folder of audio clips (anything PyAV opens) and a CSV file
``filename,label[,speaker]`` (a header row is optional; further columns, such as the
training set's ``arousal``, are ignored: arousal is *derived* from the label).
Labels are :data:`VOICE_CLASSES` or an alias (:data:`LABEL_ALIASES`); anything else
is an error.

Each clip goes through the product's own voice path, as a meeting would feed it:
decoded and resampled to 16 kHz mono by :class:`~analyzers.voice.audio.Resampler16k`,
then one :class:`~analyzers.voice.pipeline.VoicePipeline` per speaker (silero-vad,
prosody, the speaker baseline), the speaker's clips in the order of the labels file,
each followed by :data:`GAP_SECS` of silence so that the VAD closes its segments.
Clips without a speaker column (or with an empty cell) are all one speaker, ``""``:
their baseline then mixes voices, so give speakers when you have them.

Definitions:

- **Clip arousal**: the duration-weighted mean of the arousal of the clip's voiced
  segments that have one. Like the product, a speaker's first
  :data:`~analyzers.voice.prosody.WARMUP_SEGMENTS` segments have no arousal (the
  baseline does not yet know the voice), so those clips get no score: the AUC is
  computed on the clips that have one, and *scored* says how many that is. No second
  pass: a second pass would score every clip against a baseline that already holds it.
- **Arousal AUC**: the probability that a high-arousal clip (:data:`HIGH_AROUSAL`)
  scores above a low-arousal one (:data:`LOW_AROUSAL`), ties counting half
  (Mann-Whitney). Pooled over speakers, and per speaker. Other classes are left out.
- **Coverage**: clips in which the VAD found at least one voiced segment.
- **Voice emotion** (with a model): each segment's 1-4 s emotion pieces are
  classified, the clip's distribution is their duration-weighted mean, and its top
  class is the prediction. Per class: accuracy over the clips of that class that got
  a prediction. A class the model cannot express (``bored`` always; ``fear`` for an
  IEMOCAP model) is reported as such, not as 0 %.

Pure and synchronous: nothing from ``bot/`` or ``web/``, no asyncio.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
from scipy.stats import rankdata

from analyzers.eval_labels import EvalInputError, read_label_rows
from analyzers.types import Emotion
from analyzers.voice.audio import SAMPLE_RATE, Resampler16k
from analyzers.voice.pipeline import VoicedSegment, VoicePipeline
from analyzers.voice.vad import VadModel

#: Classes a voice labels file may use: our seven expressions plus ``bored``.
VOICE_CLASSES: tuple[str, ...] = (
    "angry",
    "bored",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
    "neutral",
)
#: High-arousal classes (the usual EmoDB split).
HIGH_AROUSAL = frozenset({"angry", "happy", "fear"})
#: Low-arousal classes; the others (neutral, disgust, surprise) are in neither.
LOW_AROUSAL = frozenset({"sad", "bored"})
#: Accepted spellings (lower case, blanks ignored). ``calm`` is not an alias: a calm
#: delivery is not boredom, and guessing would bend the arousal split.
LABEL_ALIASES: dict[str, str] = {
    **{c: c for c in VOICE_CLASSES},
    "anger": "angry",
    "ang": "angry",
    "boredom": "bored",
    "bor": "bored",
    "disgusted": "disgust",
    "dis": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "fea": "fear",
    "happiness": "happy",
    "joy": "happy",
    "hap": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "sur": "surprise",
    "neu": "neutral",
}
#: Silence after each clip, seconds: the VAD needs 0.3 s of it to close a segment.
GAP_SECS = 1.0


def parse_voice_label(text: str) -> str:
    """Our class name for a label.

    Raises:
        ValueError: If the label is not a voice class or an alias.
    """
    label = LABEL_ALIASES.get(text.strip().lower())
    if label is None:
        names = ", ".join(VOICE_CLASSES)
        raise ValueError(f"unknown label {text.strip()!r} (expected one of {names}, or an alias)")
    return label


def arousal_class(label: str) -> str | None:
    """``"high"``, ``"low"`` or None for a voice class."""
    if label in HIGH_AROUSAL:
        return "high"
    if label in LOW_AROUSAL:
        return "low"
    return None


@dataclass(frozen=True, slots=True)
class LabelledClip:
    """One row of a labels file."""

    filename: str
    label: str
    speaker: str


def read_voice_labels(path: Path) -> list[LabelledClip]:
    """Read ``filename,label[,speaker]`` rows (header optional, ``#`` comments skipped).

    Raises:
        EvalInputError: If the file is missing, unreadable or empty, a row is
            malformed or repeated, or a label is unknown.
    """
    out: list[LabelledClip] = []
    for line, cells in read_label_rows(path, "filename,label[,speaker]", "clips"):
        try:
            label = parse_voice_label(cells[1])
        except ValueError as e:
            raise EvalInputError(f"{path}:{line}: {e}") from None
        out.append(LabelledClip(cells[0], label, cells[2] if len(cells) > 2 else ""))
    return out


def check_clips(folder: Path, clips: Sequence[LabelledClip]) -> None:
    """Fail early, before any model loads, when the folder or a listed clip is missing.

    Raises:
        EvalInputError: Naming the first missing file and how many more are missing.
    """
    if not folder.is_dir():
        raise EvalInputError(f"{folder}: clip folder does not exist")
    missing = [c.filename for c in clips if not (folder / c.filename).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise EvalInputError(f"{folder / missing[0]}: listed in the labels but missing{more}")


def load_clip(path: Path) -> np.ndarray:
    """Decode the first audio stream of ``path`` to 16 kHz mono float32 (PyAV).

    Raises:
        EvalInputError: If the file cannot be decoded or has no audio.
    """
    resampler = Resampler16k()
    parts: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise EvalInputError(f"{path}: no audio stream")
            for frame in container.decode(audio=0):
                parts.append(resampler.resample(frame))
    except (av.FFmpegError, OSError, ValueError) as e:
        if isinstance(e, EvalInputError):
            raise
        raise EvalInputError(f"{path}: cannot decode audio ({e})") from None
    parts.append(resampler.flush())
    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if len(samples) == 0:
        raise EvalInputError(f"{path}: no audio samples")
    return samples.astype(np.float32, copy=False)


# --- running the clips ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentResult:
    """One voiced segment of a clip, as the pipeline reported it.

    Attributes:
        start_secs: Start within the clip (may be a few ms below 0: VAD padding).
        end_secs: End within the clip.
        z: z-scores against the speaker's baseline before this segment.
        arousal: The product's arousal; None during the speaker's warm-up.
    """

    start_secs: float
    end_secs: float
    z: Mapping[str, float]
    arousal: float | None

    @property
    def duration_secs(self) -> float:
        """Length in seconds."""
        return self.end_secs - self.start_secs


@dataclass(frozen=True, slots=True)
class ClipResult:
    """What the voice path said about one labelled clip.

    Attributes:
        filename: As listed.
        label: The true class.
        speaker: Its speaker ("" when the labels file names none).
        duration_secs: Length of the decoded audio.
        segments: Voiced segments found, in time order.
        emotion_probs: The voice emotion model's clip distribution; None without a
            model or when no segment was 1 s or longer.
    """

    filename: str
    label: str
    speaker: str
    duration_secs: float
    segments: tuple[SegmentResult, ...]
    emotion_probs: Mapping[Emotion, float] | None = None

    @property
    def voiced(self) -> bool:
        """Whether the VAD found speech."""
        return bool(self.segments)

    @property
    def arousal(self) -> float | None:
        """Duration-weighted mean arousal of the scored segments; None if none is scored."""
        scored = [s for s in self.segments if s.arousal is not None]
        total = sum(s.duration_secs for s in scored)
        if not scored or total <= 0:
            return None
        return sum(s.duration_secs * (s.arousal or 0.0) for s in scored) / total

    @property
    def predicted(self) -> Emotion | None:
        """Top class of :attr:`emotion_probs`."""
        probs = self.emotion_probs
        if not probs:
            return None
        return max(probs, key=lambda e: probs[e])


#: Classifies one 16 kHz emotion piece; returns the distribution over the model's classes.
Classifier = Callable[[np.ndarray], Mapping[Emotion, float]]


def _clip_emotion(pieces: Sequence[np.ndarray], classify: Classifier) -> dict[Emotion, float]:
    total: dict[Emotion, float] = {}
    weight = 0.0
    for piece in pieces:
        w = len(piece) / SAMPLE_RATE
        for emotion, p in classify(piece).items():
            total[emotion] = total.get(emotion, 0.0) + w * p
        weight += w
    return {e: p / weight for e, p in total.items()} if weight > 0 else {}


def analyse_clips(
    folder: Path,
    clips: Sequence[LabelledClip],
    *,
    vad_model: VadModel | None = None,
    classify: Classifier | None = None,
    load: Callable[[Path], np.ndarray] = load_clip,
) -> list[ClipResult]:
    """Feed every clip through the voice pipeline of its speaker, in the listed order.

    Args:
        folder: Where the clips are.
        clips: The labels file's rows.
        vad_model: A silero-vad model shared by the speakers' pipelines; loaded once by
            default. The VAD is reset before every clip (after a second of silence its
            state has settled anyway), so results do not depend on how speakers interleave.
        classify: The voice emotion model, or None.
        load: Decodes a clip (tests pass arrays through it).

    Returns:
        One result per clip, in the order given.

    Raises:
        EvalInputError: If a clip cannot be decoded.
    """
    if vad_model is None:
        from analyzers.voice.vad import load_vad_model

        vad_model = load_vad_model()
    pipelines: dict[str, VoicePipeline] = {}
    clock: dict[str, float] = {}
    results: list[ClipResult] = []
    for clip in clips:
        samples = load(folder / clip.filename)
        pipeline = pipelines.get(clip.speaker)
        if pipeline is None:
            pipeline = pipelines[clip.speaker] = VoicePipeline(
                f"eval:{clip.speaker}", vad_model=vad_model
            )
            clock[clip.speaker] = 0.0
        pipeline.vad.reset()
        start = clock[clip.speaker]
        duration = len(samples) / SAMPLE_RATE
        end = start + duration + GAP_SECS
        events = pipeline.feed_samples(samples, ts=start) + pipeline.advance(end)
        clock[clip.speaker] = end
        segments: list[SegmentResult] = []
        pieces: list[np.ndarray] = []
        for event in events:
            if isinstance(event, VoicedSegment):
                segments.append(
                    SegmentResult(
                        event.start_ts - start, event.end_ts - start, dict(event.z), event.arousal
                    )
                )
                pieces += [c.samples for c in event.emotion_chunks]
        probs = _clip_emotion(pieces, classify) if classify is not None and pieces else None
        results.append(
            ClipResult(clip.filename, clip.label, clip.speaker, duration, tuple(segments), probs)
        )
    return results


# --- metrics ----------------------------------------------------------------------------


def auc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Mann-Whitney AUC of ``scores`` for the positives (ties count half).

    None when there are no positives or no negatives.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=bool)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return None
    ranks = rankdata(s)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def arousal_auc(clips: Sequence[ClipResult]) -> tuple[float | None, int, int]:
    """``(AUC, high clips, low clips)`` over the clips with a score and a high/low label."""
    pairs = [
        (c.arousal, arousal_class(c.label) == "high")
        for c in clips
        if c.arousal is not None and arousal_class(c.label) is not None
    ]
    high = sum(1 for _, h in pairs if h)
    value = auc([a for a, _ in pairs if a is not None], [h for _, h in pairs])
    return value, high, len(pairs) - high


@dataclass(frozen=True, slots=True)
class ClassAccuracy:
    """The voice emotion model on one labelled class."""

    clips: int
    predicted: int
    correct: int
    expressible: bool

    @property
    def accuracy(self) -> float | None:
        """Correct over clips with a prediction; None when inexpressible or none predicted."""
        if not self.expressible or self.predicted == 0:
            return None
        return self.correct / self.predicted


@dataclass(frozen=True, slots=True)
class VoiceEvalReport:
    """Arousal AUC, coverage and (with a model) per-class accuracy."""

    clips: tuple[ClipResult, ...]
    model: str | None
    per_class: Mapping[str, ClassAccuracy] = field(default_factory=dict)

    @property
    def voiced(self) -> int:
        """Clips with a voiced segment."""
        return sum(1 for c in self.clips if c.voiced)

    @property
    def scored(self) -> int:
        """Clips with an arousal score."""
        return sum(1 for c in self.clips if c.arousal is not None)

    @property
    def speakers(self) -> list[str]:
        """Speakers, in order of first appearance."""
        return list(dict.fromkeys(c.speaker for c in self.clips))

    def arousal(self) -> tuple[float | None, int, int]:
        """Pooled :func:`arousal_auc`."""
        return arousal_auc(self.clips)

    def arousal_by_speaker(self) -> dict[str, tuple[float | None, int, int]]:
        """:func:`arousal_auc` of each speaker's clips."""
        return {s: arousal_auc([c for c in self.clips if c.speaker == s]) for s in self.speakers}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able figures."""
        value, high, low = self.arousal()
        n = len(self.clips)
        out: dict[str, Any] = {
            "clips": n,
            "speakers": len(self.speakers),
            "voiced": self.voiced,
            "coverage": self.voiced / n if n else None,
            "scored": self.scored,
            "arousal_auc": value,
            "arousal_high": high,
            "arousal_low": low,
            "arousal_auc_by_speaker": {
                s: {"auc": a, "high": h, "low": lo}
                for s, (a, h, lo) in self.arousal_by_speaker().items()
            },
            "emotion_model": self.model,
            "per_class": {
                name: {
                    "clips": c.clips,
                    "predicted": c.predicted,
                    "correct": c.correct,
                    "expressible": c.expressible,
                    "accuracy": c.accuracy,
                }
                for name, c in self.per_class.items()
            },
            "results": [
                {
                    "filename": c.filename,
                    "label": c.label,
                    "speaker": c.speaker,
                    "segments": len(c.segments),
                    "voiced_secs": round(sum(s.duration_secs for s in c.segments), 3),
                    "arousal": c.arousal,
                    "predicted": None if c.predicted is None else c.predicted.value,
                }
                for c in self.clips
            ],
        }
        return out


def voice_report(
    clips: Sequence[ClipResult],
    model: str | None = None,
    expressible: frozenset[Emotion] | None = None,
) -> VoiceEvalReport:
    """Count the figures; ``expressible`` = the model's classes (None: no model)."""
    per_class: dict[str, ClassAccuracy] = {}
    if model is not None:
        can = expressible or frozenset()
        for name in VOICE_CLASSES:
            mine = [c for c in clips if c.label == name]
            if not mine:
                continue
            predicted = [c for c in mine if c.predicted is not None]
            correct = sum(1 for c in predicted if c.predicted is not None and c.predicted == name)
            ok = name != "bored" and Emotion(name) in can
            per_class[name] = ClassAccuracy(len(mine), len(predicted), correct, ok)
    return VoiceEvalReport(tuple(clips), model, per_class)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def format_voice_report(report: VoiceEvalReport, verbose: bool = False) -> str:
    """The report as text."""
    n = len(report.clips)
    speakers = report.speakers
    who = (
        f"{len(speakers)} speakers"
        if speakers != [""]
        else "1 speaker (no speaker column: all clips share one baseline)"
    )
    value, high, low = report.arousal()
    lines = [
        f"voice eval: {n} clips, {who}",
        f"coverage: {report.voiced}/{n} clips with a voiced segment"
        f" ({100.0 * report.voiced / n:.1f} %)",
        f"scored: {report.scored}/{n} clips with an arousal score"
        " (none during each speaker's warm-up)",
        f"arousal AUC (high: angry, happy, fear vs low: sad, bored): {_fmt(value)}"
        f" on {high} high and {low} low clips",
    ]
    if len(speakers) > 1:
        for s, (a, h, lo) in report.arousal_by_speaker().items():
            lines.append(f"  speaker {s}: {_fmt(a)} ({h} high, {lo} low)")
    if report.model is None:
        lines.append("voice emotion: no voice emotion model configured (--model)")
    else:
        lines.append(f"voice emotion model: {report.model}")
        lines.append(f"  {'class':10s} {'clips':>5s} {'predicted':>9s} {'correct':>7s} accuracy")
        for name, cls in report.per_class.items():
            acc = "not a class of the model" if not cls.expressible else _fmt(cls.accuracy)
            lines.append(f"  {name:10s} {cls.clips:5d} {cls.predicted:9d} {cls.correct:7d} {acc}")
    if verbose:
        lines.append("")
        lines.append(f"  {'clip':24s} {'label':8s} {'speaker':8s} {'segs':>4s} arousal predicted")
        for c in report.clips:
            pred = "-" if c.predicted is None else c.predicted.value
            lines.append(
                f"  {c.filename:24s} {c.label:8s} {c.speaker:8s} {len(c.segments):4d}"
                f" {_fmt(c.arousal, 2):>7s} {pred}"
            )
    return "\n".join(lines)
