"""``meetmood eval faces`` / ``eval detect`` / ``eval sample-sets``: reports, numbers, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from analyzers.eval_labels import EvalInputError
from analyzers.face.bench import ASTRONAUT_FACE, lfw_subset, lfw_tile
from analyzers.face.eval import (
    LABEL_ALIASES,
    DetectionRow,
    EmotionPrediction,
    detection_report,
    emotion_report,
    format_detection_report,
    format_emotion_report,
    read_emotion_labels,
    read_face_counts,
)
from analyzers.types import EMOTIONS, Emotion
from tests.fixtures import run_cli
from tests.media import astronaut as load_astronaut

EVAL_DATA = Path(__file__).parent / "data" / "eval"
HAPPY = EMOTIONS.index(Emotion.HAPPY)
SURPRISE = EMOTIONS.index(Emotion.SURPRISE)


def _write_rgb(path: Path, rgb: np.ndarray) -> None:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


# astronaut and the root logger's restore (main() installs its own handler): tests/fixtures.py.


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Whole photos with known answers: the astronaut smiles; a gray card has no face.

    The mirrored astronaut is deliberately labelled "surprised", so the report must
    count one wrong answer (label surprise, predicted happy).
    """
    folder = tmp_path_factory.mktemp("photos")
    astronaut = load_astronaut()
    _write_rgb(folder / "astronaut.png", astronaut)
    _write_rgb(folder / "mirrored.jpg", np.ascontiguousarray(astronaut[:, ::-1]))
    _write_rgb(folder / "blank.png", np.full((240, 320, 3), 128, np.uint8))
    (folder / "labels.csv").write_text(
        "filename,label\nastronaut.png,Happiness\nmirrored.jpg, surprised\nblank.png,anger\n"
    )
    return folder


def _confusion_rows(text: str) -> dict[str, list[int]]:
    lines = text.splitlines()
    start = lines.index("confusion matrix (rows: label, columns: predicted)")
    assert lines[start + 1].split() == [e.value for e in EMOTIONS]
    rows = {}
    for line in lines[start + 2 : start + 2 + len(EMOTIONS)]:
        name, *cells = line.split()
        rows[name] = [int(c) for c in cells]
    return rows


# --- labels files and metrics (no model) ------------------------------------------------


@pytest.mark.unit
def test_labels_accept_aliases_header_bom_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(
        "\ufefffilename,label\n# a comment\na.jpg,Happiness\n\nb.jpg, anger \nc.jpg,SU\n"
        "d.jpg,afraid\ne.jpg,neutral\n",
        encoding="utf-8",
    )
    assert read_emotion_labels(path) == [
        ("a.jpg", Emotion.HAPPY),
        ("b.jpg", Emotion.ANGRY),
        ("c.jpg", Emotion.SURPRISE),
        ("d.jpg", Emotion.FEAR),
        ("e.jpg", Emotion.NEUTRAL),
    ]
    # No header is fine too.
    path.write_text("x.png,sad\n")
    assert read_emotion_labels(path) == [("x.png", Emotion.SAD)]
    assert set(LABEL_ALIASES.values()) == set(EMOTIONS)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("filename,label\na.jpg,contempt\n", ":2: unknown label 'contempt'"),
        ("a.jpg,happy\na.jpg,sad\n", ":2: 'a.jpg' is listed twice (first on line 1)"),
        ("a.jpg\n", ":1: expected 'filename,label'"),
        ("filename,label\n", "lists no images"),
    ],
)
def test_bad_emotion_labels(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(content)
    with pytest.raises(EvalInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_emotion_labels(path)


@pytest.mark.unit
def test_face_counts(tmp_path: Path) -> None:
    path = tmp_path / "counts.csv"
    path.write_text("filename,faces\na.png,0\nb.png, 3\n")
    assert read_face_counts(path) == [("a.png", 0), ("b.png", 3)]
    for bad, message in (("a.png,-1\n", "negative"), ("a.png,two\n", "not a whole number")):
        path.write_text(bad)
        with pytest.raises(EvalInputError, match=message):
            read_face_counts(path)


@pytest.mark.unit
def test_emotion_report_counts() -> None:
    h, s, a = Emotion.HAPPY, Emotion.SAD, Emotion.ANGRY
    report = emotion_report(
        [
            EmotionPrediction("1", h, h, 0.9, 1),
            EmotionPrediction("2", h, s, 0.6, 1),
            EmotionPrediction("3", s, s, 0.7, 2),
            EmotionPrediction("4", a, h, 0.5, 1),
            EmotionPrediction("5", a, None, None, 0),
        ]
    )
    assert (report.images, report.evaluated, report.correct) == (5, 4, 2)
    assert report.accuracy == pytest.approx(0.5)
    assert report.coverage == pytest.approx(0.8)
    assert report.no_face == ("5",)
    happy, sad, angry = report.per_class[h], report.per_class[s], report.per_class[a]
    assert (happy.support, happy.predicted, happy.precision, happy.recall) == (2, 2, 0.5, 0.5)
    assert (sad.support, sad.predicted, sad.precision, sad.recall) == (1, 2, 0.5, 1.0)
    assert (angry.support, angry.predicted, angry.precision, angry.recall) == (1, 0, None, 0.0)
    assert report.per_class[Emotion.FEAR].recall is None  # no support: no ratio, not 0
    assert report.macro_recall == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    i = {e: k for k, e in enumerate(EMOTIONS)}
    assert report.confusion[i[h]][i[s]] == 1
    assert report.confusion[i[a]][i[h]] == 1
    assert sum(map(sum, report.confusion)) == 4  # the no-face image is in no cell
    text = format_emotion_report(report, "t", {"model": "m"}, verbose=True)
    assert text.splitlines()[0] == "t: model m"
    assert "no face found (not counted below): 5" in text
    assert "accuracy: 2 / 4 = 50.0 %" in text
    assert json.loads(json.dumps(report.to_dict()))["confusion"][i[a]][i[h]] == 1


@pytest.mark.unit
def test_detection_report_counts() -> None:
    report = detection_report(
        [DetectionRow("a", 1, 1), DetectionRow("b", 2, 1), DetectionRow("c", 0, 2)]
    )
    assert (report.exact, report.over, report.under) == (1, 1, 1)
    assert report.exact_match_rate == pytest.approx(1 / 3)
    assert report.mean_abs_error == pytest.approx((0 + 1 + 2) / 3)
    assert (report.expected_total, report.found_total) == (3, 4)
    text = format_detection_report(report, verbose=True)
    assert "b                2      1  under" in text
    assert "c                0      2  over" in text


# --- eval faces ------------------------------------------------------------------------


@pytest.mark.model
def test_eval_faces_whole_photos(
    capsys: pytest.CaptureFixture[str], photos: Path, astronaut: np.ndarray
) -> None:
    code, out, err = run_cli(
        capsys, "eval", "faces", photos, "--labels", photos / "labels.csv", "--device", "cpu"
    )
    assert code == 0, err
    assert "faces found: 2 / 3 images (coverage 66.7 %)" in out
    assert "no face found (not counted below): blank.png" in out
    assert "accuracy: 1 / 2 = 50.0 %" in out
    rows = _confusion_rows(out)
    assert rows["happy"][HAPPY] == 1
    assert rows["surprise"][HAPPY] == 1  # the deliberately wrong label
    assert rows["angry"] == [0] * 7  # the blank card is not counted as a class
    assert sum(map(sum, rows.values())) == 2
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("class "))
    assert lines[start].split() == ["class", "support", "predicted", "precision", "recall"]
    per_class = {line.split()[0]: line.split()[1:] for line in lines[start + 1 : start + 8]}
    assert per_class["happy"] == ["1", "2", "50.0", "%", "100.0", "%"]
    assert per_class["surprise"] == ["1", "0", "–", "0.0", "%"]


@pytest.mark.model
def test_eval_faces_json_and_detector_flag(
    capsys: pytest.CaptureFixture[str], photos: Path
) -> None:
    code, out, err = run_cli(
        capsys,
        "eval",
        "faces",
        photos,
        "--labels",
        photos / "labels.csv",
        "--device",
        "cpu",
        "--detector",
        "haar",
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["settings"] == {
        "model": "mini_xception",
        "detector": "haar",
        "device": "cpu",
        "crops": False,
    }
    assert (report["images"], report["faces_found"], report["correct"]) == (3, 2, 1)
    assert report["coverage"] == pytest.approx(2 / 3)
    assert report["accuracy"] == pytest.approx(0.5)
    assert report["no_face"] == ["blank.png"]
    assert report["classes"] == [e.value for e in EMOTIONS]
    assert report["confusion"][SURPRISE][HAPPY] == 1
    assert report["per_class"]["happy"] == {
        "support": 1,
        "predicted": 2,
        "correct": 1,
        "precision": 0.5,
        "recall": 1.0,
    }
    by_name = {p["filename"]: p for p in report["predictions"]}
    assert by_name["astronaut.png"]["predicted"] == "happy"
    assert by_name["astronaut.png"]["confidence"] > 0.9
    assert by_name["blank.png"] == {
        "filename": "blank.png",
        "label": "angry",
        "predicted": None,
        "confidence": None,
        "faces": 0,
    }


@pytest.mark.model
def test_eval_faces_tight_crops(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, astronaut: np.ndarray
) -> None:
    x, y, w, h = ASTRONAUT_FACE
    face = astronaut[y : y + h, x : x + w]
    _write_rgb(tmp_path / "face.png", face)
    gray48 = cv2.resize(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY), (48, 48))
    assert cv2.imwrite(str(tmp_path / "face48.png"), gray48)  # a gray file, as in FER2013
    (tmp_path / "labels.csv").write_text("face.png,happy\nface48.png,ha\n")
    args = ["eval", "faces", tmp_path, "--labels", tmp_path / "labels.csv", "--device", "cpu"]
    code, out, err = run_cli(capsys, *args, "--crops", "--verbose")
    assert code == 0, err
    assert "detector none (--crops)" in out.splitlines()[0]
    assert "faces found: 2 / 2 images (coverage 100.0 %)" in out
    assert "accuracy: 2 / 2 = 100.0 %" in out
    assert _confusion_rows(out)["happy"][HAPPY] == 2
    # Without --crops the detector gets no face from a 48x48 crop: reported, not counted.
    code, out, err = run_cli(capsys, *args, "--detector", "haar")
    assert code == 0, err
    assert "face48.png" in out.split("no face found (not counted below): ")[1].splitlines()[0]


@pytest.mark.model
def test_eval_faces_compare_deepface(
    capsys: pytest.CaptureFixture[str], photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    monkeypatch.setenv("DEEPFACE_HOME", "/nonexistent/decoy")
    code, out, err = run_cli(
        capsys,
        "eval",
        "faces",
        photos,
        "--labels",
        photos / "labels.csv",
        "--device",
        "cpu",
        "--compare-deepface",
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    theirs = report["deepface_crops"]
    assert theirs["no_face"] == ["blank.png"]
    assert theirs["confusion"][HAPPY][HAPPY] == 1
    assert theirs["confusion"][SURPRISE][HAPPY] == 1
    assert os.environ["DEEPFACE_HOME"] == "/nonexistent/decoy"  # restored


@pytest.mark.model
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing labels", "{d}/nope.csv: labels file does not exist"),
        ("unknown label", "{d}/labels.csv:2: unknown label 'contempt'"),
        ("unreadable image", "{d}/broken.jpg: cannot read the image"),
        ("missing image", "{d}/gone.png: image listed in the labels is missing"),
        ("missing folder", "{d}/nowhere: image folder does not exist"),
    ],
)
def test_eval_faces_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str, message: str
) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    labels = tmp_path / "labels.csv"
    folder = tmp_path
    if case == "missing labels":
        labels = tmp_path / "nope.csv"
    elif case == "unknown label":
        labels.write_text("filename,label\nbroken.jpg,contempt\n")
    elif case == "unreadable image":
        labels.write_text("broken.jpg,happy\n")
    elif case == "missing image":
        labels.write_text("broken.jpg,happy\ngone.png,sad\n")
    else:
        labels.write_text("broken.jpg,happy\n")
        folder = tmp_path / "nowhere"
    code, out, err = run_cli(capsys, "eval", "faces", folder, "--labels", labels, "--device", "cpu")
    assert code == 2
    assert out == ""
    assert f"meetmood: {message.format(d=tmp_path)}" in err
    assert "Traceback" not in err


@pytest.mark.unit
def test_eval_cli_refuses_crops_with_deepface(
    capsys: pytest.CaptureFixture[str], photos: Path
) -> None:
    code, _, err = run_cli(
        capsys,
        "eval",
        "faces",
        photos,
        "--labels",
        photos / "labels.csv",
        "--crops",
        "--compare-deepface",
    )
    assert code == 2
    assert "does not apply to --crops" in err


# --- eval detect -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def detect_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("detect")
    faces, non_faces = lfw_subset()
    astronaut = load_astronaut()
    _write_rgb(folder / "astronaut.png", astronaut)
    # Two faces: her head and a smaller mirrored copy, side by side (512 x 256).
    head = astronaut[0:256, 96:352]
    right = np.zeros_like(head)
    right[28:228, 28:228] = cv2.resize(head[:, ::-1], (200, 200), interpolation=cv2.INTER_AREA)
    _write_rgb(folder / "two.png", np.concatenate([head, right], axis=1))
    _write_rgb(folder / "lfw_face.png", lfw_tile(faces[0], 100))
    for i in range(3):
        _write_rgb(folder / f"nonface_{i}.png", lfw_tile(non_faces[i], 100))
    # astronaut is listed with 2 faces on purpose: one "under".
    (folder / "counts.csv").write_text(
        "filename,faces\nastronaut.png,2\ntwo.png,2\nlfw_face.png,1\n"
        "nonface_0.png,0\nnonface_1.png,0\nnonface_2.png,0\n"
    )
    return folder


@pytest.mark.model
@pytest.mark.parametrize("detector", ["mediapipe", "haar"])
def test_eval_detect_counts(
    capsys: pytest.CaptureFixture[str], detect_set: Path, detector: str
) -> None:
    code, out, err = run_cli(
        capsys,
        "eval",
        "detect",
        detect_set,
        "--labels",
        detect_set / "counts.csv",
        "--detector",
        detector,
        "--device",
        "cpu",
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["settings"]["detector"] == detector
    found = {r["filename"]: r["found"] for r in report["rows"]}
    assert found == {
        "astronaut.png": 1,
        "two.png": 2,
        "lfw_face.png": 1,
        "nonface_0.png": 0,
        "nonface_1.png": 0,
        "nonface_2.png": 0,
    }
    assert (report["images"], report["exact"], report["over"], report["under"]) == (6, 5, 0, 1)
    assert report["exact_match_rate"] == pytest.approx(5 / 6)
    assert report["mean_abs_error"] == pytest.approx(1 / 6)
    assert (report["expected_total"], report["found_total"]) == (5, 4)


@pytest.mark.model
def test_eval_detect_verbose_text(capsys: pytest.CaptureFixture[str], detect_set: Path) -> None:
    args = ["eval", "detect", detect_set, "--labels", detect_set / "counts.csv"]
    code, out, err = run_cli(capsys, *args, "--detector", "haar", "--verbose")
    assert code == 0, err
    assert out.splitlines()[0].startswith("face detection eval: detector haar")
    assert "exact count: 5 / 6 = 83.3 %" in out
    assert "mean absolute error: 0.167 faces per image" in out
    assert "too many faces: 0 images; too few: 1 images" in out
    table = out.split("expected  found\n")[1].splitlines()
    assert table[0].split() == ["astronaut.png", "2", "1", "under"]
    assert len(table) == 6
    (detect_set / "bad.csv").write_text("astronaut.png,1.5\n")
    code, out, err = run_cli(
        capsys, "eval", "detect", detect_set, "--labels", detect_set / "bad.csv"
    )
    assert code == 2
    assert ":1: face count '1.5' is not a whole number" in err


@pytest.mark.model
def test_sample_sets_are_written_and_readable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_cli(capsys, "eval", "sample-sets", tmp_path)
    assert code == 0, err
    counts = dict(read_face_counts(tmp_path / "detect" / "counts.csv"))
    assert all((tmp_path / "detect" / name).is_file() for name in counts)
    by_kind: dict[str, list[int]] = {}
    for name, n in counts.items():
        by_kind.setdefault(name.rsplit("_", 1)[0], []).append(n)
    assert by_kind.keys() == {"lfw_face", "lfw_nonface", "scene"}
    assert by_kind["lfw_face"] == [1] * 100
    assert by_kind["lfw_nonface"] == [0] * 100
    assert len(by_kind["scene"]) == 12 and set(by_kind["scene"]) == {1, 2, 3}
    for folder in ("faces", "crops"):
        labels = read_emotion_labels(tmp_path / folder / "labels.csv")
        assert labels and {label for _, label in labels} == {Emotion.HAPPY}
        assert all((tmp_path / folder / name).is_file() for name, _ in labels)
    assert f"detect: {tmp_path / 'detect'}" in out
    # The committed label files (tests/data/eval, see SOURCE.md) are exactly what it writes.
    for written, committed in (
        ("detect/counts.csv", "sample_detect_counts.csv"),
        ("faces/labels.csv", "sample_faces_labels.csv"),
        ("crops/labels.csv", "sample_crops_labels.csv"),
    ):
        assert (tmp_path / written).read_text() == (EVAL_DATA / committed).read_text()
