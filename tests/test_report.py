"""Meeting reports: built from a real SQLite meeting, rendered in four formats, served.

One meeting is made once per module by a real :class:`~bot.meeting.LiveMeeting` on a
virtual clock (no models): Ada and Bo join, their faces and Ada's voice are observed
twice a second for three minutes, Bo's face leaves after a minute, and the meeting's own
sinks store states, the room, moments and a summary a minute. Each test opens that
database. The PDF is checked the way a reader sees it: poppler's ``pdftoppm`` renders
page 1 and ``pdftotext`` reads the text; the HTML opens in real headless Chromium.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import numpy as np
import pytest
from PIL import Image

from bot.cli import main
from bot.fusion.registry import REGISTRY
from bot.meeting import MeetingManager
from bot.report import (
    SCHEMA_VERSION,
    MeetingMissing,
    MeetingReport,
    ReportNotice,
    build_report,
    csv_chunks,
    json_schema,
    render,
)
from bot.report.model import CAVEAT, json_schema_text
from bot.report.table import COLUMNS
from bot.settings import Settings
from bot.store import Store
from bot.types import (
    EmotionScores,
    FaceMetrics,
    FaceObservation,
    FaceWindow,
    ListeningObservation,
    SpeakingObservation,
    VoiceMetrics,
    VoiceObservation,
)
from tests.conftest import ADMIN, make_settings
from tests.fixtures import open_host_link
from tests.media import TrackSource
from web.app import create_app
from web.views import join_notice

if TYPE_CHECKING:
    from playwright.async_api import Browser

T0 = 1_750_000_000.0
MEETING = "Quarterly review"
SECS = 180
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "bot" / "report" / "schema.json"


def metrics(smiling: bool, away: bool, blinks: int) -> FaceMetrics:
    return FaceMetrics(
        track_id=1,
        calibrated=True,
        blinks=blinks,
        blink_rate_per_min=15.0,
        ear=0.28,
        smile=2.0 if smiling else 0.1,
        is_smiling=smiling,
        head_pitch=-3.0,
        head_yaw=4.0,
        head_roll=0.5,
        gaze_yaw=3.0,
        gaze_pitch=-1.0,
        looking_away=away,
        aus={"AU06": 1.5 if smiling else 0.0, "AU12": 2.0 if smiling else 0.1, "AU04": 0.3},
        au_labels=("joy",) if smiling else (),
        window=FaceWindow(5.0, 10, 0.25, 0.5 if smiling else 0.0, -3.0, 0.0, {}),
        emotion_relative={"happy": 0.3 if smiling else 0.0},
    )


def face(pid: str, t: float, happy: float, m: FaceMetrics) -> FaceObservation:
    scores = EmotionScores.of(pid, t, "face", {"happy": happy, "neutral": 1.0 - happy})
    return FaceObservation(pid, 1, t, scores, m)


async def make_meeting(settings: Settings) -> tuple[str, str, str]:
    """The meeting described in the module docstring; returns (id, host token, Ada's id)."""
    manager = MeetingManager(settings)
    await manager.start()
    try:
        record, host_token = await manager.create_meeting(MEETING)
        meeting = await manager.live(record.id)
        now = [T0]
        meeting.clock = lambda: now[0]
        ada = meeting.join("Ada", TrackSource())
        bo = meeting.join("Bo", TrackSource())
        a, b = ada.record.id, bo.record.id
        for pid in (a, b):
            meeting.observe(ListeningObservation(pid, T0))
        meeting.observe(SpeakingObservation(a, T0 + 10, True, T0 + 10.3))
        for k in range(1, 2 * SECS + 1):
            t = T0 + k * 0.5
            now[0] = t
            smiling = 40 <= t - T0 < 50
            meeting.observe(face(a, t, 0.8 if smiling else 0.4, metrics(smiling, False, k // 8)))
            if t - T0 < 60:
                meeting.observe(
                    face(b, t, 0.7 if smiling else 0.3, metrics(smiling, k % 4 == 0, k // 9))
                )
            else:
                meeting.observe(FaceObservation(b, 1, t, None))
            if t - T0 <= 50:
                talk = max(0.0, t - T0 - 10)
                meeting.observe(
                    VoiceObservation(
                        a,
                        t,
                        VoiceMetrics(
                            t - T0 < 50, talk, 0.3, 180.0, -20.0, None, "unavailable", t - 0.2
                        ),
                    )
                )
            if t == T0 + 50:
                meeting.observe(SpeakingObservation(a, T0 + 50, False, T0 + 50.3))
            if k % 2 == 0:
                meeting.tick(t)
                await meeting.summaries.wait()
        now[0] = T0 + SECS + 1
        await meeting.end(bo, "left")
        await meeting.end(ada, "left")
        await meeting.summaries.wait()
        return record.id, host_token, a
    finally:
        await manager.close()


@pytest.fixture(scope="module")
def meeting_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, str]:
    path = tmp_path_factory.mktemp("report")
    settings = make_settings(path, **{"analyzers.enabled": [], "fusion.room_interval_secs": 60})
    meeting_id, token, ada = asyncio.run(make_meeting(settings))
    return path, meeting_id, token, ada


@pytest.fixture
def report_settings(meeting_db: tuple[Path, str, str, str]) -> Settings:
    return make_settings(meeting_db[0])


@pytest.fixture
async def store(report_settings: Settings) -> AsyncIterator[Store]:
    s = Store(report_settings.storage.database_path)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def report(
    store: Store, report_settings: Settings, meeting_db: tuple[Path, str, str, str]
) -> MeetingReport:
    notice = ReportNotice.model_validate(join_notice(report_settings))
    return await build_report(store, meeting_db[1], report_settings, notice, now=T0 + 400)


# -- the model ------------------------------------------------------------------------


@pytest.mark.unit
async def test_report_holds_the_meeting_honestly(report: MeetingReport) -> None:
    m = report.meeting
    assert (m.name, m.status, m.participants) == (MEETING, "ended", 2)
    assert 175 <= m.duration_secs <= 185
    ada, bo = report.participants
    assert (ada.display_name, bo.display_name) == ("Ada", "Bo")
    # Talk: Ada spoke 10 s -> 50 s, Bo never did.
    assert ada.talk is not None and 35 <= ada.talk.talk_secs <= 45 and ada.talk.turns == 1
    assert ada.talk.talk_share == 1.0
    # Bo's face left after 60 s of 180: face in view about a third of the time.
    assert bo.quality.face_visible_pct is not None and 25 < bo.quality.face_visible_pct < 40
    assert ada.quality.face_visible_pct == 100.0
    # Every registry quantity is listed; never-estimable ones carry the registry's reason.
    assert [s.name for s in ada.states] == [d.name for d in REGISTRY]
    bored = next(s for s in ada.states if s.name == "bored")
    assert bored.mean is None and bored.reason and "not estimable" in bored.reason
    happy = next(s for s in ada.states if s.name == "happy")
    assert happy.mean is not None and happy.secs > 100 and happy.confidence
    # Seed B's window features over the meeting, from the same code as summaries.
    f = ada.window_features
    assert f.smile_freq is not None and 0.03 < f.smile_freq < 0.1  # 10 s of 180
    assert f.avg_head_tilt == -3.0 and f.percent_away == 0.0
    assert f.emotion_counts.get("joy", 0) > 0
    assert bo.window_features.percent_away is not None and bo.window_features.percent_away > 10
    # Time series for the charts, and moods.
    eng = ada.series.values["engagement"]
    assert len(eng) == len(ada.series.t_secs) and any(v is not None for v in eng)
    assert ada.moods and report.room.moods
    # Moments with who was speaking; summaries with who wrote them.
    assert report.moments, "Bo's face leaving drops room engagement"
    assert report.summaries and report.summarizer.used.get("local summary") == len(report.summaries)
    assert any("voice emotion" in u or "Tone of voice" in u for u in report.analysis.unavailable)
    assert report.caveat == CAVEAT and "not feelings" in report.caveat
    assert report.notice.analyses and report.notice.viewers


@pytest.mark.unit
async def test_unknown_meeting(store: Store, report_settings: Settings) -> None:
    notice = ReportNotice.model_validate(join_notice(report_settings))
    with pytest.raises(MeetingMissing):
        await build_report(store, "nope", report_settings, notice)


@pytest.mark.unit
def test_committed_schema_matches_the_model() -> None:
    assert SCHEMA_FILE.read_text() == json_schema_text(), (
        "regenerate: .venv/bin/python -c 'from bot.report.model import json_schema_text;"
        ' print(json_schema_text(), end="")\' > bot/report/schema.json'
    )


# -- the four formats -------------------------------------------------------------------


@pytest.mark.unit
async def test_json_validates_against_its_schema_and_round_trips(report: MeetingReport) -> None:
    text = render(report, "json").decode()
    data = json.loads(text)
    jsonschema.Draft202012Validator(json_schema()).validate(data)
    assert data["schema_version"] == SCHEMA_VERSION
    assert MeetingReport.model_validate_json(text) == report


@pytest.mark.unit
async def test_csv_has_a_row_per_state_and_a_column_per_quantity(
    store: Store, meeting_db: tuple[Path, str, str, str]
) -> None:
    _, meeting_id, _, ada = meeting_db
    people = await store.list_participants(meeting_id)
    text = "".join([c async for c in csv_chunks(store, meeting_id, people, T0)])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(await store.read_states(meeting_id))
    header = next(csv.reader(io.StringIO(text)))
    assert tuple(header) == COLUMNS
    assert all(d.name in header for d in REGISTRY)
    first = next(r for r in rows if r["participant_id"] == ada)
    assert first["display_name"] == "Ada" and float(first["t_secs"]) >= 0
    assert first["bored"] == ""  # never estimable: an empty cell
    assert any(r["engagement"] not in ("", None) for r in rows)
    float(first["ts"])


@pytest.mark.unit
async def test_html_is_self_contained(report: MeetingReport) -> None:
    html = render(report, "html").decode()
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html, re.I)
    assert not re.search(r"<(script|link|img|iframe)\b", html, re.I)
    assert html.count("<svg") == 1 + len(report.participants)
    for text in (MEETING, "Ada", "Bo", "Expressions are not feelings", "blink_freq"):
        assert text in html
    assert "not measured (not estimable" in html


# -- the PDF as a reader sees it ----------------------------------------------------------


def poppler(tool: str) -> str:
    path = shutil.which(tool)
    assert path, f"{tool} missing: run scripts/install_system_test_deps.sh (poppler-utils)"
    return path


def read_pdf(pdf: Path, folder: Path) -> tuple[np.ndarray, str]:
    """Page 1 rendered by pdftoppm (gray pixels) and the whole text by pdftotext."""
    subprocess.run(
        [poppler("pdftoppm"), "-png", "-r", "60", "-f", "1", "-l", "1", pdf, folder / "page"],
        check=True,
    )
    (png,) = folder.glob("page*.png")
    pixels = np.asarray(Image.open(png).convert("L"))
    text = subprocess.run(
        [poppler("pdftotext"), "-layout", pdf, "-"], check=True, capture_output=True, text=True
    ).stdout
    return pixels, text


@pytest.mark.unit
async def test_pdf_renders_and_reads(report: MeetingReport, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(render(report, "pdf"))
    pixels, text = read_pdf(pdf, tmp_path)
    assert pixels.shape[0] > pixels.shape[1] > 400  # A4 portrait
    assert (pixels < 128).mean() > 0.01, "page 1 has text and a chart on it"
    pages = text.count("\f")
    assert pages >= 4, pages  # overview, a page per participant, summaries
    flat = " ".join(text.split())
    for key in (MEETING, "Ada", "Bo", "Engagement", "Expressions are not feelings", "blink_freq"):
        assert key in flat, key
    assert "The notice participants saw" in flat and "Mood summaries" in flat


# -- the HTML in a real browser -----------------------------------------------------------


@pytest.mark.e2e
async def test_html_opens_in_chromium_with_its_charts(
    report: MeetingReport, browser: Browser, tmp_path: Path
) -> None:
    page_file = tmp_path / "report.html"
    page_file.write_bytes(render(report, "html"))
    requests: list[str] = []
    page = await browser.new_page(viewport={"width": 1000, "height": 800})
    page.on("request", lambda r: requests.append(r.url))
    await page.goto(page_file.as_uri())
    sizes = await page.eval_on_selector_all(
        "figure.chart svg",
        "els => els.map(e => { const b = e.getBoundingClientRect();"
        " return [b.width, b.height, e.querySelectorAll('path').length]; })",
    )
    title = await page.inner_text("#meeting-name")
    assert title == MEETING
    assert len(sizes) == 1 + len(report.participants)
    for width, height, paths in sizes:
        assert width > 500 and height > 150 and paths > 10
    assert requests == [page_file.as_uri()], "the page asks for nothing else"


# -- the API and the command ----------------------------------------------------------------


@pytest.mark.unit
async def test_api_serves_each_format(
    aiohttp_client: Any, meeting_db: tuple[Path, str, str, str]
) -> None:
    path, meeting_id, token, _ = meeting_db
    client = await aiohttp_client(create_app(make_settings(path, **{"analyzers.enabled": []})))
    url = f"/api/meetings/{meeting_id}/report"
    auth = {"Authorization": f"Bearer {token}"}
    for fmt, kind in (
        ("json", "application/json"),
        ("csv", "text/csv"),
        ("html", "text/html"),
        ("pdf", "application/pdf"),
    ):
        resp = await client.get(url, params={"format": fmt}, headers=auth)
        assert resp.status == 200, await resp.text()
        assert resp.content_type == kind
        disposition = resp.headers["Content-Disposition"]
        assert disposition.startswith("attachment; filename=")
        assert disposition.endswith(f'-quarterly-review-{_day()}.{fmt}"')
        body = await resp.read()
        assert body
    assert body.startswith(b"%PDF")
    resp = await client.get(url, params={"format": "docx"}, headers=auth)
    assert resp.status == 400
    message = (await resp.json())["error"]["message"]
    assert message == "format: must be one of html, pdf, json, csv"
    assert (await client.get(url)).status == 401
    assert (await client.get(url, headers={"Authorization": "Bearer nope"})).status == 403
    resp = await client.get("/api/meetings/nope/report", headers=auth)
    assert resp.status == 404


def _day() -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(T0).astimezone().strftime("%Y-%m-%d")


@pytest.mark.unit
def test_cli_writes_a_report(
    meeting_db: tuple[Path, str, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, meeting_id, _, _ = meeting_db
    db = str(path / "meetmood.sqlite3")
    out = tmp_path / "r.json"
    assert main(["report", "latest", "--format", "json", "-o", str(out), "--database", db]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    data = json.loads(out.read_text())
    assert data["meeting"]["id"] == meeting_id and data["meeting"]["name"] == MEETING
    assert main(["report", "nope", "--database", db]) == 2
    assert capsys.readouterr().err.strip() == "meetmood: nope: no such meeting"


@pytest.mark.e2e
async def test_sidebar_downloads_each_format(
    aiohttp_server: Any,
    meeting_db: tuple[Path, str, str, str],
    browser: Browser,
    tmp_path: Path,
) -> None:
    path, meeting_id, token, _ = meeting_db
    server = await aiohttp_server(create_app(make_settings(path, **{"analyzers.enabled": []})))
    base = str(server.make_url("")).rstrip("/")
    page = await browser.new_page(accept_downloads=True)
    await open_host_link(page, base, meeting_id, token)
    got = {}
    for fmt in ("pdf", "csv"):
        async with page.expect_download() as info:
            await page.click(f"[data-report-format={fmt}]")
        download = await info.value
        target = tmp_path / download.suggested_filename
        await download.save_as(target)
        got[fmt] = target
    status = await page.inner_text("#report-status")
    assert got["pdf"].name.endswith(".pdf") and got["pdf"].read_bytes().startswith(b"%PDF")
    assert got["csv"].read_text().startswith("participant_id,display_name,ts,t_secs")
    assert status == f"Downloaded {got['csv'].name}."


@pytest.mark.unit
async def test_an_empty_meeting_still_reports(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    store = Store(settings.storage.database_path)
    await store.open()
    try:
        record, _ = await store.create_meeting("Nobody came")
        notice = ReportNotice.model_validate(join_notice(settings))
        report = await build_report(store, record.id, settings, notice)
        people = await store.list_participants(record.id)
        text = "".join([c async for c in csv_chunks(store, record.id, people, 0.0)])
    finally:
        await store.close()
    assert report.participants == [] and report.meeting.status == "ended"
    assert "Nobody joined this meeting." in render(report, "html").decode()
    assert render(report, "pdf").startswith(b"%PDF")
    jsonschema.Draft202012Validator(json_schema()).validate(json.loads(render(report, "json")))
    assert text.splitlines() == [",".join(COLUMNS)]


@pytest.mark.model  # the default configuration's app, so its analyzers load
async def test_the_notice_in_reports_is_the_join_page_s(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await aiohttp_client(create_app(settings))
    meeting = await (await client.post("/api/meetings", json={"name": "M"}, headers=ADMIN)).json()
    html = await (await client.get(meeting["join_url"].split(str(client.make_url("")))[1])).text()
    flat = " ".join(html.split())
    notice = join_notice(settings)
    for line in (*notice["analyses"], notice["meaning"], notice["summaries"]):
        assert " ".join(line.split()).replace("'", "&#39;") in flat, line
