"""Typed keys for what the aiohttp application holds (never module globals)."""

from __future__ import annotations

from weakref import WeakSet

import jinja2
from aiohttp import web

from bot.meeting import MeetingManager
from bot.recordings import RecordingJobs
from bot.settings import Settings
from bot.summaries.questions import Answerer

SETTINGS = web.AppKey("settings", Settings)
MANAGER = web.AppKey("manager", MeetingManager)
WEBSOCKETS = web.AppKey("websockets", WeakSet[web.WebSocketResponse])
TEMPLATES = web.AppKey("templates", jinja2.Environment)
#: Who answers the host's questions about a meeting (``bot.summaries.ask.make_answerer``).
ANSWERER = web.AppKey("answerer", Answerer)
#: Uploaded recordings waiting for, or under, analysis.
RECORDINGS = web.AppKey("recordings", RecordingJobs)
#: Key of this process's CSRF tokens (random at start: a restart only expires open forms).
CSRF_KEY = web.AppKey("csrf_key", bytes)
#: Sidebar sockets open per meeting id (``security.max_sidebar_sockets_per_meeting``).
SIDEBAR_COUNTS = web.AppKey("sidebar_counts", dict[str, int])
