"""Meeting reports: one meeting, live or ended, as HTML, PDF, JSON or CSV.

- :mod:`bot.report.model` — :class:`MeetingReport`, the versioned data every format
  shows (its JSON schema is committed as ``bot/report/schema.json``);
- :mod:`bot.report.build` — :func:`build_report`: the store in, the model out (states
  streamed a page at a time and folded into running sums);
- :mod:`bot.report.page` — JSON and the self-contained HTML page;
- :mod:`bot.report.pdf` — the PDF (fpdf2);
- :mod:`bot.report.charts` — matplotlib charts (inline SVG, PNG);
- :mod:`bot.report.table` — the CSV: one row per stored state, streamed.

:func:`render` turns a built report into bytes of one format; it is blocking (charts),
so the server runs it in a thread. The CSV does not go through the model: it is
streamed from the store by :func:`~bot.report.table.csv_chunks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.report.build import MeetingMissing, build_report, meeting_span
from bot.report.model import SCHEMA_VERSION, MeetingReport, ReportNotice, json_schema
from bot.report.table import csv_chunks

__all__ = [
    "FORMATS",
    "SCHEMA_VERSION",
    "MeetingMissing",
    "MeetingReport",
    "ReportFormat",
    "ReportNotice",
    "build_report",
    "csv_chunks",
    "filename",
    "generator",
    "json_schema",
    "meeting_span",
    "render",
]

ReportFormat = Literal["html", "pdf", "json", "csv"]


@dataclass(frozen=True, slots=True)
class FormatInfo:
    """How one format is served: its media type and file extension."""

    content_type: str
    charset: str | None
    extension: str


FORMATS: dict[str, FormatInfo] = {
    "html": FormatInfo("text/html", "utf-8", "html"),
    "pdf": FormatInfo("application/pdf", None, "pdf"),
    "json": FormatInfo("application/json", "utf-8", "json"),
    "csv": FormatInfo("text/csv", "utf-8", "csv"),
}


def filename(name: str, meeting_id: str, start_ts: float, fmt: str) -> str:
    """A download name: ``meetmood-report-<name>-<date>.<ext>`` (ASCII, no spaces)."""
    import datetime as dt
    import re

    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()[:40] or meeting_id
    day = dt.datetime.fromtimestamp(start_ts).astimezone().strftime("%Y-%m-%d")
    return f"meetmood-report-{slug}-{day}.{FORMATS[fmt].extension}"


def generator() -> str:
    """``meetmood <version>``: who made a report."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"meetmood {version('meetmood')}"
    except PackageNotFoundError:
        return "meetmood (development)"


def render(report: MeetingReport, fmt: str) -> bytes:
    """A built report in ``html``, ``pdf`` or ``json`` (not ``csv``: see :func:`csv_chunks`).

    Blocking: run it in a thread from the event loop.
    """
    if fmt == "json":
        from bot.report.page import to_json

        return to_json(report).encode()
    if fmt == "html":
        from bot.report.page import to_html

        return to_html(report).encode()
    if fmt == "pdf":
        from bot.report.pdf import to_pdf

        return to_pdf(report)
    raise ValueError(f"{fmt!r} is streamed, not rendered")
