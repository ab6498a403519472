"""HTTP handlers: pages and the JSON API.

Handlers read meeting state through the MeetingManager and never call analyzers.
Bad input is answered with a 4xx and a message that says what is wrong.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage
from pydantic import BaseModel, ConfigDict, Field, StrictBool, TypeAdapter, ValidationError

from bot.admission import JoinRefused, client_address, trusted_networks
from bot.fusion.registry import definitions
from bot.meeting import (
    MeetingEnded,
    MeetingManager,
    MeetingNotFound,
    ParticipantNotFound,
    StoreUnavailable,
)
from bot.report import (
    FORMATS,
    ReportNotice,
    build_report,
    csv_chunks,
    filename,
    generator,
    meeting_span,
)
from bot.report import render as render_report
from bot.settings import Settings
from bot.sources.browser import OfferError
from bot.sources.whep import DEFAULT_DISPLAY as WHEP_DISPLAY
from bot.store import MeetingRecord, StateCursor, StateRows
from bot.summaries.ask import ask
from bot.summaries.questions import QUESTION_MAX
from bot.types import Moment, ParticipantState, RoomState
from web.errors import api_error
from web.keys import ANSWERER, MANAGER, SETTINGS
from web.render import render
from web.security import (
    CSRF_FIELD,
    CSRF_MESSAGE,
    REPORT_CSP,
    CreationRefused,
    check_creator,
    csrf_form_token,
    csrf_nonce,
    csrf_valid,
    host_credential,
    is_admin_browser,
    remember_admin,
    remember_csrf,
    set_host_cookies,
)

log = logging.getLogger(__name__)

NAME_MAX = 120
B = TypeVar("B", bound=BaseModel)
DISPLAY_NAME_MAX = 60


# -- request bodies ----------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CreateMeetingBody(_Body):
    """POST /api/meetings."""

    name: str = Field("", max_length=NAME_MAX)


class OfferBody(_Body):
    """An SDP offer."""

    sdp: str = Field(min_length=1)
    type: str


class JoinBody(_Body):
    """POST /api/meetings/{id}/participants."""

    token: str = Field(min_length=1)
    display_name: str = Field(min_length=1, max_length=DISPLAY_NAME_MAX)
    #: Strictly a JSON boolean: "yes" or 1 is not an agreement.
    consent: StrictBool
    offer: OfferBody


class QuestionBody(_Body):
    """POST /api/meetings/{id}/questions."""

    question: str = Field(min_length=1, max_length=QUESTION_MAX)


class LeaveBody(_Body):
    """POST /api/meetings/{id}/participants/{pid}/leave."""

    token: str = Field(min_length=1)


class WithdrawBody(_Body):
    """DELETE /api/meetings/{id}/participants/{pid} (or the token in a Bearer header)."""

    token: str | None = Field(None, min_length=1)


async def _json_body(request: web.Request, model: type[B]) -> B:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise api_error(web.HTTPBadRequest, "invalid_json", "the body is not valid JSON") from e
    except LookupError as e:  # the Content-Type names a charset Python does not know
        raise api_error(
            web.HTTPBadRequest, "invalid_json", "the body's charset is not one this server reads"
        ) from e
    except RecursionError as e:
        # The parser recurses once per nesting level; no request body nests this deep.
        raise api_error(web.HTTPBadRequest, "invalid_json", "the body is nested too deeply") from e
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        reason = "missing" if err["type"] == "missing" else err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown field"
        raise api_error(web.HTTPBadRequest, "invalid_field", f"{where}: {reason}") from e


# -- helpers -----------------------------------------------------------------------


def _manager(request: web.Request) -> MeetingManager:
    return request.app[MANAGER]


def default_meeting_name(name: str) -> str:
    """A blank meeting name becomes "Meeting"."""
    return name.strip() or "Meeting"


async def _meeting(request: web.Request, api: bool = True) -> MeetingRecord:
    meeting_id = request.match_info["meeting_id"]
    try:
        return await _manager(request).get_meeting(meeting_id)
    except MeetingNotFound as e:
        if api:
            raise api_error(web.HTTPNotFound, "meeting_not_found", "no meeting has this id") from e
        raise web.HTTPNotFound(text="No meeting has this address.") from e


async def host_meeting(request: web.Request, api: bool = True) -> MeetingRecord:
    """The meeting named in the path, after checking the host token.

    The token comes in an ``Authorization: Bearer`` header or in the host cookie that
    the host link sets (:mod:`web.security`), never in the query string.
    """
    record = await _meeting(request, api)
    token = host_credential(request)
    if not token:
        if api and "token" in request.query:
            raise api_error(
                web.HTTPUnauthorized,
                "token_in_query",
                "send the host token in an Authorization: Bearer header, not in the address",
            )
        if api:
            raise api_error(web.HTTPUnauthorized, "token_missing", "the host token is missing")
        raise web.HTTPUnauthorized(text="This page needs the host link (with its token).")
    if not record.host_token_matches(token):
        if api:
            raise api_error(web.HTTPForbidden, "token_invalid", "the host token is not valid")
        raise web.HTTPForbidden(text="The host token in this link is not valid.")
    return record


def base_url(request: web.Request) -> str:
    """The base of the links we hand out: ``server.public_url``, else how we were reached."""
    return request.app[SETTINGS].server.public_url or f"{request.scheme}://{request.host}"


def meeting_json(request: web.Request, record: MeetingRecord) -> dict[str, Any]:
    """A meeting as the API returns it (no host token: it is shown only once)."""
    return {
        "id": record.id,
        "name": record.name,
        "created_at": record.created_at,
        "ended_at": record.ended_at,
        "join_url": MeetingManager.join_url(base_url(request), record),
    }


# -- pages -------------------------------------------------------------------------


async def home(request: web.Request) -> web.Response:
    """The home page: what meetmood does and a form to create a meeting."""
    return await _home(request)


async def _home(request: web.Request, admin_error: str = "", status: int = 200) -> web.Response:
    settings = request.app[SETTINGS]
    limit_mb = settings.recordings.max_upload_mb
    nonce = csrf_nonce(request)
    needs_admin = not settings.security.open_creation and not await is_admin_browser(request)
    response = render(
        request,
        "home.html",
        {
            "app_name": "meetmood",
            "version": _version(),
            "max_upload_mb": f"{limit_mb:g}",
            "max_upload_bytes": int(limit_mb * 1024 * 1024),
            "csrf_token": csrf_form_token(request, nonce),
            "needs_admin_token": needs_admin,
            "admin_error": admin_error,
        },
        status,
    )
    remember_csrf(request, response, nonce)
    return response


async def create_meeting_form(request: web.Request) -> web.Response:
    """The home page's form: create a meeting, then go to its host page.

    Needs the form's CSRF token and the admin token (typed once; the browser then keeps
    an admin cookie) unless ``security.open_creation`` is on.
    """
    try:
        form = await request.post()
    except (ValueError, LookupError, BadHttpMessage) as e:  # no boundary, unknown charset...
        raise web.HTTPBadRequest(text="The form could not be read.") from e
    if not csrf_valid(request, _form_text(form.get(CSRF_FIELD))):
        raise web.HTTPForbidden(text=CSRF_MESSAGE)
    try:
        admin_cookie = await check_creator(request, _form_text(form.get("admin_token")))
    except CreationRefused as e:
        return await _home(request, f"Admin token: {e.message}.", e.status)
    name = str(form.get("name", ""))
    if len(name) > NAME_MAX:
        raise web.HTTPBadRequest(text=f"The meeting name is longer than {NAME_MAX} characters.")
    manager = _manager(request)
    record, host_token = await manager.create_meeting(default_meeting_name(name))
    # The host cookie is set here too, so the token never appears in an address.
    response = web.HTTPSeeOther(f"/host/{record.id}")
    set_host_cookies(request, response, record.id, host_token)
    remember_admin(request, response, admin_cookie)
    raise response


def _form_text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def summaries_notice(settings: Settings) -> str:
    """What the join notice says about mood summaries, questions and where they are made."""
    s = settings.summaries
    made = (
        f"The host receives a mood summary of the meeting every {s.interval_secs:g} seconds "
        "and when they ask for one (engagement, mood and talk, per participant and for the "
        "room), and can ask questions about the meeting."
        if s.enabled
        else "The host can ask questions about the meeting."
    )
    if s.summarizer != "vertex":
        return (
            f"{made} Summaries and answers are made on the meeting server from the scores "
            "above; nothing is sent to any other service."
        )
    v = s.vertex
    sent = (
        "aggregated figures about the meeting with participants' display names"
        if v.share_names
        else "aggregated, pseudonymised figures about the meeting (participants appear as "
        "P1, P2, ...; names stay on the meeting server)"
    )
    writes = (
        "write summaries and answer the host's questions"
        if s.enabled
        else ("answer the host's questions")
    )
    return (
        f"{made} To {writes}, {sent} — never images, audio or words — are sent to Google's "
        f"Gemini on Vertex AI (project {v.project}, location {v.location})."
    )


def notice_analyses(settings: Settings) -> list[str]:
    """What the join notice lists as analysed, for this configuration."""
    analyses: list[str] = []
    face = settings.analyzers.face_emotion
    if "face_emotion" in settings.analyzers.enabled:
        analyses.append(
            "Your facial expression, read from your camera "
            "(whether a face is in view, and the probabilities of 7 expressions: angry, "
            "disgust, fear, happy, sad, surprise, neutral)."
        )
        if face.detector == "mediapipe":
            analyses.append(
                "Points on your face, from which it measures blinks, smiles and other facial "
                "movements (compared with your own resting face from your first seconds), "
                "the angle of your head and whether you look away from the screen. If several "
                "people share your camera, each face is read separately."
            )
    if settings.voice.enabled:
        analyses.append(
            "Your voice, from your microphone: when you speak and for how long (talk time, "
            "turns, overlaps), and its pitch, loudness and pace compared with your own usual "
            "voice (an 'arousal' score). Not the words: nothing is transcribed."
        )
        if "voice_emotion" in settings.analyzers.enabled:
            analyses.append(
                "The emotional tone of your voice, by a speech-emotion model, on stretches of "
                "1-4 seconds of speech."
            )
    else:
        # The page streams the microphone too; say plainly that nothing reads it.
        analyses.append("Your microphone audio is received but not analysed and not stored.")
    if analyses and ("face_emotion" in settings.analyzers.enabled or settings.voice.enabled):
        analyses.append(
            "From these readings, scores the host sees beside your name: engagement (whether "
            "you look at the screen, how much your face moves, how much you take part in the "
            "conversation), the mood your face and voice express, and expression states such "
            "as 'smiling' or 'sounds confident'. They describe expressions and behaviour, not "
            "what you feel."
        )
    return analyses


#: What the join notice says the results mean (as ``join.html`` words it).
NOTICE_MEANING = (
    "Facial expressions are not feelings. The scores are rough, often wrong, and must not be "
    "used to make decisions about people."
)


def retention_notice(settings: Settings) -> str:
    """What the notice says is kept (``privacy.retention``), and for how long and how to delete.

    The period comes from ``privacy.retention_days``, so the notice says what the server does.
    """
    kept = (
        settings.privacy.retention
        or "No video or audio is recorded or stored — only derived scores."
    )
    days = settings.privacy.retention_days
    if days > 0:
        period = (
            f"It is deleted automatically {days:g} days after the meeting ends (or after its "
            "last activity, if the host never ends it); the host can delete the meeting sooner."
        )
    else:
        period = "It is kept until the host deletes the meeting."
    return (
        f"{kept} {period} You can delete everything stored about you at any time with "
        "“Leave and delete my data”."
    )


def join_notice(settings: Settings) -> dict[str, Any]:
    """The join page's notice as text, for reports: what participants were told."""
    return {
        "analyses": notice_analyses(settings),
        "viewers": settings.privacy.viewers or "The meeting host.",
        "retention": retention_notice(settings),
        "summaries": summaries_notice(settings),
        "meaning": NOTICE_MEANING,
    }


async def join_page(request: web.Request) -> web.Response:
    """The participant page: notice first, then camera and microphone."""
    record = await _meeting(request, api=False)
    token = request.query.get("token")
    if not record.join_token_matches(token):
        raise web.HTTPForbidden(text="This join link is not valid. Ask the host for the link.")
    if record.ended_at is not None:
        return _ended_page(request)
    settings = request.app[SETTINGS]
    analyses = notice_analyses(settings)
    return render(
        request,
        "join.html",
        {
            "meeting": {"id": record.id, "name": record.name},
            "join_token": record.join_token,
            "notice": {
                "analyses": analyses,
                "viewers": settings.privacy.viewers,
                "retention": retention_notice(settings),
                "summaries": summaries_notice(settings),
            },
            "analysis_fps": settings.analyzers.face_emotion.fps,
        },
    )


def _ended_page(request: web.Request) -> web.Response:
    """410 Gone: the host ended the meeting, so its join link no longer works."""
    return render(
        request,
        "error.html",
        {
            "status": 410,
            "title": "This meeting has ended",
            "message": "The host ended this meeting, so its join link no longer works. "
            "Nothing is captured on this page.",
        },
        410,
    )


async def host_page(request: web.Request) -> web.Response:
    """The host's live sidebar.

    The host link (``?token=``) sets the host cookie and sends the browser on to the
    address without the token; the page, its socket and its API calls then use the
    cookie, so the token stays out of history, bookmarks and proxy logs from then on.
    """
    token = request.query.get("token")
    if token is not None:
        record = await _meeting(request, api=False)
        if not record.host_token_matches(token):
            raise web.HTTPForbidden(text="The host token in this link is not valid.")
        # Not a 303: after a link from another site (mail, chat), the browser would send
        # the redirected request as cross-site and leave the SameSite=Strict cookie out.
        # A refresh from this page is a navigation of our own, so the cookie goes along.
        url = f"/host/{record.id}"
        context = {"meeting": {"id": record.id, "name": record.name}, "url": url}
        response = render(request, "host_open.html", context)
        set_host_cookies(request, response, record.id, token)
        return response
    record = await host_meeting(request, api=False)
    return render(
        request,
        "sidebar.html",
        {
            "meeting": {"id": record.id, "name": record.name},
            "join_url": MeetingManager.join_url(base_url(request), record),
            "history_secs": request.app[SETTINGS].sidebar.history_secs,
            "retention_days": request.app[SETTINGS].privacy.retention_days,
            # The invite form's placeholders: the names a bot gets when the host gives none.
            "bot_display": {
                "janus": request.app[SETTINGS].bots.display_name,
                "whep": WHEP_DISPLAY,
            },
        },
    )


# -- API ---------------------------------------------------------------------------


async def api_create_meeting(request: web.Request) -> web.Response:
    """Create a meeting. The host token and host URL appear in this response only.

    Needs ``Authorization: Bearer <admin token>`` unless ``security.open_creation`` is on.
    """
    try:
        await check_creator(request, cookie_ok=False)
    except CreationRefused as e:
        raise e.api_error() from e
    body = await _json_body(request, CreateMeetingBody) if request.can_read_body else None
    manager = _manager(request)
    record, host_token = await manager.create_meeting(
        default_meeting_name(body.name if body else "")
    )
    data = meeting_json(request, record)
    data["host_token"] = host_token
    data["host_url"] = MeetingManager.host_url(base_url(request), record, host_token)
    return web.json_response(data, status=201)


async def api_get_meeting(request: web.Request) -> web.Response:
    """A meeting and its participants (host only)."""
    record = await host_meeting(request)
    manager = _manager(request)
    snapshot = await manager.snapshot(record.id)
    data = meeting_json(request, record)
    data["participants"] = [p.model_dump(mode="json") for p in snapshot.participants]
    # Join attempts that never connected: a count, because they are not participants.
    data["unconnected_joins"] = snapshot.unconnected_joins
    return web.json_response(data)


#: States one page of ``GET .../states`` returns unless ``limit`` says otherwise.
STATES_PAGE_DEFAULT = 1000
#: Most states one page returns: a state is about 3.7 kB of JSON, so about 18 MB.
STATES_PAGE_MAX = 5000


def _query_number(request: web.Request, key: str, default: float, kind: type = float) -> Any:
    raw = request.query.get(key)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError as e:
        raise api_error(web.HTTPBadRequest, "invalid_field", f"{key}: not a number") from e
    if value < 0 or value != value:
        raise api_error(web.HTTPBadRequest, "invalid_field", f"{key}: must be >= 0")
    return value


async def _state_page(
    request: web.Request, record: MeetingRecord, participant: str | None
) -> web.Response:
    since = _query_number(request, "since", 0.0)
    limit = _query_number(request, "limit", STATES_PAGE_DEFAULT, int)
    if not 1 <= limit <= STATES_PAGE_MAX:
        raise api_error(
            web.HTTPBadRequest, "invalid_field", f"limit: must be between 1 and {STATES_PAGE_MAX}"
        )
    cursor = None
    if "cursor" in request.query:
        try:
            cursor = StateCursor.decode(request.query["cursor"])
        except ValueError as e:
            raise api_error(
                web.HTTPBadRequest, "invalid_field", "cursor: not a next_cursor of this API"
            ) from e
    store = _manager(request).store
    page = await store.state_rows(record.id, participant, since, cursor, limit)
    body = await asyncio.to_thread(_state_page_json, record.id, page)
    return web.Response(body=body, content_type="application/json")


_STATES: TypeAdapter[ParticipantState] = TypeAdapter(ParticipantState)


def _state_page_json(meeting_id: str, page: StateRows) -> bytes:
    """A page of ``GET .../states`` as JSON (a worker thread: a page can be many megabytes).

    One state at a time, decoded and encoded, so that the event loop gets the GIL back
    between them and the states never pile up as objects.
    """
    cursor = None if page.next is None else page.next.encode()
    states = b",".join(_STATES.dump_json(s) for s in page.states())
    return b'{"meeting_id":%b,"next_cursor":%b,"states":[%b]}' % (
        json.dumps(meeting_id).encode(),
        json.dumps(cursor).encode(),
        states,
    )


async def api_states(request: web.Request) -> web.Response:
    """Stored fused states of a meeting in time order, a page at a time.

    Query: ``since`` (meeting-clock seconds, inclusive), ``limit`` (default
    :data:`STATES_PAGE_DEFAULT`, at most :data:`STATES_PAGE_MAX`), ``cursor`` (the
    previous page's ``next_cursor``; it is null on the last page), ``participant``.
    """
    record = await host_meeting(request)
    return await _state_page(request, record, request.query.get("participant"))


async def api_participant_states(request: web.Request) -> web.Response:
    """Stored fused states of one participant (same query as :func:`api_states`)."""
    record = await host_meeting(request)
    return await _state_page(request, record, request.match_info["participant_id"])


async def api_room(request: web.Request) -> web.Response:
    """The room's stored states and notable moments since ``since``."""
    record = await host_meeting(request)
    since = _query_number(request, "since", 0.0)
    store = _manager(request).store
    room = await store.read_room(record.id, since)
    moments = await store.moments(record.id, since)
    return web.json_response(
        {
            "meeting_id": record.id,
            "room": [_ROOM.dump_python(r, mode="json") for r in room],
            "moments": [_MOMENT.dump_python(m, mode="json") for m in moments],
        }
    )


_ROOM: TypeAdapter[RoomState] = TypeAdapter(RoomState)
_MOMENT: TypeAdapter[Moment] = TypeAdapter(Moment)


#: Most summaries one ``GET .../summaries`` returns.
SUMMARIES_MAX = 1000


async def api_summaries(request: web.Request) -> web.Response:
    """The meeting's mood summaries, newest first, and which summarizer is active.

    Query: ``limit`` (default and most :data:`SUMMARIES_MAX`).
    """
    record = await host_meeting(request)
    limit = _query_number(request, "limit", SUMMARIES_MAX, int)
    if not 1 <= limit <= SUMMARIES_MAX:
        raise api_error(
            web.HTTPBadRequest, "invalid_field", f"limit: must be between 1 and {SUMMARIES_MAX}"
        )
    manager = _manager(request)
    meeting = await manager.live(record.id)
    summaries = await manager.store.summaries(record.id, limit)
    return web.json_response(
        {
            "meeting_id": record.id,
            "summarizer": meeting.summaries.info.model_dump(mode="json"),
            "summaries": [s.model_dump(mode="json") for s in summaries],
        }
    )


async def api_summarize_now(request: web.Request) -> web.Response:
    """Summarize the time since the last summary now (the host's "Summarize now").

    Answers 201 with the summary, which also goes to every sidebar and the store. A
    summary that could not be made has ``error`` set.
    """
    record = await host_meeting(request)
    if not request.app[SETTINGS].summaries.enabled:
        raise api_error(web.HTTPConflict, "summaries_disabled", "summaries are turned off")
    meeting = await _manager(request).live(record.id)
    summary = await meeting.summarize_now()
    return web.json_response(summary.model_dump(mode="json"), status=201)


async def api_ask(request: web.Request) -> web.Response:
    """Answer the host's question about the meeting from its stored data.

    Body ``{"question": str}`` (1-500 characters). Answers 200 with the question, the
    answer (text, kind, subject, the range it looked at, participants, figures, sources)
    and which answerer wrote it (see :mod:`bot.summaries.ask`).
    """
    record = await host_meeting(request)
    body = await _json_body(request, QuestionBody)
    manager = _manager(request)
    meeting = await manager.live(record.id)
    result = await ask(
        manager.store,
        record,
        body.question,
        answerer=request.app[ANSWERER],
        settings=request.app[SETTINGS],
        now=meeting.clock() if meeting.participants else None,
    )
    return web.json_response(result.model_dump(mode="json"))


async def api_report(request: web.Request) -> web.StreamResponse:
    """The meeting's report as a download: ``format`` = html (default), pdf, json or csv.

    Built from the store, live or ended (see :mod:`bot.report`); the charts and the PDF
    are drawn in a thread, off the event loop. The CSV is streamed a page of states at a
    time.
    """
    record = await host_meeting(request)
    fmt = request.query.get("format", "html")
    if fmt not in FORMATS:
        raise api_error(
            web.HTTPBadRequest, "invalid_field", f"format: must be one of {', '.join(FORMATS)}"
        )
    manager = _manager(request)
    settings = request.app[SETTINGS]
    store = manager.store
    info = FORMATS[fmt]
    if fmt == "csv":
        people = await store.list_participants(record.id)
        start, _, _ = meeting_span(record, people, await store.last_ts(record.id), time.time())
        stream = web.StreamResponse(
            headers={
                "Content-Disposition": _attachment(filename(record.name, record.id, start, fmt))
            }
        )
        stream.content_type = info.content_type
        stream.charset = info.charset
        await stream.prepare(request)
        # HEAD: the headers alone. aiohttp sends what a prepared stream is given, and a
        # body after a HEAD answer would be read as the next answer on the connection.
        if request.method != "HEAD":
            async for chunk in csv_chunks(store, record.id, people, start):
                await stream.write(chunk.encode())
        await stream.write_eof()
        return stream
    notice = ReportNotice.model_validate(join_notice(settings))
    report = await build_report(
        store,
        record.id,
        settings,
        notice,
        notices=manager.notices(),
        generator=generator(),
    )
    body = await asyncio.to_thread(render_report, report, fmt)
    name = filename(record.name, record.id, report.meeting.start_ts, fmt)
    headers = {"Content-Disposition": _attachment(name)}
    if fmt == "html":
        headers["Content-Security-Policy"] = REPORT_CSP
    return web.Response(
        body=body,
        content_type=info.content_type,
        charset=info.charset,
        headers=headers,
    )


def _attachment(name: str) -> str:
    return f'attachment; filename="{name}"'


async def api_state_definitions(request: web.Request) -> web.Response:
    """The registry of derived states: names, groups, definitions, ranges, formulas."""
    return web.json_response({"definitions": [d.model_dump() for d in definitions()]})


def client_of(request: web.Request) -> str:
    """The client address a request counts for (see :func:`bot.admission.client_address`)."""
    proxies = trusted_networks(request.app[SETTINGS].limits.trusted_proxies)
    return client_address(request.remote, request.headers.get("X-Forwarded-For"), proxies)


#: The HTTP errors of :class:`~bot.admission.JoinRefused` statuses.
_REFUSED_STATUS: dict[int, type[web.HTTPException]] = {
    403: web.HTTPForbidden,
    429: web.HTTPTooManyRequests,
}


def _join_refused(e: JoinRefused) -> web.HTTPException:
    error = api_error(_REFUSED_STATUS[e.status], e.code, e.message)
    if e.retry_after_secs is not None:
        error.headers["Retry-After"] = str(e.retry_after_secs)
    return error


async def api_join(request: web.Request) -> web.Response:
    """A browser participant joins with an SDP offer and gets the answer.

    They count as a participant (a card in the sidebar, a stored row) only once their
    peer connects; the answer already carries their id and leave token.
    """
    manager = _manager(request)
    address = client_of(request)
    try:
        manager.admission.attempt(address)  # every request counts, refused ones too
    except JoinRefused as e:
        raise _join_refused(e) from e
    record = await _meeting(request)
    body = await _json_body(request, JoinBody)
    if not record.join_token_matches(body.token):
        raise api_error(web.HTTPForbidden, "token_invalid", "the join token is not valid")
    if record.ended_at is not None:
        raise _meeting_ended()
    if not body.consent:
        raise api_error(
            web.HTTPBadRequest,
            "consent_required",
            "analysis needs the participant's agreement (consent must be true)",
        )
    try:
        participant, answer_sdp = await manager.join_browser(
            record.id, body.display_name, body.offer.sdp, body.offer.type, address
        )
    except OfferError as e:
        raise api_error(web.HTTPBadRequest, "invalid_offer", str(e)) from e
    except MeetingEnded as e:
        raise _meeting_ended() from e
    except JoinRefused as e:
        raise _join_refused(e) from e
    except StoreUnavailable as e:
        error = api_error(
            web.HTTPServiceUnavailable,
            "store_unavailable",
            "the server cannot record the analysis right now; try again shortly",
        )
        error.headers["Retry-After"] = "5"
        raise error from e
    return web.json_response(
        {
            "participant_id": participant.participant_id,
            "participant_token": participant.token,
            "answer": {"sdp": answer_sdp, "type": "answer"},
        },
        status=201,
    )


async def api_leave(request: web.Request) -> web.Response:
    """A participant leaves (also sent by the page with sendBeacon when the tab closes)."""
    record = await _meeting(request)
    body = await _json_body(request, LeaveBody)
    ok = await _manager(request).leave(record.id, request.match_info["participant_id"], body.token)
    if not ok:
        raise api_error(web.HTTPForbidden, "token_invalid", "the participant token is not valid")
    return web.Response(status=204)


def _meeting_ended() -> web.HTTPException:
    return api_error(
        web.HTTPGone, "meeting_ended", "the host ended this meeting: its join link no longer works"
    )


def _participant_token(request: web.Request, body: WithdrawBody | None) -> str | None:
    """A participant token from the JSON body, else a Bearer header (never the query string)."""
    if body is not None and body.token:
        return body.token
    auth = request.headers.get("Authorization", "")
    return auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else None


async def api_withdraw(request: web.Request) -> web.Response:
    """A participant withdraws: they leave and everything stored about them is deleted.

    The participant token comes in the body (``{"token"}``) or an ``Authorization: Bearer``
    header; it works after they left too. 204; 403 with a wrong token; 404 for an
    unknown participant.
    """
    record = await _meeting(request)
    body = await _json_body(request, WithdrawBody) if request.can_read_body else None
    token = _participant_token(request, body)
    if not token:
        raise api_error(web.HTTPUnauthorized, "token_missing", "the participant token is missing")
    try:
        ok = await _manager(request).withdraw(
            record.id, request.match_info["participant_id"], token
        )
    except ParticipantNotFound as e:
        raise api_error(
            web.HTTPNotFound, "participant_not_found", "this meeting has no such participant"
        ) from e
    if not ok:
        raise api_error(web.HTTPForbidden, "token_invalid", "the participant token is not valid")
    return web.Response(status=204)


async def api_end_meeting(request: web.Request) -> web.Response:
    """The host ends the meeting: the join link stops working, everyone is disconnected.

    Analysis and summaries stop; the stored data stays (for the report) until the meeting
    is deleted or expires. Ending an ended meeting changes nothing. 200 with the meeting.
    """
    record = await host_meeting(request)
    try:
        ended = await _manager(request).end_meeting(record.id)
    except MeetingNotFound as e:
        raise api_error(web.HTTPNotFound, "meeting_not_found", "no meeting has this id") from e
    return web.json_response(meeting_json(request, ended))


async def api_delete_meeting(request: web.Request) -> web.Response:
    """The host deletes the meeting: it ends, then every row stored with it is deleted. 204."""
    record = await host_meeting(request)
    await _manager(request).delete_meeting(record.id)
    return web.Response(status=204)


async def healthz(request: web.Request) -> web.Response:
    """Liveness, and whether the models are loaded (they load while the server answers).

    ``models`` is ``starting`` until every enabled analyzer's model is loaded or known
    unavailable, then ``ready``; ``analyzers`` gives each one's status. Answers at once.
    """
    models = _manager(request).models()
    return web.json_response(
        {"status": "ok", "models": models.state, "analyzers": models.analyzers}
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("meetmood")
    except PackageNotFoundError:
        return "dev"
