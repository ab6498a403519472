"""Every ``meetmood`` command reports a validation error alike: one ``key: reason`` line, exit 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fixtures import run_cli

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("argv", "key"),
    [
        (["eval", "detect", "{d}", "--labels", "{d}/c.csv", "--max-faces", "0"], "--max-faces"),
        (["eval", "detect", "{d}", "--labels", "{d}/c.csv", "--max-faces", "x"], "--max-faces"),
        (
            ["eval", "detect", "{d}", "--labels", "{d}/c.csv", "--max-faces", "100000"],
            "--max-faces",
        ),
        (["eval", "faces", "{d}"], "--labels"),
        (["eval", "faces", "{d}", "--labels", "{d}/c.csv", "--detector", "dlib"], "--detector"),
        (["eval", "faces", "{d}", "--labels", "{d}/missing.csv"], "{d}/missing.csv"),
        (["eval", "faces", "{d}", "--labels", "{d}/bad.csv"], "{d}/bad.csv:2"),
        (["eval", "detect", "{d}", "--labels", "{d}/c.csv", "--set", "x"], "--set 'x'"),
        (
            [
                "eval",
                "faces",
                "{d}",
                "--labels",
                "{d}/c.csv",
                "--set",
                "analyzers.face_emotion.fps=0",
            ],
            "analyzers.face_emotion.fps",
        ),
        (["serve", "--port", "http"], "--port"),
        (
            ["serve", "--set", "analyzers.face_emotion.max_faces=0"],
            "analyzers.face_emotion.max_faces",
        ),
        (["serve", "--set", "server.nope=1"], "server.nope"),
        (["serve", "--config", "{d}/none.toml"], "{d}/none.toml"),
        (["bench", "pipeline", "--participants", "0"], "--participants"),
        (["bench", "sidebar", "--seconds", "-1"], "--seconds"),
        (["bench", "voice", "--seconds", "nan"], "--seconds"),
        (["bench", "faces", "--batch-sizes", "0"], "--batch-sizes"),
        (["bench", "faces", "--threads", "0"], "--threads"),
        (["bench", "faces", "--repeats", "0"], "--repeats"),
        (["meeting", "frobnicate"], "COMMAND"),
    ],
)
def test_one_line_key_reason_and_status_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], key: str
) -> None:
    (tmp_path / "c.csv").write_text("a.png,1\n")
    (tmp_path / "bad.csv").write_text("filename,label\na.png,contempt\n")
    code, _, err = run_cli(capsys, *[a.format(d=tmp_path) for a in argv])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert re.match(r"meetmood[a-z ]*: \S", line), line
    expected_key = key.format(d=tmp_path)
    assert f": {expected_key}" in line, line
    assert "Traceback" not in err
    assert "http" not in line.lower() or key == "--port"  # no pydantic URL


def test_a_database_that_cannot_be_opened_is_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "meetings.sqlite3"
    folder.mkdir()  # a folder where the database file should be
    code, _, err = run_cli(capsys, "serve", "--port", "0", "--database", folder)
    assert code == 1
    assert f"meetmood: storage.database: cannot open {folder}" in err
    assert "Traceback" not in err
