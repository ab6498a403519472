"""The OpenAPI 3.1 description of the whole HTTP API, served at ``GET /api/openapi.json``.

Built from the code rather than written beside it, so that it cannot drift far:

- request bodies are the JSON schemas of the pydantic models the handlers validate with
  (:class:`~web.views.JoinBody`, :class:`~bot.bots.BotRequest`, ...), and responses the
  schemas of the models the handlers dump (:class:`~bot.types.ParticipantState`,
  :class:`~bot.types.SummaryEvent`, :class:`~bot.report.model.MeetingReport`, ...);
- the few answers that handlers build as plain dicts (a meeting, a page of states, a join
  answer) are described by the small models below, and tests/test_openapi.py validates
  real answers against them;
- each operation's summary and description are its handler's docstring.

What stays hand-written is the table :data:`OPERATIONS`: per route, its parameters,
credentials and status codes. tests/test_openapi.py checks that it lists every route of
:func:`web.app.create_app` with the same methods (and nothing else), and the fuzzing test
(tests/test_fuzz_api.py) runs schemathesis against a real server from this document.
The document is also committed as ``web/openapi.json`` (``python -m web.openapi >
web/openapi.json`` regenerates it; a test says when it is out of date).

aiohttp answers ``HEAD`` for every ``GET`` route (the same handler, no body); those are
not listed separately.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, TypeAdapter

from bot.bots import BotRequest
from bot.recordings import JobState
from bot.report import FORMATS as REPORT_FORMATS
from bot.report.model import MeetingReport
from bot.summaries.ask import QuestionResult
from bot.types import (
    AnalyzerStatus,
    BotInfo,
    MeetingEvent,
    Moment,
    ParticipantInfo,
    ParticipantState,
    RoomState,
    SnapshotEvent,
    StateDefinition,
    SummarizerInfo,
    SummaryEvent,
)
from web import bots, recordings, views, ws
from web.security import ADMIN_COOKIE, CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER, HOST_COOKIE

#: Where the document is served.
OPENAPI_PATH = "/api/openapi.json"

Handler = Callable[[web.Request], Any]


# -- answers that handlers build as dicts --------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Out):
    """What went wrong: a stable code for programs, a sentence for people."""

    code: str
    message: str


class ApiError(_Out):
    """Every 4xx (and 5xx) answer under ``/api/``."""

    error: ErrorDetail


class Health(_Out):
    """``GET /healthz``: alive, and whether the models are loaded (``starting``, ``ready``)."""

    status: Literal["ok"]
    models: Literal["starting", "ready"]
    analyzers: dict[str, AnalyzerStatus]


class Meeting(_Out):
    """A meeting. ``ended_at`` is set once the host ended it."""

    id: str
    name: str
    created_at: float
    ended_at: float | None
    join_url: str


class CreatedMeeting(Meeting):
    """A new meeting with the host's credentials: the only answer that carries them."""

    host_token: str
    host_url: str


class MeetingDetail(Meeting):
    """A meeting, its participants and how many join attempts never connected."""

    participants: list[ParticipantInfo]
    unconnected_joins: int


class StatesPage(_Out):
    """A page of stored states; ``next_cursor`` is null on the last page."""

    meeting_id: str
    next_cursor: str | None
    states: list[ParticipantState]


class RoomPage(_Out):
    """The room's stored states and notable moments."""

    meeting_id: str
    room: list[RoomState]
    moments: list[Moment]


class SummariesPage(_Out):
    """Stored summaries, newest first, and the active summarizer."""

    meeting_id: str
    summarizer: SummarizerInfo
    summaries: list[SummaryEvent]


class StateDefinitions(_Out):
    """The registry of derived states."""

    definitions: list[StateDefinition]


class SdpAnswer(_Out):
    """The server's SDP answer to a participant's offer."""

    sdp: str
    type: Literal["answer"]


class JoinAnswer(_Out):
    """A participant's id, their token (to leave or withdraw) and the SDP answer."""

    participant_id: str
    participant_token: str
    answer: SdpAnswer


class BotReply(_Out):
    """One bot."""

    bot: BotInfo


class BotList(_Out):
    """The meeting's bots, newest first."""

    bots: list[BotInfo]


class JobCreated(_Out):
    """An upload queued for analysis."""

    job_id: str
    status_url: str


class JobStatus(_Out):
    """An uploaded recording's analysis; the meeting's links once it is done."""

    job_id: str
    state: JobState
    done_secs: float | None
    duration_secs: float | None
    speed: float | None
    eta_secs: float | None
    error: str | None
    meeting_id: str | None = None
    host_url: str | None = None
    report_url: str | None = None
    participants: int | None = None


class CreateMeetingForm(BaseModel):
    """The home page's form (``POST /meetings``)."""

    name: str = ""
    csrf_token: str
    admin_token: str | None = None


class UploadForm(BaseModel):
    """``POST /api/recordings``: the recording and, from the home page, the form's tokens.

    ``csrf_token`` (or the ``X-CSRF-Token`` header) is needed unless the request carries
    a Bearer header; it and ``admin_token`` must come before ``file``.
    """

    csrf_token: str | None = None
    admin_token: str | None = None
    name: str | None = None
    file: bytes


#: Components generated from models: (name, model, mode). Request bodies are described
#: as validated, answers as dumped.
_MODELS: tuple[tuple[str, Any, Literal["validation", "serialization"]], ...] = (
    ("ApiError", ApiError, "serialization"),
    ("Health", Health, "serialization"),
    ("Meeting", Meeting, "serialization"),
    ("CreatedMeeting", CreatedMeeting, "serialization"),
    ("MeetingDetail", MeetingDetail, "serialization"),
    ("StatesPage", StatesPage, "serialization"),
    ("RoomPage", RoomPage, "serialization"),
    ("SummariesPage", SummariesPage, "serialization"),
    ("SummaryEvent", SummaryEvent, "serialization"),
    ("QuestionResult", QuestionResult, "serialization"),
    ("MeetingReport", MeetingReport, "serialization"),
    ("StateDefinitions", StateDefinitions, "serialization"),
    ("JoinAnswer", JoinAnswer, "serialization"),
    ("BotReply", BotReply, "serialization"),
    ("BotList", BotList, "serialization"),
    ("JobCreated", JobCreated, "serialization"),
    ("JobStatus", JobStatus, "serialization"),
    # The sidebar socket's messages: a snapshot first, then events.
    ("SnapshotEvent", SnapshotEvent, "serialization"),
    ("MeetingEvent", MeetingEvent, "serialization"),
    ("CreateMeetingBody", views.CreateMeetingBody, "validation"),
    ("JoinBody", views.JoinBody, "validation"),
    ("LeaveBody", views.LeaveBody, "validation"),
    ("WithdrawBody", views.WithdrawBody, "validation"),
    ("QuestionBody", views.QuestionBody, "validation"),
    ("BotRequest", BotRequest, "validation"),
    ("CreateMeetingForm", CreateMeetingForm, "validation"),
    ("UploadForm", UploadForm, "validation"),
)


def _schemas() -> dict[str, Any]:
    items = [(name, mode, TypeAdapter(model)) for name, model, mode in _MODELS]
    refs, defs = TypeAdapter.json_schemas(items, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    for (name, _mode), schema in refs.items():
        if schema != {"$ref": f"#/components/schemas/{name}"}:
            schemas[name] = schema  # a union (MeetingEvent) has no definition of its own
    # Binary file parts are strings in OpenAPI 3.1 (pydantic says base64 for bytes).
    schemas["UploadForm"]["properties"]["file"] = {
        "type": "string",
        "contentMediaType": "application/octet-stream",
    }
    return schemas


# -- the operations ---------------------------------------------------------------------


async def api_openapi(request: web.Request) -> web.Response:
    """This document: the OpenAPI 3.1 description of the HTTP API."""
    return web.Response(body=document_bytes(), content_type="application/json")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


MEETING_ID = _path("meeting_id", "The meeting's id.")
PARTICIPANT_ID = _path("participant_id", "The participant's id.")
SINCE = _query(
    "since",
    {"type": "number", "minimum": 0, "default": 0},
    "Meeting-clock seconds: only what happened at or after this time.",
)
STATES_PARAMS = (
    SINCE,
    _query(
        "limit",
        {
            "type": "integer",
            "minimum": 1,
            "maximum": views.STATES_PAGE_MAX,
            "default": views.STATES_PAGE_DEFAULT,
        },
        "States in one page.",
    ),
    _query("cursor", {"type": "string"}, "The previous page's `next_cursor`."),
)

#: Credentials, as OpenAPI security requirements (any one of them).
Security = tuple[dict[str, list[str]], ...]
ADMIN: Security = ({"adminToken": []},)
HOST: Security = ({"hostToken": []}, {"hostCookie": []})
PARTICIPANT: Security = ({"participantToken": []}, {})  # or the token in the body

SECURITY_SCHEMES: dict[str, Any] = {
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The server's admin token (`meetmood serve` prints it at first start, "
        "`meetmood admin-token` makes a new one). Not needed with `security.open_creation`.",
    },
    "adminCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": ADMIN_COOKIE,
        "description": "Set once the admin token was typed into the home page's form.",
    },
    "hostToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The meeting's host token, from `POST /api/meetings`. Never in the "
        "query string (401 `token_in_query`).",
    },
    "hostCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": HOST_COOKIE,
        "description": "Set by the host link (`/host/{id}?token=`): HttpOnly, SameSite=Strict, "
        "sent to `/host/{id}` and `/api/meetings/{id}` only. A state-changing request "
        "authenticated by it from another site is refused (403 `cross_site`).",
    },
    "participantToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The participant token of the join answer (or `token` in the body).",
    },
}

#: Why each error status is answered, for the shared error responses.
_ERRORS: dict[int, str] = {
    400: "Bad input: the message says which field and why.",
    401: "A credential is missing.",
    403: "The credential is not valid, or the request was refused (see `code`).",
    404: "No such meeting (or participant, bot, job).",
    409: "The request conflicts with the configuration.",
    410: "The host ended the meeting.",
    413: "The body is larger than this server accepts.",
    429: "Too many requests from this address, or too many unconnected peers; "
    "`Retry-After` says when to try again.",
    502: "The remote media server could not be reached or failed.",
    503: "The server cannot store what it was sent right now; `Retry-After` says when to "
    "try again.",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}


def _error_responses() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, description in _ERRORS.items():
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": _ref("ApiError")}},
        }
        if status in (429, 503):
            response["headers"] = _RETRY_AFTER
        out[f"Error{status}"] = response
    out["PageError"] = {
        "description": "An error page for people (the status says what is wrong).",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
    return out


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


HTML = {"description": "An HTML page.", "content": {"text/html": {"schema": {"type": "string"}}}}
NO_CONTENT = {"description": "Done; no content."}


@dataclass(frozen=True)
class Operation:
    """One route: what it takes and what it answers (its words come from ``handler``)."""

    handler: Handler | None
    tag: str
    responses: Mapping[int, dict[str, Any]]
    errors: tuple[int, ...] = ()
    security: Security = ()
    parameters: tuple[dict[str, Any], ...] = ()
    body: dict[str, Any] | None = None
    page: bool = False  # errors are HTML pages, not JSON
    summary: str = ""  # instead of the handler's docstring
    extra: dict[str, Any] = field(default_factory=dict)


def _json_body(name: str, example: dict[str, Any], required: bool = True) -> dict[str, Any]:
    media = {"schema": _ref(name), "example": example}
    return {"required": required, "content": {"application/json": media}}


#: An SDP offer as a browser sends it, shortened (for the join example).
EXAMPLE_SDP = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n"
    "a=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n"
)


#: Every route of the app, by path and method. tests/test_openapi.py keeps this true.
OPERATIONS: dict[str, dict[str, Operation]] = {
    "/": {"get": Operation(views.home, "pages", {200: HTML})},
    "/meetings": {
        "post": Operation(
            views.create_meeting_form,
            "pages",
            {
                303: {
                    "description": "Created: on to the host page, with the host cookie set.",
                    "headers": {"Location": {"schema": {"type": "string"}}},
                },
                401: {**HTML, "description": "The home page again: the admin token is needed."},
            },
            errors=(400, 403, 413),
            security=({"adminCookie": []}, {}),
            body={
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {"schema": _ref("CreateMeetingForm")}
                },
                "description": f"The form's `{CSRF_FIELD}` must match this browser's "
                f"`{CSRF_COOKIE}` cookie; `admin_token` once, unless the admin cookie is set.",
            },
            page=True,
        )
    },
    "/join/{meeting_id}": {
        "get": Operation(
            views.join_page,
            "pages",
            {200: HTML},
            errors=(403, 404, 410),
            parameters=(
                MEETING_ID,
                {
                    **_query("token", {"type": "string"}, "The join token of the join link."),
                    "required": True,
                },
            ),
            page=True,
        )
    },
    "/host/{meeting_id}": {
        "get": Operation(
            views.host_page,
            "pages",
            {200: HTML},
            errors=(401, 403, 404),
            security=({"hostCookie": []}, {}),
            parameters=(
                MEETING_ID,
                _query(
                    "token",
                    {"type": "string"},
                    "The host token of the host link: sets the host cookie (first visit only).",
                ),
            ),
            page=True,
        )
    },
    "/healthz": {
        "get": Operation(
            views.healthz, "meta", {200: _json("Health", "Alive; whether the models are loaded.")}
        )
    },
    OPENAPI_PATH: {
        "get": Operation(
            api_openapi,
            "meta",
            {
                200: {
                    "description": "The document.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        )
    },
    "/api/state-definitions": {
        "get": Operation(
            views.api_state_definitions,
            "meta",
            {200: _json("StateDefinitions", "The registry.")},
        )
    },
    "/api/meetings": {
        "post": Operation(
            views.api_create_meeting,
            "meetings",
            {201: _json("CreatedMeeting", "Created.")},
            errors=(400, 401, 403, 413),
            security=ADMIN,
            body=_json_body("CreateMeetingBody", {"name": "Weekly retro"}, required=False),
        )
    },
    "/api/meetings/{meeting_id}": {
        "get": Operation(
            views.api_get_meeting,
            "meetings",
            {200: _json("MeetingDetail", "The meeting.")},
            errors=(401, 403, 404),
            security=HOST,
            parameters=(MEETING_ID,),
        ),
        "delete": Operation(
            views.api_delete_meeting,
            "meetings",
            {204: NO_CONTENT},
            errors=(401, 403, 404),
            security=HOST,
            parameters=(MEETING_ID,),
        ),
    },
    "/api/meetings/{meeting_id}/end": {
        "post": Operation(
            views.api_end_meeting,
            "meetings",
            {200: _json("Meeting", "The meeting, ended.")},
            errors=(401, 403, 404),
            security=HOST,
            parameters=(MEETING_ID,),
        )
    },
    "/api/meetings/{meeting_id}/states": {
        "get": Operation(
            views.api_states,
            "analysis",
            {200: _json("StatesPage", "A page of states.")},
            errors=(400, 401, 403, 404),
            security=HOST,
            parameters=(
                MEETING_ID,
                *STATES_PARAMS,
                _query("participant", {"type": "string"}, "Only this participant's states."),
            ),
        )
    },
    "/api/meetings/{meeting_id}/participants/{participant_id}/states": {
        "get": Operation(
            views.api_participant_states,
            "analysis",
            {200: _json("StatesPage", "A page of the participant's states.")},
            errors=(400, 401, 403, 404),
            security=HOST,
            parameters=(MEETING_ID, PARTICIPANT_ID, *STATES_PARAMS),
        )
    },
    "/api/meetings/{meeting_id}/room": {
        "get": Operation(
            views.api_room,
            "analysis",
            {200: _json("RoomPage", "Room states and moments.")},
            errors=(400, 401, 403, 404),
            security=HOST,
            parameters=(MEETING_ID, SINCE),
        )
    },
    "/api/meetings/{meeting_id}/summaries": {
        "get": Operation(
            views.api_summaries,
            "analysis",
            {200: _json("SummariesPage", "Summaries.")},
            errors=(400, 401, 403, 404),
            security=HOST,
            parameters=(
                MEETING_ID,
                _query(
                    "limit",
                    {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": views.SUMMARIES_MAX,
                        "default": views.SUMMARIES_MAX,
                    },
                    "Summaries to return.",
                ),
            ),
        ),
        "post": Operation(
            views.api_summarize_now,
            "analysis",
            {201: _json("SummaryEvent", "The summary (`error` set if none could be made).")},
            errors=(401, 403, 404, 409),
            security=HOST,
            parameters=(MEETING_ID,),
        ),
    },
    "/api/meetings/{meeting_id}/questions": {
        "post": Operation(
            views.api_ask,
            "analysis",
            {200: _json("QuestionResult", "The answer.")},
            errors=(400, 401, 403, 404, 413),
            security=HOST,
            parameters=(MEETING_ID,),
            body=_json_body(
                "QuestionBody", {"question": "Who spoke most in the last ten minutes?"}
            ),
        )
    },
    "/api/meetings/{meeting_id}/report": {
        "get": Operation(
            views.api_report,
            "analysis",
            {
                200: {
                    "description": "The report as a download (`Content-Disposition: attachment`).",
                    "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
                    "content": {
                        "text/html": {"schema": {"type": "string"}},
                        "application/pdf": {"schema": {"type": "string"}},
                        "application/json": {"schema": _ref("MeetingReport")},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                }
            },
            errors=(400, 401, 403, 404),
            security=HOST,
            parameters=(
                MEETING_ID,
                _query(
                    "format",
                    {"type": "string", "enum": list(REPORT_FORMATS), "default": "html"},
                    "The report's format.",
                ),
            ),
        )
    },
    "/api/meetings/{meeting_id}/ws": {
        "get": Operation(
            ws.sidebar_ws,
            "meetings",
            {
                101: {
                    "description": "The sidebar WebSocket: a `SnapshotEvent`, then `MeetingEvent`s "
                    f"(JSON text messages). Closed with {ws.TOO_MANY_SIDEBARS} beyond "
                    "`security.max_sidebar_sockets_per_meeting`.",
                },
                400: _json("ApiError", "Not a WebSocket handshake."),
            },
            errors=(401, 403, 404),
            security=HOST,
            parameters=(MEETING_ID,),
            extra={
                "x-websocket-messages": {
                    "oneOf": [_ref("SnapshotEvent"), _ref("MeetingEvent")],
                },
            },
        )
    },
    "/api/meetings/{meeting_id}/participants": {
        "post": Operation(
            views.api_join,
            "participants",
            {201: _json("JoinAnswer", "Answered; a participant once the peer connects.")},
            errors=(400, 403, 404, 410, 413, 429, 503),
            parameters=(MEETING_ID,),
            body=_json_body(
                "JoinBody",
                {
                    "token": "the join link's token",
                    "display_name": "Ada",
                    "consent": True,
                    "offer": {"sdp": EXAMPLE_SDP, "type": "offer"},
                },
            ),
        )
    },
    "/api/meetings/{meeting_id}/participants/{participant_id}/leave": {
        "post": Operation(
            views.api_leave,
            "participants",
            {204: NO_CONTENT},
            errors=(400, 403, 404, 413),
            parameters=(MEETING_ID, PARTICIPANT_ID),
            body=_json_body("LeaveBody", {"token": "the participant token"}),
        )
    },
    "/api/meetings/{meeting_id}/participants/{participant_id}": {
        "delete": Operation(
            views.api_withdraw,
            "participants",
            {204: NO_CONTENT},
            errors=(400, 401, 403, 404, 413),
            security=PARTICIPANT,
            parameters=(MEETING_ID, PARTICIPANT_ID),
            body=_json_body("WithdrawBody", {"token": "the participant token"}, required=False),
        )
    },
    "/api/meetings/{meeting_id}/bots": {
        "post": Operation(
            bots.api_invite,
            "bots",
            {201: _json("BotReply", "The bot is in the room.")},
            errors=(400, 401, 403, 404, 410, 413, 502),
            security=HOST,
            parameters=(MEETING_ID,),
            body=_json_body(
                "BotRequest",
                {"kind": "janus", "url": "wss://janus.example.org/ws", "room": 1234, "pin": "5678"},
            ),
        ),
        "get": Operation(
            bots.api_list,
            "bots",
            {200: _json("BotList", "The bots.")},
            errors=(401, 403, 404),
            security=HOST,
            parameters=(MEETING_ID,),
        ),
    },
    "/api/meetings/{meeting_id}/bots/{bot_id}": {
        "delete": Operation(
            bots.api_remove,
            "bots",
            {200: _json("BotReply", "The bot, gone.")},
            errors=(401, 403, 404),
            security=HOST,
            parameters=(MEETING_ID, _path("bot_id", "The bot's id.")),
        )
    },
    "/api/recordings": {
        "post": Operation(
            recordings.api_upload,
            "recordings",
            {202: _json("JobCreated", "Queued for analysis.")},
            errors=(400, 401, 403, 413, 503),
            security=({"adminToken": []}, {"adminCookie": []}, {}),
            parameters=(
                {
                    "name": CSRF_HEADER,
                    "in": "header",
                    "required": False,
                    "description": "The home page's CSRF token (instead of the form field).",
                    "schema": {"type": "string"},
                },
            ),
            body={
                "required": True,
                "content": {"multipart/form-data": {"schema": _ref("UploadForm")}},
            },
        )
    },
    "/api/recordings/{job_id}": {
        "get": Operation(
            recordings.api_job,
            "recordings",
            {200: _json("JobStatus", "The job.")},
            errors=(404,),
            parameters=(_path("job_id", "The job's id (the secret that reaches it)."),),
        )
    },
    "/static/{filename}": {
        "get": Operation(
            None,  # aiohttp's own file handler (web.static)
            "pages",
            {
                200: {
                    "description": "A script, style sheet or vendored library of the pages.",
                    "content": {"*/*": {"schema": {"type": "string"}}},
                },
                # aiohttp's file handler answers a missing file itself, with no body.
                404: {"description": "No such file (an empty answer)."},
            },
            errors=(403,),
            parameters=(
                {
                    **_path("filename", "The file, under `web/static/` (may contain `/`)."),
                    "x-aiohttp-static": True,
                },
            ),
            page=True,
            summary="A script, style sheet or vendored library of the pages.",
        )
    },
}


def _words(op: Operation) -> tuple[str, str]:
    """The handler's docstring: its first line is the summary, the rest the description."""
    if op.summary or op.handler is None:
        return op.summary, ""
    summary, _, rest = _markdown(inspect.getdoc(op.handler) or "").partition("\n")
    return summary.strip(), rest.strip()


def _markdown(doc: str) -> str:
    """A docstring's reStructuredText roles and literals as Markdown code spans."""
    doc = re.sub(r":\w+:`~?([\w.]+)`", lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", doc)
    return doc.replace("``", "`")


def operation_id(method: str, path: str) -> str:
    """``get_api_meetings_meeting_id_states`` for ``GET /api/meetings/{meeting_id}/states``."""
    return "_".join([method, *re.findall(r"[a-z0-9]+", path.replace("-", "_").lower())])


def _operation(method: str, path: str, op: Operation) -> dict[str, Any]:
    summary, description = _words(op)
    out: dict[str, Any] = {
        "operationId": operation_id(method, path),
        "tags": [op.tag],
        "summary": summary,
    }
    if description:
        out["description"] = description
    out["security"] = list(op.security)  # [] = no credential
    if op.parameters:
        out["parameters"] = list(op.parameters)
    if op.body is not None:
        out["requestBody"] = op.body
    responses = {str(status): response for status, response in op.responses.items()}
    for status in op.errors:
        if str(status) not in responses:
            name = "PageError" if op.page else f"Error{status}"
            responses[str(status)] = {"$ref": f"#/components/responses/{name}"}
    out["responses"] = dict(sorted(responses.items()))
    out.update(op.extra)
    return out


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("meetmood")
    except PackageNotFoundError:
        return "dev"


INFO_DESCRIPTION = """\
meetmood's HTTP API and pages. Errors under `/api/` are JSON
`{"error": {"code", "message"}}` with a 4xx status that says what is wrong; pages
answer errors with an HTML page. Every `GET` also answers `HEAD`. Credentials:
the admin token creates meetings; the host token (Bearer, or the cookie the host
link sets) reaches a meeting's data; a participant's token (from the join answer)
lets them leave and delete their data."""


def document() -> dict[str, Any]:
    """The OpenAPI document: a fresh copy, the caller's to change."""
    return dict(json.loads(document_bytes()))


def _build() -> dict[str, Any]:
    paths = {
        path: {method: _operation(method, path, op) for method, op in methods.items()}
        for path, methods in OPERATIONS.items()
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "meetmood",
            "version": _version(),
            "description": INFO_DESCRIPTION,
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "tags": [
            {"name": "meetings", "description": "Create, read, end and delete meetings."},
            {"name": "participants", "description": "Join, leave and withdraw (browser)."},
            {"name": "analysis", "description": "Stored states, room, summaries, report."},
            {"name": "bots", "description": "Bots in Janus rooms or WHEP streams."},
            {"name": "recordings", "description": "Uploaded recordings and their analysis."},
            {"name": "pages", "description": "The HTML pages and their static files."},
            {"name": "meta", "description": "Health, the state registry, this document."},
        ],
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "responses": _error_responses(),
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


@functools.cache
def document_bytes() -> bytes:
    """The document as served, and as committed in ``web/openapi.json`` (built once)."""
    return (json.dumps(_build(), indent=2, ensure_ascii=False) + "\n").encode()


if __name__ == "__main__":  # regenerate web/openapi.json: python -m web.openapi > web/openapi.json
    import sys

    sys.stdout.buffer.write(document_bytes())
