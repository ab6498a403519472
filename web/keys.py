"""Typed keys for what the aiohttp application holds (never module globals)."""

from __future__ import annotations

from weakref import WeakSet

import jinja2
from aiohttp import web

from bot.meeting import MeetingManager
from bot.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
MANAGER = web.AppKey("manager", MeetingManager)
WEBSOCKETS = web.AppKey("websockets", WeakSet[web.WebSocketResponse])
TEMPLATES = web.AppKey("templates", jinja2.Environment)
