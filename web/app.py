"""The aiohttp application: routes, state under typed keys, start-up and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from weakref import WeakSet

from aiohttp import web

from bot.meeting import MeetingManager
from bot.recordings import RecordingJobs
from bot.retention import purge_periodically
from bot.settings import Settings
from bot.summaries.ask import make_answerer
from web import bots, openapi, recordings, views, ws
from web.errors import error_middleware
from web.keys import (
    ANSWERER,
    CSRF_KEY,
    MANAGER,
    RECORDINGS,
    SETTINGS,
    SIDEBAR_COUNTS,
    TEMPLATES,
    WEBSOCKETS,
)
from web.render import environment
from web.security import security_headers

STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings, manager: MeetingManager | None = None) -> web.Application:
    """Build the app. The manager starts and stops with the app (``cleanup_ctx``)."""
    app = web.Application(
        middlewares=[error_middleware], client_max_size=settings.server.max_request_kb * 1024
    )
    app[SETTINGS] = settings
    app[MANAGER] = manager or MeetingManager(settings)
    app[WEBSOCKETS] = WeakSet()
    app[TEMPLATES] = environment()
    app[ANSWERER] = make_answerer(settings)
    app[CSRF_KEY] = secrets.token_bytes(32)
    app[SIDEBAR_COUNTS] = {}
    app.on_response_prepare.append(security_headers)
    app.cleanup_ctx.append(_manager_ctx)
    app.cleanup_ctx.append(_recordings_ctx)  # stops before the manager does
    app.cleanup_ctx.append(_retention_ctx)
    app.on_shutdown.append(ws.close_all)
    app.add_routes(
        [
            web.get("/", views.home),
            web.post("/meetings", views.create_meeting_form),
            web.get("/join/{meeting_id}", views.join_page),
            web.get("/host/{meeting_id}", views.host_page),
            web.get("/healthz", views.healthz),
            web.post("/api/meetings", views.api_create_meeting),
            web.get("/api/meetings/{meeting_id}", views.api_get_meeting),
            web.delete("/api/meetings/{meeting_id}", views.api_delete_meeting),
            web.post("/api/meetings/{meeting_id}/end", views.api_end_meeting),
            web.get("/api/meetings/{meeting_id}/states", views.api_states),
            web.get(
                "/api/meetings/{meeting_id}/participants/{participant_id}/states",
                views.api_participant_states,
            ),
            web.get("/api/meetings/{meeting_id}/room", views.api_room),
            web.get("/api/meetings/{meeting_id}/summaries", views.api_summaries),
            web.post("/api/meetings/{meeting_id}/summaries", views.api_summarize_now),
            web.post("/api/meetings/{meeting_id}/questions", views.api_ask),
            web.get("/api/meetings/{meeting_id}/report", views.api_report),
            web.get("/api/state-definitions", views.api_state_definitions),
            web.get(openapi.OPENAPI_PATH, openapi.api_openapi),
            web.post("/api/recordings", recordings.api_upload),
            web.get("/api/recordings/{job_id}", recordings.api_job),
            web.post("/api/meetings/{meeting_id}/bots", bots.api_invite),
            web.get("/api/meetings/{meeting_id}/bots", bots.api_list),
            web.delete("/api/meetings/{meeting_id}/bots/{bot_id}", bots.api_remove),
            web.get("/api/meetings/{meeting_id}/ws", ws.sidebar_ws),
            web.post("/api/meetings/{meeting_id}/participants", views.api_join),
            web.post(
                "/api/meetings/{meeting_id}/participants/{participant_id}/leave", views.api_leave
            ),
            web.delete(
                "/api/meetings/{meeting_id}/participants/{participant_id}", views.api_withdraw
            ),
            web.static("/static", STATIC_DIR),
        ]
    )
    return app


async def _manager_ctx(app: web.Application) -> AsyncIterator[None]:
    manager = app[MANAGER]
    await manager.start()
    yield
    await manager.close()
    await app[ANSWERER].aclose()


async def _retention_ctx(app: web.Application) -> AsyncIterator[None]:
    """Delete meetings past ``privacy.retention_days``: at start, then periodically."""
    task = asyncio.create_task(
        purge_periodically(app[MANAGER], app[SETTINGS].privacy), name="retention.purge"
    )
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _recordings_ctx(app: web.Application) -> AsyncIterator[None]:
    app[RECORDINGS] = RecordingJobs(app[MANAGER])
    yield
    await app[RECORDINGS].close()  # analyses cancelled, their uploads deleted
