"""The report as a PDF, laid out with fpdf2; charts are matplotlib's, as PNG at 150 dpi.

fpdf2 is pure Python (its dependencies, Pillow and fontTools, are wheels matplotlib
already needs), so the PDF works on a fresh machine with nothing from the system
package manager; text is set in DejaVu Sans, the font matplotlib ships, so every
script a display name may use that DejaVu covers prints. The pages follow the HTML
report's sections in the same order; the wording comes from the same model
(:class:`~bot.report.model.MeetingReport`). Blocking (charts are drawn here): callers on
the event loop run it in a thread.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.fonts import FontFace
from PIL import Image

from bot.report.charts import participant_chart, room_chart, to_png
from bot.report.model import MeetingReport, MoodSpan, ReportMoment, ReportParticipant
from bot.report.page import date_text, duration_text, groups, num, pct, reading_value
from bot.summaries.local import clock
from bot.summaries.models import Series

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONT = "DejaVu"
INK = (29, 36, 48)
MUTED = (91, 100, 114)
WARN = (138, 75, 0)
HEAD_FILL = (236, 239, 243)
ZEBRA = (248, 249, 251)
RULE = (200, 205, 212)
MARGIN_MM = 15.0
BODY_PT = 9.0
SMALL_PT = 7.5


class _Pdf(FPDF):
    """A4 portrait with a footer naming the meeting and the page."""

    def __init__(self, title: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.report_title = title
        self.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.add_font(FONT, "I", str(FONT_DIR / "DejaVuSans-Oblique.ttf"))
        self.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
        self.set_auto_page_break(True, margin=MARGIN_MM + 3)
        self.set_title(title)
        self.set_creator("meetmood")
        self.set_text_color(*INK)

    def footer(self) -> None:
        self.set_y(-MARGIN_MM)
        self.set_font(FONT, "", SMALL_PT)
        self.set_text_color(*MUTED)
        self.cell(
            0,
            5,
            f"{self.report_title} · expressions are not feelings · page {self.page_no()}/{{nb}}",
            align="C",
        )
        self.set_text_color(*INK)

    # -- building blocks ---------------------------------------------------------------

    def heading(self, text: str, size: float = 13.0, space: float = 4.0) -> None:
        if self.will_page_break(space + size * 1.2):
            self.add_page()
        self.ln(space)
        self.set_font(FONT, "B", size)
        self.multi_cell(0, size * 0.5, text, align="L", new_x="LMARGIN", new_y="NEXT")
        if size >= 13:
            self.set_draw_color(*INK)
            self.set_line_width(0.5)
            self.line(self.l_margin, self.get_y() + 0.5, self.w - self.r_margin, self.get_y() + 0.5)
            self.set_line_width(0.2)
            self.ln(2)
        self.set_font(FONT, "", BODY_PT)

    def para(self, text: str, size: float = BODY_PT, style: str = "", muted: bool = False) -> None:
        self.set_font(FONT, style, size)
        if muted:
            self.set_text_color(*MUTED)
        self.multi_cell(0, size * 0.48, text, align="L", new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(*INK)
        self.set_font(FONT, "", BODY_PT)

    def bullets(self, items: Sequence[str]) -> None:
        self.set_font(FONT, "", BODY_PT)
        for item in items:
            self.set_x(self.l_margin + 2)
            self.multi_cell(
                0, BODY_PT * 0.48, f"•  {item}", align="L", new_x="LMARGIN", new_y="NEXT"
            )

    def facts(self, rows: Sequence[tuple[str, str]], key_mm: float = 38.0) -> None:
        for key, value in rows:
            self.set_font(FONT, "", BODY_PT)
            self.set_text_color(*MUTED)
            self.cell(key_mm, BODY_PT * 0.48, key)
            self.set_text_color(*INK)
            self.multi_cell(0, BODY_PT * 0.48, value, align="L", new_x="LMARGIN", new_y="NEXT")

    def table_rows(
        self,
        head: Sequence[str],
        rows: Sequence[Sequence[str]],
        widths: Sequence[float],
        align_right: Sequence[int] = (),
        size: float = 7.8,
    ) -> None:
        self.set_font(FONT, "", size)
        self.set_draw_color(*RULE)
        self.set_line_width(0.2)
        aligns = tuple("RIGHT" if k in align_right else "LEFT" for k in range(len(head)))
        with self.table(
            col_widths=tuple(widths),
            text_align=aligns,
            headings_style=FontFace(emphasis="BOLD", fill_color=HEAD_FILL),
            line_height=size * 0.5,
            borders_layout="HORIZONTAL_LINES",
            padding=0.8,
            cell_fill_color=ZEBRA,
            cell_fill_mode="ROWS",
        ) as table:
            header = table.row()
            for h in head:
                header.cell(h)
            for r in rows:
                row = table.row()
                if len(r) == 1:  # a group title across the table
                    row.cell(r[0], colspan=len(head), style=FontFace(emphasis="BOLD"))
                    continue
                for cell in r:
                    row.cell(cell)
        self.set_font(FONT, "", BODY_PT)

    def chart(self, png: bytes) -> None:
        width = self.w - self.l_margin - self.r_margin
        with Image.open(io.BytesIO(png)) as im:
            height = width * im.height / im.width
        if self.will_page_break(height + 2):
            self.add_page()
        self.image(io.BytesIO(png), x=self.l_margin, w=width, h=height)
        self.ln(2)


def _series(s: Series) -> list[str]:
    if s.mean is None:
        return [f"not measured ({s.reason or 'no value'})", "", "", ""]
    return [num(s.mean), num(s.start), num(s.end), f"{s.secs:.0f} s"]


def _face_pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} %"


def _overview(pdf: _Pdf, r: MeetingReport) -> None:
    m = r.meeting
    pdf.set_font(FONT, "", SMALL_PT)
    pdf.set_text_color(*MUTED)
    pdf.cell(0, 4, "MEETMOOD MEETING REPORT", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*INK)
    pdf.set_font(FONT, "B", 18)
    pdf.multi_cell(0, 8, m.name, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    used = ", ".join(f"{n} × {label}" for label, n in r.summarizer.used.items())
    pdf.facts(
        [
            ("Date", date_text(m.start_ts)),
            ("Duration", f"{duration_text(m.duration_secs)} ({m.status})"),
            (
                "Participants",
                ", ".join(p.display_name for p in r.participants) or "nobody joined",
            ),
            ("Summaries by", r.summarizer.label + (f" — stored: {used}" if used else "")),
            ("Report made", date_text(r.generated_at)),
        ]
    )
    pdf.ln(2)
    # The caveat, boxed.
    pdf.set_fill_color(255, 247, 236)
    pdf.set_draw_color(*WARN)
    pdf.set_font(FONT, "B", BODY_PT)
    pdf.set_text_color(*WARN)
    pdf.multi_cell(
        0, BODY_PT * 0.5, "Expressions are not feelings.", fill=True, new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font(FONT, "", BODY_PT)
    pdf.set_text_color(*INK)
    pdf.multi_cell(
        0,
        BODY_PT * 0.48,
        r.caveat.removeprefix("Expressions are not feelings. "),
        fill=True,
        align="L",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_fill_color(255, 255, 255)

    pdf.heading("Overview")
    pdf.para("What was analysed", style="B")
    pdf.bullets(r.analysis.analysed or ["Nothing."])
    pdf.para("What was unavailable", style="B")
    pdf.bullets(r.analysis.unavailable)
    pdf.para(
        f"{r.time_base} Times are minutes:seconds since the meeting started.",
        size=SMALL_PT,
        muted=True,
    )
    pdf.heading("Participants", size=11)
    rows = []
    for p in r.participants:
        t = p.talk
        eng = "—" if p.engagement.mean is None else f"{p.band} {num(p.engagement.mean)}"
        rows.append(
            [
                p.display_name,
                clock(p.joined_secs),
                "here" if p.left_secs is None else clock(p.left_secs),
                "—" if t is None else f"{t.talk_secs:.0f} s",
                "—" if t is None else pct(t.talk_share),
                "—" if t is None else str(t.turns),
                eng,
                num(p.attention.mean),
                num(p.expressiveness.mean),
                num(p.participation.mean),
                _face_pct(p.quality.face_visible_pct),
            ]
        )
    pdf.table_rows(
        [
            "Name",
            "Joined",
            "Left",
            "Talk",
            "Share",
            "Turns",
            "Engagement",
            "Attention",
            "Express.",
            "Particip.",
            "Face in view",
        ],
        rows or [["Nobody joined this meeting."] + [""] * 10],
        (25, 12, 12, 12, 13, 11, 23, 18, 17, 18, 19),
        align_right=(1, 2, 3, 4, 5, 7, 8, 9, 10),
    )
    pdf.para("“—”: not measured; each participant's section says why.", SMALL_PT, muted=True)


def _mood_table(pdf: _Pdf, moods: Sequence[MoodSpan], *, size: float, space: float) -> None:
    """The "Mood over time" table, for the room or one participant."""
    pdf.heading("Mood over time", size=size, space=space)
    pdf.table_rows(
        ["From", "To", "Valence", "Arousal", "Mood (expressed)"],
        [
            [
                clock(m.start_secs),
                clock(m.end_secs),
                num(m.valence, signed=True),
                num(m.arousal, signed=True),
                m.mood or "not measured",
            ]
            for m in moods
        ],
        (20, 20, 22, 22, 96),
        align_right=(2, 3),
    )


def _speaking(m: ReportMoment) -> str:
    """Who was speaking at a moment; during a media gap nothing was heard, so unknown."""
    if m.kind == "media_gap":
        return "unknown (media paused)"
    return ", ".join(m.speaking) or "nobody"


def _room(pdf: _Pdf, r: MeetingReport) -> None:
    pdf.heading("The room over time")
    room = r.room
    eng = (
        f"{room.band} {num(room.engagement.mean)} on average"
        if room.engagement.mean is not None
        else "not measured"
    )
    speech = (
        f"someone spoke for {room.speech_secs:.0f} s"
        if room.speech_secs is not None
        else "speech not measured"
    )
    pdf.para(
        f"Room engagement {eng}; mood {room.mood_start or '—'} at the start, "
        f"{room.mood_end or '—'} at the end; {speech}."
    )
    pdf.chart(to_png(room_chart(r)))
    _mood_table(pdf, room.moods, size=11, space=1)
    pdf.heading("Notable moments", size=11)
    pdf.table_rows(
        ["#", "At", "What", "Who was speaking"],
        [[str(k), clock(m.at_secs), m.text, _speaking(m)] for k, m in enumerate(r.moments, start=1)]
        or [["", "", "No notable moments.", ""]],
        (8, 14, 118, 40),
        align_right=(0, 1),
    )


def _participant(pdf: _Pdf, r: MeetingReport, p: ReportParticipant) -> None:
    pdf.add_page()
    pdf.heading(p.display_name, space=0)
    left = (
        ""
        if p.left_secs is None
        else f", left at {clock(p.left_secs)} ({p.leave_reason or 'left'})"
    )
    pdf.para(
        f"Joined at {clock(p.joined_secs)}{left}; observed "
        f"{duration_text(p.quality.observed_secs)}.",
        muted=True,
    )
    pdf.chart(to_png(participant_chart(p, r.meeting.duration_secs)))
    pdf.table_rows(
        ["Over the meeting", "Mean", "First", "Last", "Measured for"],
        [
            [name, *_series(s)]
            for name, s in (
                ("Engagement", p.engagement),
                ("Attention", p.attention),
                ("Expressiveness", p.expressiveness),
                ("Participation", p.participation),
                ("Valence (expressed)", p.valence),
                ("Arousal", p.arousal),
            )
        ],
        (44, 34, 34, 34, 34),
        align_right=(1, 2, 3, 4),
    )
    t = p.talk
    talk = (
        "not measured (no audio analysed)"
        if t is None
        else f"{t.talk_secs:.0f} s, {pct(t.talk_share)} of all talk, {t.turns} turns"
    )
    pdf.para(
        f"Talk: {talk}. Mood: {p.mood_start or 'not measured'} → {p.mood_end or 'not measured'}."
    )
    f = p.window_features
    counts = ", ".join(f"{k} {v}" for k, v in f.emotion_counts.items()) or "none"
    pdf.heading("Seed B's window features, over the whole meeting", size=10, space=2)
    pdf.table_rows(
        ["Feature", "Value", "Meaning, or why not measured"],
        [
            [
                "Face in view",
                _face_pct(f.face_visible_pct),
                f.nulls.get("face_visible_pct", "share of observed time"),
            ],
            [
                "blink_freq",
                "—" if f.blink_freq is None else f"{f.blink_freq:.3f} /s",
                f.nulls.get("blink_freq", "blinks per second of face time"),
            ],
            [
                "smile_freq",
                pct(f.smile_freq),
                f.nulls.get("smile_freq", "share of face time smiling"),
            ],
            [
                "avg_head_tilt",
                "—" if f.avg_head_tilt is None else f"{f.avg_head_tilt:.1f}°",
                f.nulls.get("avg_head_tilt", "mean head pitch (+ = looking down)"),
            ],
            [
                "percent_away",
                _face_pct(f.percent_away),
                f.nulls.get("percent_away", "share of face time looking away"),
            ],
            ["emotion_counts", str(f.face_frames), f"of analysed face frames: {counts}"],
        ],
        (30, 22, 128),
        align_right=(1,),
    )
    _mood_table(pdf, p.moods, size=10, space=2)
    if pdf.will_page_break(70):
        pdf.add_page()
    pdf.heading("Averages of every state (the 28 states included)", size=10, space=2)
    rows: list[list[str]] = []
    for title, states in groups(p.states):
        rows.append([title])
        for s in states:
            if s.mean is None:
                rows.append([s.name, s.label, f"not measured ({s.reason})", "", s.support])
            else:
                rows.append(
                    [
                        s.name,
                        s.label,
                        reading_value(s),
                        f"{num(s.confidence)} · {s.secs:.0f} s",
                        s.support,
                    ]
                )
    pdf.table_rows(
        ["State", "Reads as", "Mean", "Confidence · time", "Evidence"],
        rows,
        (28, 44, 66, 26, 16),
        size=7.0,
    )


def _rest(pdf: _Pdf, r: MeetingReport) -> None:
    pdf.add_page()
    pdf.heading("Mood summaries", space=0)
    start = r.meeting.start_ts
    if not r.summaries:
        pdf.para("No summaries were made.", muted=True)
    for s in r.summaries:
        span = f"{clock(s.window_start - start)}–{clock(s.window_end - start)}"
        model = f" ({s.model})" if s.model else ""
        pdf.para(f"{span} · {s.label}{model} · {s.reason}", SMALL_PT, muted=True)
        if s.error:
            pdf.para(f"No summary: {s.error}")
            continue
        if s.note:
            pdf.para(s.note, SMALL_PT, style="I")
        for sp in s.participants:
            pdf.para(sp.text)
        pdf.para(s.room_mood)
        pdf.bullets(s.changes)
        pdf.para(f"Suggestion: {s.suggestion}", style="B")
        pdf.ln(2)
    pdf.heading("Data quality")
    pdf.bullets(r.data_quality or ["No caveats beyond those below."])
    pdf.ln(1)
    pdf.table_rows(
        ["Participant", "Observed", "Face in view", "Voice", "Voice emotion", "Failing", "Conf."],
        [
            [
                p.display_name,
                duration_text(p.quality.observed_secs),
                _face_pct(p.quality.face_visible_pct),
                "analysed" if p.quality.voice_analysed else "not analysed",
                p.quality.voice_emotion or "—",
                f"{p.quality.failing_pct:.0f} %",
                num(p.quality.engagement_confidence),
            ]
            for p in r.participants
        ]
        or [["—"] * 7],
        (36, 24, 22, 26, 28, 18, 26),
        align_right=(1, 2, 5, 6),
    )
    pdf.para(
        "Confidence is how much of a reading's input was actually observed (face in view, "
        "recent speech), not a probability of being right.",
        SMALL_PT,
        muted=True,
    )
    pdf.heading("The notice participants saw")
    pdf.para("Before anything was captured, the join page said that meetmood analyses:")
    pdf.bullets(r.notice.analyses)
    pdf.ln(1)
    pdf.facts(
        [
            ("Who sees the results", r.notice.viewers),
            ("Summaries, questions", r.notice.summaries),
            ("What is kept", r.notice.retention),
            ("What results mean", r.notice.meaning),
        ],
        key_mm=40,
    )
    pdf.para(
        "As the server's configuration words it when this report was made.", SMALL_PT, muted=True
    )
    pdf.ln(4)
    pdf.para(
        "Expressions are not feelings. Do not use these figures to make decisions about people.",
        style="B",
    )
    pdf.para(
        f"Meeting {r.meeting.id} · {r.generator} · report schema version {r.schema_version}",
        SMALL_PT,
        muted=True,
    )


def to_pdf(report: MeetingReport) -> bytes:
    """The report as PDF bytes. Blocking."""
    pdf = _Pdf(f"Meeting report: {report.meeting.name}")
    pdf.add_page()
    _overview(pdf, report)
    _room(pdf, report)
    for p in report.participants:
        _participant(pdf, report, p)
    _rest(pdf, report)
    return bytes(pdf.output())
