"""A media gap (a participant's media paused while the bot reconnected) in summaries and reports.

A gap says that nothing was measured for a while, not how anyone engaged or felt: the
local summary gives it as a caveat after the data-quality notes, never among the
moments of the meeting's mood and never with who was speaking; the report lists it
with its own sentence and "unknown" for who was speaking, in HTML and PDF.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.meeting import MeetingManager
from bot.report import ReportNotice, build_report, render
from bot.store import Store
from bot.summaries import SummaryWindow, to_event, validate_output
from bot.summaries.local import summarize_local
from bot.types import FaceObservation, Moment, MomentEvent
from tests.conftest import make_settings
from tests.media import TrackSource
from tests.test_summaries import PARAMS, T0, window_events
from web.views import join_notice

pytestmark = pytest.mark.unit

GAP = (
    "At 0:30 {who}'s media paused for 12 s while the bot reconnected; nothing was analysed "
    "in that time."
)


def test_local_summary_gives_a_media_gap_as_a_caveat_not_a_moment() -> None:
    window = SummaryWindow(PARAMS)
    for event in window_events():
        window.add(event)
    window.add(MomentEvent(moment=Moment(T0 + 30, "media_gap", ("a",), (), 12.0, 12.0)))
    inp, names = window.build(T0 + 60, "interval")
    assert sorted(m.kind for m in inp.room.moments) == ["engagement_drop", "media_gap"]
    out = validate_output(summarize_local(inp), inp)
    caveat = f"Caveat: {GAP.format(who='P1')}"
    assert caveat in out.changes
    moments = [c for c in out.changes if c.startswith("At ")]
    assert moments == ["At 0:45 room engagement fell by 0.25 within 60 s, while P2 spoke."]
    # After the data-quality notes; the gap does not change the mood or the suggestion.
    assert out.changes.index(caveat) > max(
        k for k, c in enumerate(out.changes) if c.startswith("Caveat: ") and c != caveat
    )
    assert "media" not in out.room_mood and "media" not in out.suggestion
    event = to_event(
        out,
        inp,
        names,
        summary_id="s1",
        ts=T0 + 60,
        window=(T0, T0 + 60),
        reason="interval",
        source="local",
        label="local summary",
    )
    assert f"Caveat: {GAP.format(who='Ada')}" in event.changes


async def _meeting_with_a_gap(tmp_path: Path) -> str:
    """Ada, seen for 40 s, whose media paused 12 s at 0:30 (as a bot records it)."""
    manager = MeetingManager(make_settings(tmp_path, **{"analyzers.enabled": []}))
    await manager.start()
    try:
        record, _ = await manager.create_meeting("Gap")
        meeting = await manager.live(record.id)
        now = [T0]
        meeting.clock = lambda: now[0]
        ada = meeting.join("Ada", TrackSource())
        for k in range(1, 81):
            now[0] = T0 + k * 0.5
            meeting.observe(FaceObservation(ada.record.id, 1, now[0], None))
        meeting.publish(
            MomentEvent(moment=Moment(T0 + 30, "media_gap", (ada.record.id,), (), 12.0, 12.0))
        )
        now[0] = T0 + 41
        await meeting.end(ada, "left")
        return record.id
    finally:
        await manager.close()


async def test_the_report_lists_a_media_gap_with_who_spoke_unknown(tmp_path: Path) -> None:
    meeting_id = await _meeting_with_a_gap(tmp_path)
    settings = make_settings(tmp_path)
    store = Store(settings.storage.database_path)
    await store.open()
    try:
        notice = ReportNotice.model_validate(join_notice(settings))
        report = await build_report(store, meeting_id, settings, notice, now=T0 + 60)
    finally:
        await store.close()
    (gap,) = [m for m in report.moments if m.kind == "media_gap"]
    assert (gap.at_secs, gap.participants, gap.speaking, gap.value) == (30.0, ["Ada"], [], 12.0)
    assert gap.text == GAP.format(who="Ada")
    html = (await asyncio.to_thread(render, report, "html")).decode()
    assert f"<td>{GAP.format(who='Ada').replace(chr(39), '&#39;')}</td>" in html
    assert "<td>unknown (media paused)</td>" in html
    path = tmp_path / "report.pdf"
    path.write_bytes(await asyncio.to_thread(render, report, "pdf"))
    text = await asyncio.to_thread(pdf_text, path)
    assert "unknown (media paused)" in text
    assert "media paused for 12 s while the bot" in " ".join(text.split())


def pdf_text(path: Path) -> str:
    """The PDF's text as poppler's pdftotext reads it."""
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "pdftotext missing: run scripts/install_system_test_deps.sh (poppler-utils)"
    return subprocess.run(
        [pdftotext, "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
