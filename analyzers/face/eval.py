"""Accuracy of the face pipeline on labelled images: ``meetmood eval faces`` and ``eval detect``.

Two evaluations, both on a folder of images and a CSV file naming them:

- **Emotions** (``filename,label``): each image's label is one of our seven
  classes (or an alias, :data:`LABEL_ALIASES`). A whole photo goes through the
  configured analyzer (detector, then emotion model) and the largest face is
  read; with ``crops=True`` the image *is* the face (no detection) and goes
  straight to the emotion model with the analyzer's own crop recipe. Images
  where no face is found are listed apart: they are never counted as a class,
  and coverage (faces found / images) says how many there were.
- **Detection** (``filename,faces``): how many faces the analyzer finds in each
  image against the expected count.

Metrics are plain counting code (:func:`emotion_report`, :func:`detection_report`)
so they are tested without a model. Runs in the calling thread of the CLI
process; no asyncio, nothing from ``bot/`` or ``web/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from analyzers.eval_labels import EvalInputError, read_label_rows
from analyzers.face.bench import classify_crop
from analyzers.types import EMOTIONS, Emotion, VideoSample

if TYPE_CHECKING:
    from analyzers.face.emotion import FaceEmotionAnalyzer

#: Accepted spellings of each class in a labels file (compared in lower case, surrounding
#: blanks ignored): the class name, its noun and adjective forms, and the two- and
#: three-letter codes of common posed-expression sets (KDEF: AF AN DI HA NE SA SU;
#: JAFFE: AN DI FE HA NE SA SU). Classes outside our seven (contempt, calm, ...) are
#: errors, not silently merged.
LABEL_ALIASES: dict[str, Emotion] = {
    **{e.value: e for e in EMOTIONS},
    "anger": Emotion.ANGRY,
    "an": Emotion.ANGRY,
    "ang": Emotion.ANGRY,
    "disgusted": Emotion.DISGUST,
    "di": Emotion.DISGUST,
    "dis": Emotion.DISGUST,
    "fearful": Emotion.FEAR,
    "afraid": Emotion.FEAR,
    "scared": Emotion.FEAR,
    "fe": Emotion.FEAR,
    "af": Emotion.FEAR,
    "fea": Emotion.FEAR,
    "happiness": Emotion.HAPPY,
    "joy": Emotion.HAPPY,
    "ha": Emotion.HAPPY,
    "hap": Emotion.HAPPY,
    "sadness": Emotion.SAD,
    "sa": Emotion.SAD,
    "surprised": Emotion.SURPRISE,
    "su": Emotion.SURPRISE,
    "sur": Emotion.SURPRISE,
    "ne": Emotion.NEUTRAL,
    "neu": Emotion.NEUTRAL,
}


def parse_emotion_label(text: str) -> Emotion:
    """Our class for a label in a labels file.

    Raises:
        ValueError: If the label is not one of the seven classes or an alias.
    """
    emotion = LABEL_ALIASES.get(text.strip().lower())
    if emotion is None:
        names = ", ".join(e.value for e in EMOTIONS)
        raise ValueError(f"unknown label {text.strip()!r} (expected one of {names}, or an alias)")
    return emotion


def _parse_count(text: str) -> int:
    try:
        count = int(text.strip())
    except ValueError:
        raise ValueError(f"face count {text.strip()!r} is not a whole number") from None
    if count < 0:
        raise ValueError(f"face count {count} is negative")
    return count


def _read_rows(path: Path, value_name: str) -> list[tuple[int, str, str]]:
    """``(line, filename, value)`` for every data row of a two-column CSV file."""
    rows = read_label_rows(path, f"filename,{value_name}", "images")
    return [(line, cells[0], cells[1]) for line, cells in rows]


def read_emotion_labels(path: Path) -> list[tuple[str, Emotion]]:
    """Read ``filename,label`` rows (header line optional, ``#`` comments skipped).

    Raises:
        EvalInputError: If the file is missing or empty, a row is malformed or
            repeated, or a label is unknown.
    """
    labels = []
    for line, filename, text in _read_rows(path, "label"):
        try:
            labels.append((filename, parse_emotion_label(text)))
        except ValueError as e:
            raise EvalInputError(f"{path}:{line}: {e}") from None
    return labels


def read_face_counts(path: Path) -> list[tuple[str, int]]:
    """Read ``filename,faces`` rows (header line optional, ``#`` comments skipped).

    Raises:
        EvalInputError: If the file is missing or empty, a row is malformed or
            repeated, or a count is not a whole number >= 0.
    """
    counts = []
    for line, filename, text in _read_rows(path, "faces"):
        try:
            counts.append((filename, _parse_count(text)))
        except ValueError as e:
            raise EvalInputError(f"{path}:{line}: {e}") from None
    return counts


def load_rgb(path: Path) -> np.ndarray:
    """Read an image file as H x W x 3 uint8 RGB (gray and 16-bit files converted).

    Raises:
        EvalInputError: If the file is missing or OpenCV cannot decode it.
    """
    if not path.is_file():
        raise EvalInputError(f"{path}: image does not exist")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise EvalInputError(
            f"{path}: cannot read the image (not an image, or a format OpenCV lacks)"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def check_images(folder: Path, filenames: Sequence[str]) -> None:
    """Fail early, before any model is loaded, when the folder or a listed file is missing.

    Raises:
        EvalInputError: Naming the first missing file (and how many are missing).
    """
    if not folder.is_dir():
        raise EvalInputError(f"{folder}: image folder does not exist")
    missing = [name for name in filenames if not (folder / name).is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise EvalInputError(f"{folder / missing[0]}: image listed in the labels is missing{more}")


# --- emotions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmotionPrediction:
    """What the pipeline said about one labelled image.

    Attributes:
        filename: As listed in the labels file.
        label: The true class.
        predicted: The model's top class for the largest face; ``None`` when no face
            was found.
        confidence: The top-class probability; ``None`` when no face was found.
        faces: Faces found in the image (1 in crop mode).
    """

    filename: str
    label: Emotion
    predicted: Emotion | None
    confidence: float | None
    faces: int


@dataclass(frozen=True, slots=True)
class ClassScores:
    """Precision and recall of one class; ``None`` where the ratio has no denominator."""

    support: int
    predicted: int
    correct: int
    precision: float | None
    recall: float | None


@dataclass(frozen=True, slots=True)
class EmotionReport:
    """Accuracy, per-class precision/recall and the confusion matrix.

    Only images with a face count: ``confusion[i][j]`` is the number of faces
    labelled ``EMOTIONS[i]`` and predicted ``EMOTIONS[j]``. Images without a face
    are in ``no_face``.
    """

    predictions: tuple[EmotionPrediction, ...]
    confusion: tuple[tuple[int, ...], ...]
    per_class: Mapping[Emotion, ClassScores]
    no_face: tuple[str, ...]

    @property
    def images(self) -> int:
        """Labelled images read."""
        return len(self.predictions)

    @property
    def evaluated(self) -> int:
        """Images where a face was found (the denominator of accuracy)."""
        return self.images - len(self.no_face)

    @property
    def correct(self) -> int:
        """Faces whose top class is the label."""
        return sum(self.confusion[i][i] for i in range(len(EMOTIONS)))

    @property
    def accuracy(self) -> float | None:
        """``correct / evaluated``; ``None`` when no face was found at all."""
        return self.correct / self.evaluated if self.evaluated else None

    @property
    def coverage(self) -> float:
        """``evaluated / images``: the share of images where a face was found."""
        return self.evaluated / self.images if self.images else 0.0

    @property
    def macro_recall(self) -> float | None:
        """Mean recall over the classes present in the labels (balanced accuracy)."""
        recalls = [s.recall for s in self.per_class.values() if s.recall is not None]
        return sum(recalls) / len(recalls) if recalls else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready numbers."""
        return {
            "images": self.images,
            "faces_found": self.evaluated,
            "coverage": self.coverage,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "macro_recall": self.macro_recall,
            "classes": [e.value for e in EMOTIONS],
            "per_class": {
                e.value: {
                    "support": s.support,
                    "predicted": s.predicted,
                    "correct": s.correct,
                    "precision": s.precision,
                    "recall": s.recall,
                }
                for e, s in self.per_class.items()
            },
            "confusion": [list(row) for row in self.confusion],
            "no_face": list(self.no_face),
            "predictions": [
                {
                    "filename": p.filename,
                    "label": p.label.value,
                    "predicted": p.predicted.value if p.predicted is not None else None,
                    "confidence": p.confidence,
                    "faces": p.faces,
                }
                for p in self.predictions
            ],
        }


def emotion_report(predictions: Sequence[EmotionPrediction]) -> EmotionReport:
    """Count the predictions into an :class:`EmotionReport`."""
    index = {e: i for i, e in enumerate(EMOTIONS)}
    n = len(EMOTIONS)
    matrix = [[0] * n for _ in range(n)]
    no_face = []
    for p in predictions:
        if p.predicted is None:
            no_face.append(p.filename)
        else:
            matrix[index[p.label]][index[p.predicted]] += 1
    per_class = {}
    for e, i in index.items():
        support = sum(matrix[i])
        predicted = sum(matrix[r][i] for r in range(n))
        correct = matrix[i][i]
        per_class[e] = ClassScores(
            support=support,
            predicted=predicted,
            correct=correct,
            precision=correct / predicted if predicted else None,
            recall=correct / support if support else None,
        )
    return EmotionReport(
        predictions=tuple(predictions),
        confusion=tuple(tuple(row) for row in matrix),
        per_class=per_class,
        no_face=tuple(no_face),
    )


def predict_emotions(
    analyzer: FaceEmotionAnalyzer,
    folder: Path,
    labels: Sequence[tuple[str, Emotion]],
    *,
    crops: bool = False,
) -> list[EmotionPrediction]:
    """Run the analyzer on every labelled image and read its largest face.

    Args:
        analyzer: A loaded analyzer (its detector, model and crop recipe are used).
        folder: Where the files named in ``labels`` are.
        labels: ``(filename, label)`` pairs.
        crops: The images are tight face crops: skip detection and give the whole
            image to the emotion model as one face box.

    Raises:
        EvalInputError: If an image cannot be read.
    """
    out = []
    for filename, label in labels:
        image = load_rgb(folder / filename)
        if crops:
            probs = classify_crop(analyzer, image)
            faces = 1
        else:
            result = analyzer.analyze(VideoSample(participant_id="eval", ts=0.0, image=image))
            faces = len(result.faces)
            probs = np.asarray(result.faces[0].probs) if result.faces else np.empty(0)
        if not probs.size:
            out.append(EmotionPrediction(filename, label, None, None, faces))
        else:
            top = int(np.argmax(probs))
            out.append(EmotionPrediction(filename, label, EMOTIONS[top], float(probs[top]), faces))
    return out


def predict_emotions_on_deepface_crops(
    analyzer: FaceEmotionAnalyzer, folder: Path, labels: Sequence[tuple[str, Emotion]]
) -> list[EmotionPrediction]:
    """Like :func:`predict_emotions`, but on the largest face DeepFace cuts out.

    Faces come from ``DeepFace.extract_faces(detector_backend="opencv")`` (aligned, as
    ``DeepFace.analyze`` crops them); the analyzer's emotion model reads each crop as
    a tight crop. This isolates what the detector and crop recipe are worth: same
    model, DeepFace's faces.

    Raises:
        EvalInputError: If an image cannot be read.
    """
    from analyzers.face.bench import deepface_faces, deepface_random_home

    out = []
    with deepface_random_home():
        for filename, label in labels:
            faces = deepface_faces(load_rgb(folder / filename))
            if not faces:
                out.append(EmotionPrediction(filename, label, None, None, 0))
                continue
            probs = classify_crop(analyzer, faces[0][1])
            top = int(np.argmax(probs))
            out.append(
                EmotionPrediction(filename, label, EMOTIONS[top], float(probs[top]), len(faces))
            )
    return out


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def _header_lines(title: str, settings: Mapping[str, object] | None) -> list[str]:
    if not title and not settings:
        return []
    details = ", ".join(f"{k} {v}" for k, v in (settings or {}).items())
    return [f"{title}: {details}" if title and details else title or details]


def format_emotion_report(
    report: EmotionReport,
    title: str = "",
    settings: Mapping[str, object] | None = None,
    *,
    verbose: bool = False,
) -> str:
    """The report as a readable text table (rows of the confusion matrix are labels).

    ``title`` and ``settings`` (``{"model": ..., "device": ...}``) make the first line.
    """
    lines = _header_lines(title, settings)
    lines.append(
        f"faces found: {report.evaluated} / {report.images} images "
        f"(coverage {_pct(report.coverage)})"
    )
    if report.no_face:
        shown = ", ".join(report.no_face[:10])
        more = f" … and {len(report.no_face) - 10} more" if len(report.no_face) > 10 else ""
        lines.append(f"no face found (not counted below): {shown}{more}")
    accuracy = report.accuracy
    lines.append(
        f"accuracy: {report.correct} / {report.evaluated} = {_pct(accuracy)}"
        f"   (mean per-class recall {_pct(report.macro_recall)})"
    )
    lines.append("")
    width = max(len(e.value) for e in EMOTIONS)
    lines.append(
        f"{'class':<{width}}  {'support':>7}  {'predicted':>9}  {'precision':>9}  {'recall':>8}"
    )
    for e, s in report.per_class.items():
        lines.append(
            f"{e.value:<{width}}  {s.support:>7}  {s.predicted:>9}  "
            f"{_pct(s.precision):>9}  {_pct(s.recall):>8}"
        )
    lines.append("")
    lines.append("confusion matrix (rows: label, columns: predicted)")
    cell = max(width, 5)
    lines.append(" " * width + "".join(f" {e.value:>{cell}}" for e in EMOTIONS))
    for e, row in zip(EMOTIONS, report.confusion, strict=True):
        lines.append(f"{e.value:<{width}}" + "".join(f" {n:>{cell}}" for n in row))
    if verbose:
        lines.append("")
        name_width = max(8, *(len(p.filename) for p in report.predictions))
        lines.append(
            f"{'filename':<{name_width}}  {'label':<{width}}  {'predicted':<{width}}  "
            f"{'conf':>6}  faces"
        )
        for p in report.predictions:
            predicted = p.predicted.value if p.predicted is not None else "(no face)"
            conf = f"{p.confidence:.3f}" if p.confidence is not None else "–"
            mark = "" if p.predicted in (None, p.label) else "  ✗"
            lines.append(
                f"{p.filename:<{name_width}}  {p.label.value:<{width}}  {predicted:<{width}}  "
                f"{conf:>6}  {p.faces:>5}{mark}"
            )
    return "\n".join(lines)


# --- detection -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DetectionRow:
    """Expected and found face counts of one image."""

    filename: str
    expected: int
    found: int


@dataclass(frozen=True, slots=True)
class DetectionReport:
    """Detection counts against expected counts, over a set of images."""

    rows: tuple[DetectionRow, ...]

    @property
    def images(self) -> int:
        """Images read."""
        return len(self.rows)

    @property
    def exact(self) -> int:
        """Images where the count is exactly right."""
        return sum(r.found == r.expected for r in self.rows)

    @property
    def exact_match_rate(self) -> float:
        """``exact / images``."""
        return self.exact / self.images if self.images else 0.0

    @property
    def mean_abs_error(self) -> float:
        """Mean of ``|found - expected|`` over images."""
        return sum(abs(r.found - r.expected) for r in self.rows) / self.images if self.rows else 0.0

    @property
    def over(self) -> int:
        """Images where more faces were found than expected."""
        return sum(r.found > r.expected for r in self.rows)

    @property
    def under(self) -> int:
        """Images where fewer faces were found than expected."""
        return sum(r.found < r.expected for r in self.rows)

    @property
    def expected_total(self) -> int:
        """Faces expected over all images."""
        return sum(r.expected for r in self.rows)

    @property
    def found_total(self) -> int:
        """Faces found over all images."""
        return sum(r.found for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready numbers."""
        return {
            "images": self.images,
            "exact": self.exact,
            "exact_match_rate": self.exact_match_rate,
            "mean_abs_error": self.mean_abs_error,
            "over": self.over,
            "under": self.under,
            "expected_total": self.expected_total,
            "found_total": self.found_total,
            "rows": [
                {"filename": r.filename, "expected": r.expected, "found": r.found}
                for r in self.rows
            ],
        }


def detection_report(rows: Sequence[DetectionRow]) -> DetectionReport:
    """Wrap the rows into a :class:`DetectionReport`."""
    return DetectionReport(rows=tuple(rows))


def count_faces(
    analyzer: FaceEmotionAnalyzer, folder: Path, counts: Sequence[tuple[str, int]]
) -> list[DetectionRow]:
    """Count the faces the analyzer finds in every listed image.

    The count is what the live pipeline would see: faces at least ``min_face_px``
    and at most ``max_faces`` per frame, from the analyzer's own detector.

    Raises:
        EvalInputError: If an image cannot be read.
    """
    rows = []
    for filename, expected in counts:
        image = load_rgb(folder / filename)
        result = analyzer.analyze(VideoSample(participant_id="eval", ts=0.0, image=image))
        rows.append(DetectionRow(filename, expected, len(result.faces)))
    return rows


def format_detection_report(
    report: DetectionReport,
    title: str = "",
    settings: Mapping[str, object] | None = None,
    *,
    verbose: bool = False,
) -> str:
    """The report as readable text; ``verbose`` adds the per-image table."""
    lines = _header_lines(title, settings)
    lines += [
        f"images: {report.images}; faces expected {report.expected_total}, "
        f"found {report.found_total}",
        f"exact count: {report.exact} / {report.images} = {_pct(report.exact_match_rate)}",
        f"mean absolute error: {report.mean_abs_error:.3f} faces per image",
        f"too many faces: {report.over} images; too few: {report.under} images",
    ]
    if verbose:
        name_width = max(8, *(len(r.filename) for r in report.rows))
        lines += ["", f"{'filename':<{name_width}}  expected  found"]
        for r in report.rows:
            mark = (
                {True: "  over", False: "  under"}[r.found > r.expected]
                if r.found != r.expected
                else ""
            )
            lines.append(f"{r.filename:<{name_width}}  {r.expected:>8}  {r.found:>5}{mark}")
    return "\n".join(lines)
