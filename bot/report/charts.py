"""The report's charts, drawn by matplotlib: inline SVG for HTML, PNG for the PDF.

Each chart is a fresh :class:`matplotlib.figure.Figure` (no pyplot, no global state),
so charts can be drawn on any thread. Missing values are gaps, never zeros. The SVG is
made to sit inside an HTML page with no outside reference: no XML prolog, no DOCTYPE,
no metadata block and no namespace URLs (HTML parses inline SVG without them).
"""

from __future__ import annotations

import io
import math
import re
import threading
from collections.abc import Sequence
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.typing import RcKeyType

from bot.report.model import MeetingReport, ReportParticipant, TimeSeries
from bot.summaries.local import clock

#: Colours (colour-blind safe: Okabe-Ito).
COLOURS = {
    "engagement": "#000000",
    "attention": "#0072B2",
    "expressiveness": "#E69F00",
    "participation": "#009E73",
    "valence": "#CC79A7",
    "arousal": "#D55E00",
}
LABELS = {
    "engagement": "Engagement",
    "attention": "Attention",
    "expressiveness": "Expressiveness",
    "participation": "Participation",
    "valence": "Valence (expressed)",
    "arousal": "Arousal",
}
#: matplotlib's rcParams are process-wide: one chart is styled and saved at a time.
_LOCK = threading.RLock()
#: Moment markers by kind.
MOMENT_COLOURS = {
    "engagement_drop": "#D55E00",
    "engagement_rise": "#009E73",
    "media_gap": "#8250DF",
}
WIDTH_IN = 7.2
PNG_DPI = 150
_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",  # text stays text: searchable, small
    "svg.hashsalt": "meetmood",  # stable element ids
    "font.size": 8.0,
    "text.parse_math": False,  # a "$" in a display name is text
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _values(series: TimeSeries, name: str) -> list[float]:
    return [math.nan if v is None else v for v in series.values.get(name, [])]


def _time_axis(ax: Axes, duration_secs: float) -> None:
    ax.set_xlim(0, max(duration_secs, 1.0))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 3, 5, 6, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: clock(x)))
    ax.grid(True, color="#dddddd", linewidth=0.6)


def _draw(
    ax: Axes,
    series: TimeSeries,
    names: Sequence[str],
    duration_secs: float,
    ylim: tuple[float, float],
    ylabel: str,
) -> None:
    drawn = False
    for name in names:
        ys = _values(series, name)
        if all(math.isnan(y) for y in ys):
            continue
        width = 1.8 if name == "engagement" else 1.1
        ax.plot(series.t_secs, ys, color=COLOURS[name], linewidth=width, label=LABELS[name])
        drawn = True
    ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel)
    _time_axis(ax, duration_secs)
    if ylim[0] < 0:
        ax.axhline(0, color="#999999", linewidth=0.6)
    if drawn:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=7)
    else:
        ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", color="#777777")


def to_png(fig: Figure) -> bytes:
    """A figure as PNG (for the PDF)."""
    buf = io.BytesIO()
    with _LOCK, matplotlib.rc_context(_RC):
        fig.savefig(buf, format="png", dpi=PNG_DPI, bbox_inches="tight")
    return buf.getvalue()


def to_svg(fig: Figure) -> str:
    """A figure as an inline SVG element (for the HTML page)."""
    buf = io.BytesIO()
    with _LOCK, matplotlib.rc_context(_RC):
        fig.savefig(
            buf,
            format="svg",
            bbox_inches="tight",
            metadata={"Creator": None, "Date": None, "Format": None, "Type": None},
        )
    return inline_svg(buf.getvalue().decode())


def inline_svg(text: str) -> str:
    """An SVG document as an element for an HTML page, with no URL left in it."""
    text = re.sub(r"<\?xml[^>]*\?>", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>", "", text)
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)
    return text.strip()


def participant_chart(p: ReportParticipant, duration_secs: float) -> Figure:
    """Engagement and its components (top), expressed valence and arousal (bottom)."""
    with _LOCK, matplotlib.rc_context(_RC):
        fig = Figure(figsize=(WIDTH_IN, 3.6))
        top, bottom = fig.subplots(2, 1, sharex=True)
        _draw(
            top,
            p.series,
            ("engagement", "attention", "expressiveness", "participation"),
            duration_secs,
            (0.0, 1.02),
            "0-1",
        )
        top.set_title(f"{p.display_name}: engagement and its components", loc="left")
        _draw(bottom, p.series, ("valence", "arousal"), duration_secs, (-1.02, 1.02), "-1..1")
        bottom.set_title("Expressed valence and arousal", loc="left")
        fig.align_ylabels()
    return fig


def room_chart(report: MeetingReport) -> Figure:
    """Room engagement (top) and valence/arousal (bottom), notable moments marked and numbered."""
    duration = report.meeting.duration_secs
    with _LOCK, matplotlib.rc_context(_RC):
        fig = Figure(figsize=(WIDTH_IN, 3.4))
        top, bottom = fig.subplots(2, 1, sharex=True)
        series = report.room.series
        _draw(top, series, ("engagement",), duration, (0.0, 1.02), "0-1")
        top.set_title("Room engagement; notable moments numbered", loc="left")
        for k, m in enumerate(report.moments, start=1):
            colour = MOMENT_COLOURS.get(m.kind, "#0072B2")
            for ax in (top, bottom):
                ax.axvline(m.at_secs, color=colour, linewidth=0.8, linestyle="--")
            top.text(
                m.at_secs,
                0.96,
                str(k),
                transform=top.get_xaxis_transform(),  # x: meeting time, y: axes fraction
                ha="center",
                va="top",
                color=colour,
                fontsize=7,
                fontweight="bold",
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": colour},
            )
        _draw(bottom, series, ("valence", "arousal"), duration, (-1.02, 1.02), "-1..1")
        bottom.set_title("Room valence and arousal (expressed)", loc="left")
        fig.align_ylabels()
    return fig
