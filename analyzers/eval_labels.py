"""Labels files of the ``meetmood eval`` commands: CSV rows that name a file and its label.

One reader for every evaluation (faces, detection, voice), so that they accept the same
files and report bad input the same way: ``file:line: reason``.
"""

from __future__ import annotations

import csv
from pathlib import Path

#: First-row cells that mark a header line.
HEADER_NAMES = frozenset({"filename", "file", "image", "clip", "path"})


class EvalInputError(ValueError):
    """Input an evaluation cannot use: a labels file, a label, an image or a clip.

    The message names the file (and line) first, ``file:line: reason``; the CLI
    prints it as it is.
    """


def read_label_rows(path: Path, columns: str, items: str) -> list[tuple[int, list[str]]]:
    """``(line, cells)`` for every data row of a labels file; cells stripped, two at least.

    A header line is optional, blank lines and ``#`` comments are skipped, a file name
    may appear once. ``columns`` (``"filename,label"``) and ``items`` (``"images"``) only
    word the messages.

    Raises:
        EvalInputError: If the file is missing, unreadable or lists nothing, or a row is
            malformed or repeated.
    """
    if not path.is_file():
        raise EvalInputError(f"{path}: labels file does not exist")
    try:
        # utf-8-sig: spreadsheets often save a byte-order mark.
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise EvalInputError(f"{path}: cannot read the labels file: {e}") from e
    out: list[tuple[int, list[str]]] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if not out and cells[0].lower() in HEADER_NAMES:
            continue
        if len(cells) < 2 or not cells[0] or not cells[1]:
            raise EvalInputError(f"{path}:{line}: expected '{columns}'")
        if cells[0] in seen:
            raise EvalInputError(
                f"{path}:{line}: {cells[0]!r} is listed twice (first on line {seen[cells[0]]})"
            )
        seen[cells[0]] = line
        out.append((line, cells))
    if not out:
        raise EvalInputError(f"{path}: the labels file lists no {items}")
    return out
