"""Rendering a :class:`~bot.report.model.MeetingReport`: JSON and a self-contained HTML page.

The HTML page is one file with nothing outside it: CSS inline, charts as inline SVG
drawn by matplotlib (:mod:`bot.report.charts`), no script, no font, image or link that
points anywhere. Text from participants and summaries is escaped (Jinja2 autoescape).
Rendering is CPU work (matplotlib): callers on the event loop run it in a thread.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from bot.report.charts import participant_chart, room_chart, to_svg
from bot.report.model import SCHEMA_VERSION, MeetingReport, ReportReading
from bot.summaries.local import clock

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Registry groups in the order the state tables list them, with their headings.
GROUP_TITLES = {
    "engagement": "Engagement and its components",
    "affect": "Valence and arousal",
    "basic": "The seven basic expressions",
    "vocal": "The seed's 11 “vocal” states",
    "composite": "The seed's 10 composite states",
}


def to_json(report: MeetingReport) -> str:
    """The report as JSON (the schema is ``bot/report/schema.json``)."""
    return report.model_dump_json(indent=2) + "\n"


def date_text(ts: float) -> str:
    """A Unix time as the server's local date and time with its UTC offset."""
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z (UTC%z)")


def duration_text(secs: float) -> str:
    """``1 h 02 min``, ``12 min 05 s`` or ``45 s``."""
    total = max(0, round(secs))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h} h {m:02d} min"
    return f"{m} min {s:02d} s" if m else f"{s} s"


def num(value: float | None, digits: int = 2, signed: bool = False) -> str:
    """A figure for a table; ``—`` for ``None`` (the reason is shown beside it)."""
    if value is None:
        return "—"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def pct(value: float | None, digits: int = 0) -> str:
    """A 0-1 share as a percentage."""
    return "—" if value is None else f"{100 * value:.{digits}f} %"


def reading_value(r: ReportReading) -> str:
    """A state's mean for its range (signed when the range is -1..1)."""
    return num(r.mean, 2, signed=r.low < 0)


def groups(states: list[ReportReading]) -> list[tuple[str, list[ReportReading]]]:
    """States grouped as the registry groups them, in display order."""
    return [(title, [r for r in states if r.group == g]) for g, title in GROUP_TITLES.items()]


@cache
def environment() -> jinja2.Environment:
    """The report's template environment (autoescape on)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        clock=clock, date=date_text, duration=duration_text, num=num, pct=pct, value=reading_value
    )
    env.globals.update(groups=groups, schema_version=SCHEMA_VERSION)
    return env


def to_html(report: MeetingReport) -> str:
    """The report as one self-contained HTML page. Blocking: charts are drawn here."""
    duration = report.meeting.duration_secs
    room_svg = Markup(to_svg(room_chart(report)))  # matplotlib escapes the text it draws
    charts = {
        p.participant_id: Markup(to_svg(participant_chart(p, duration)))
        for p in report.participants
    }
    return (
        environment().get_template("report.html").render(r=report, room_svg=room_svg, charts=charts)
    )
